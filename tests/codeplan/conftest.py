"""Fixtures for config as code: a hub embedded or behind a real server, and directories.

Every plan/apply/drift test runs twice: on an embedded hub (SQLite in the test's tmp dir) and
through the remote client against a real ``confhub serve`` process shared by the session (each
test works in a tenant of its own, so they never see each other). ``Target.cli`` runs the
command line against the same store, with ``--db`` or ``--url``.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import confhub
from confhub.cli import app
from confhub.secrets import generate_master_key
from confhub.server.testing import live_server

MASTER_KEY = generate_master_key()


@dataclass
class Run:
    exit_code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


@dataclass
class Target:
    """A store to plan against: ``hub`` (embedded or remote), a fresh ``tenant`` name, and
    ``cli(...)`` bound to the same store and tenant."""

    kind: str
    hub: Any
    tenant: str
    option: list[str]  # --db PATH or --url URL

    def cli(self, *args: str, tenant: bool = True) -> Run:
        extra = self.option + (["--tenant", self.tenant] if tenant else [])
        result = CliRunner().invoke(app, [*args, *extra], catch_exceptions=False,
                                    env={"COLUMNS": "200", "CONFHUB_MASTER_KEY": MASTER_KEY})
        # The command wrote through a hub of its own: bring this one's cache up to storage
        # (it follows other writers within milliseconds, not at once).
        self.hub.sync()
        return Run(result.exit_code, result.stdout, result.stderr)

    @property
    def cfg(self) -> Any:
        return self.hub.tenant(self.tenant)


@pytest.fixture(scope="session")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One real server for the session, holding the master key. The key is in this process's
    environment only while the server starts (it inherits it): other tests in the session
    must not see it."""
    with contextlib.ExitStack() as stack:
        saved = os.environ.get("CONFHUB_MASTER_KEY")
        os.environ["CONFHUB_MASTER_KEY"] = MASTER_KEY
        try:
            url = stack.enter_context(live_server(tmp_path_factory.mktemp("served")
                                                  / "confhub.db"))
        finally:
            if saved is None:
                del os.environ["CONFHUB_MASTER_KEY"]
            else:
                os.environ["CONFHUB_MASTER_KEY"] = saved
        yield url


@pytest.fixture(params=["embedded", "server"])
def target(request: pytest.FixtureRequest, tmp_path: Path,
           monkeypatch: pytest.MonkeyPatch) -> Iterator[Target]:
    for name in list(os.environ):
        if name.startswith("CONFHUB_"):
            monkeypatch.delenv(name)
    tenant = f"t{uuid.uuid4().hex[:10]}"
    if request.param == "embedded":
        db = str(tmp_path / "confhub.db")
        hub = confhub.open(f"sqlite:///{db}", master_key=MASTER_KEY)
        option = ["--db", db]
    else:
        url = request.getfixturevalue("server_url")
        hub = confhub.open(url)
        option = ["--url", url]
    try:
        yield Target(request.param, hub, tenant, option)
    finally:
        hub.close()


def write(root: Path, files: dict[str, str]) -> Path:
    """Write ``{relative path: text}`` under ``root`` (made if needed); returns ``root``."""
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def git(root: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@t",
                           *args], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def git_repo(root: Path) -> Path:
    """A fresh git repository at ``root`` with everything in it committed."""
    root.mkdir(parents=True, exist_ok=True)
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "config", "--allow-empty")
    return root
