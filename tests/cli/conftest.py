"""Fixtures for the CLI tests: a fresh local database per test, and a runner bound to it."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

SRC = Path(__file__).resolve().parents[2] / "src"
if str(SRC) not in sys.path:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(SRC))

from confhub.cli import app  # noqa: E402

Invoke = Callable[..., Result]


@pytest.fixture
def db(tmp_path: Path) -> str:
    return str(tmp_path / "confhub.db")


@pytest.fixture
def cli(db: str, monkeypatch: pytest.MonkeyPatch) -> Invoke:
    """``cli("get", "models/x", input=...)``: run the app in-process against ``db``.

    The environment is cleared of CONFHUB_* variables so a developer's own settings never leak
    into a test; stderr is kept apart from stdout so JSON output can be parsed as is.
    """
    for name in list(os.environ):
        if name.startswith("CONFHUB_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("CONFHUB_DB", db)
    monkeypatch.setenv("CONFHUB_AUTHOR", "tester")
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> Result:
        return runner.invoke(app, list(args), input=input, env={"COLUMNS": "200", **(env or {})},
                             catch_exceptions=False)

    return invoke


def as_json(result: Result) -> Any:
    """The stdout of a ``--json`` run, parsed; fails with the output on bad JSON."""
    try:
        return json.loads(result.stdout)
    except json.JSONDecodeError as error:  # pragma: no cover - diagnostic
        raise AssertionError(f"not JSON: {result.stdout!r} / {result.stderr!r}") from error
