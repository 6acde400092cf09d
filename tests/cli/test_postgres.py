"""The CLI on PostgreSQL: ``--db postgresql://...`` reaches the same API as SQLite."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from confhub.cli import app

pytestmark = pytest.mark.postgres


def test_cli_on_postgresql(pg_url: str) -> None:
    runner = CliRunner()

    def run(*args: str, input: str | None = None) -> tuple[int, str]:
        result = runner.invoke(app, [*args, "--db", pg_url], input=input,
                               env={"CONFHUB_URL": None, "CONFHUB_AUTHOR": "tester"})
        return result.exit_code, result.stdout

    assert run("set", "models/claude-opus", '{"max_tokens": 8192}')[0] == 0
    assert run("patch", "models/claude-opus", '{"temperature": 0.2}')[0] == 0
    code, out = run("get", "models/claude-opus", "--json")
    assert code == 0 and json.loads(out)["version"] == 2
    code, out = run("txn", "-", "--json",
                    input='[{"op": "put", "namespace": "routing", "key": "t", "value": 1}]')
    assert code == 0 and json.loads(out)["revision"] == 3
    assert run("set", "models/claude-opus", "{}", "--if-version", "1")[0] == 4
    assert run("get", "models/missing")[0] == 3
    code, out = run("health", "--json")
    assert code == 0 and json.loads(out)["backend"] == "postgres"
