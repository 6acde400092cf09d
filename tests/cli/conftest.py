"""Fixtures for the CLI tests: a fresh local database per test, and a runner bound to it.

Tests run the Typer app in-process with ``CliRunner`` (fast); ``test_subprocess.py`` runs the
real ``confhub`` executable a handful of times, against a local database and against a server.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
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


@pytest.fixture
def cli(db: str, monkeypatch: pytest.MonkeyPatch) -> Invoke:
    """``cli("get", "models/x", input=...)``: run the app in-process against ``db``.

    CONFHUB_* variables are cleared so a developer's own settings never leak into a test.
    """
    for name in list(os.environ):
        if name.startswith("CONFHUB_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("CONFHUB_DB", db)
    monkeypatch.setenv("CONFHUB_AUTHOR", "tester")
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None, env: dict[str, str] | None = None
               ) -> CliResult:
        result = runner.invoke(app, list(args), input=input,
                               env={"COLUMNS": "200", **(env or {})}, catch_exceptions=False)
        return CliResult(result.exit_code, result.stdout, result.stderr)

    return invoke
