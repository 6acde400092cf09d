"""Fixtures for the CLI tests: a fresh store per test, and a runner bound to it.

Every CLI test runs twice: on a local database (``--db``, via ``CONFHUB_DB``) and through a real
HTTP server on its own fresh database (``--url``, via ``CONFHUB_URL``) - the CLI promises the same
behaviour on both targets, so both are held to the same assertions. Tests run the Typer app
in-process with ``CliRunner`` (fast); ``test_subprocess.py`` runs the real ``confhub``
executable a handful of times.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from confhub.cli import app


@dataclass(frozen=True)
class CliResult:
    """One CLI run: exit code, stdout and stderr kept apart (so JSON on stdout parses as is)."""

    exit_code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        """stdout parsed as JSON; fails showing both streams when it is not JSON."""
        try:
            return json.loads(self.stdout)
        except json.JSONDecodeError as error:
            raise AssertionError(f"not JSON: {self.stdout!r} / {self.stderr!r}") from error

    def error(self) -> dict[str, Any]:
        """The JSON error body a ``--json`` run wrote to stderr."""
        body: dict[str, Any] = json.loads(self.stderr)["error"]
        return body


Invoke = Callable[..., CliResult]


@pytest.fixture
def db(tmp_path: Path) -> str:
    return str(tmp_path / "confhub.db")


@pytest.fixture(params=["db", "server"])
def target(request: pytest.FixtureRequest, db: str) -> Iterator[dict[str, str]]:
    """The environment that points the CLI at a fresh local database or a fresh server."""
    if request.param == "db":
        import confhub

        confhub.open(db).close()  # a fresh, empty store (read commands refuse a missing file)
        yield {"CONFHUB_DB": db}
        return
    from confhub.server.testing import threaded_server

    with threaded_server(db) as url:
        yield {"CONFHUB_URL": url}


@pytest.fixture
def cli(target: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Invoke:
    """``cli("get", "models/x", input=...)``: run the app in-process against ``target``.

    CONFHUB_* variables are cleared so a developer's own settings never leak into a test.
    """
    for name in list(os.environ):
        if name.startswith("CONFHUB_"):
            monkeypatch.delenv(name)
    for name, value in target.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("CONFHUB_AUTHOR", "tester")
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None, env: dict[str, str] | None = None
               ) -> CliResult:
        result = runner.invoke(app, list(args), input=input,
                               env={"COLUMNS": "200", **(env or {})}, catch_exceptions=False)
        return CliResult(result.exit_code, result.stdout, result.stderr)

    return invoke
