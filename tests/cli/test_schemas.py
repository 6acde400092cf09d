"""``confhub schema …`` and ``confhub validate`` on a local database."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from confhub.cli import app

SCHEMA = {"type": "object", "additionalProperties": False,
          "properties": {"max_membrane_depth": {"type": "integer", "minimum": 1, "maximum": 64},
                         "esn_reservoir_size": {"type": "integer", "minimum": 64}}}
RULES = [{"expr": "self.esn_reservoir_size >= self.max_membrane_depth * 32",
          "message": "esn_reservoir_size must be at least max_membrane_depth * 32"}]


def run(db: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, [*args, "--db", str(db)], env={"COLUMNS": "200"})
    return result.exit_code, result.stdout, result.stderr


def test_schema_set_get_and_a_refused_set(tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    (tmp_path / "s.json").write_text(json.dumps({"schema": SCHEMA, "rules": RULES}))
    code, out, _ = run(db, "schema", "set", "params", "-f", str(tmp_path / "s.json"), "--json")
    assert code == 0 and json.loads(out)["version"] == 1
    code, out, _ = run(db, "schema", "get", "params", "--json")
    assert json.loads(out)["rules"][0]["expr"].startswith("self.esn_reservoir_size")
    code, _, err = run(db, "set", "params/agent",
                       '{"max_membrane_depth": 65, "esn_reservoir_size": 128}')
    assert code == 5
    assert "65 is greater than the maximum of 64" in err
    assert "esn_reservoir_size must be at least" in err
    code, _, _ = run(db, "get", "params/agent")
    assert code == 3


def test_validate_exit_codes(tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    run(db, "schema", "set", "params", json.dumps(SCHEMA))
    code, out, _ = run(db, "validate", "params/agent", '{"max_membrane_depth": 2}', "--json")
    assert code == 0 and json.loads(out)["valid"] is True
    code, out, _ = run(db, "validate", "params/agent", '{"bogus": 1}', "--json")
    assert code == 5 and json.loads(out)["errors"][0]["path"] == "/bogus"


def test_a_rule_that_does_not_compile_is_a_usage_error(tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    (tmp_path / "r.json").write_text(json.dumps([{"expr": "self.a >", "message": "m"}]))
    code, _, err = run(db, "schema", "set", "params", "{}", "--rules", str(tmp_path / "r.json"))
    assert code == 2 and "does not compile" in err


def test_schema_ls_history_rollback_delete(tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    run(db, "schema", "set", "params", json.dumps(SCHEMA))
    run(db, "schema", "set", "params", "{}")
    code, out, _ = run(db, "schema", "history", "params", "--json")
    assert [s["version"] for s in json.loads(out)] == [2, 1]
    code, out, _ = run(db, "schema", "rollback", "params", "--to", "1", "--json")
    assert code == 0 and json.loads(out)["rollback_of"] == 1
    code, out, _ = run(db, "schema", "ls")
    assert code == 0 and "params" in out
    code, _, _ = run(db, "schema", "delete", "params")
    assert code == 0
    code, _, _ = run(db, "schema", "get", "params")
    assert code == 3
