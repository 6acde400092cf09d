"""``confhub flags``: flagd flag-set files in and out as one transaction, list, evaluate."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .conftest import Invoke

FILE: dict[str, Any] = {
    "$schema": "https://flagd.dev/schema/v0/flags.json",
    "metadata": {"flagSetId": "shop"},
    "$evaluators": {"staff": {"ends_with": [{"var": "email"}, "@acme.com"]}},
    "flags": {
        "new-checkout": {"state": "ENABLED", "variants": {"on": True, "off": False},
                         "defaultVariant": "off",
                         "targeting": {"if": [{"$ref": "staff"}, "on", None]}},
        "limit": {"state": "ENABLED", "variants": {"low": 5, "high": 50},
                  "defaultVariant": "low"},
    },
}


def _file(tmp_path: Path, document: Any, name: str = "flags.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps(document), "utf-8")
    return str(path)


def test_import_writes_one_transaction_and_export_gives_the_file_back(
        cli: Invoke, tmp_path: Path) -> None:
    result = cli("flags", "import", _file(tmp_path, FILE), "--json")
    assert result.exit_code == 0, result.stderr
    summary = result.json()
    assert summary["created"] == ["flagset.evaluators", "flagset.metadata", "limit",
                                  "new-checkout"]
    revision = summary["revision"]
    changes = cli("changes", "--json").json()
    assert {c["revision"] for c in changes} == {revision}  # one transaction
    exported = cli("flags", "export")
    assert exported.exit_code == 0 and json.loads(exported.stdout) == FILE
    assert cli("get", "flags/limit", "--json").json()["value"]["defaultVariant"] == "low"


def test_reimport_rewrites_only_what_changed_and_prune_deletes(cli: Invoke,
                                                               tmp_path: Path) -> None:
    cli("flags", "import", _file(tmp_path, FILE))
    changed = json.loads(json.dumps(FILE))
    changed["flags"]["limit"]["defaultVariant"] = "high"
    del changed["flags"]["new-checkout"]
    again = cli("flags", "import", _file(tmp_path, changed, "v2.json"), "--json").json()
    assert (again["updated"], again["deleted"]) == (["limit"], [])
    assert "new-checkout" not in again["unchanged"] and "flagset.metadata" in again["unchanged"]
    pruned = cli("flags", "import", _file(tmp_path, changed, "v2.json"), "--prune", "--json")
    assert pruned.json()["deleted"] == ["new-checkout"]
    assert cli("get", "flags/new-checkout").exit_code == 3
    assert cli("history", "flags/limit", "--json").json()[0]["version"] == 2


def test_a_bad_flag_refuses_the_whole_file_with_exit_5(cli: Invoke, tmp_path: Path) -> None:
    bad = json.loads(json.dumps(FILE))
    bad["flags"]["limit"]["variants"]["high"] = "fifty"
    bad["flags"]["new-checkout"]["defaultVariant"] = "maybe"
    result = cli("flags", "import", _file(tmp_path, bad), "--json")
    assert result.exit_code == 5
    error = result.error()
    assert error["code"] == "validation_failed"
    assert {e["key"] for e in error["details"]["errors"]} == {"limit", "new-checkout"}
    assert "flag 'limit'" in error["message"]
    assert cli("flags", "ls", "--json").json() == {"flags": []}


def test_dry_run_writes_nothing(cli: Invoke, tmp_path: Path) -> None:
    result = cli("flags", "import", _file(tmp_path, FILE), "--dry-run", "--json")
    assert result.exit_code == 0 and result.json()["dry_run"] is True
    assert cli("flags", "ls", "--json").json() == {"flags": []}


def test_ls_and_eval(cli: Invoke, tmp_path: Path) -> None:
    cli("flags", "import", _file(tmp_path, FILE))
    rows = cli("flags", "ls", "--json").json()["flags"]
    assert [(r["key"], r["targeting"], r["version"]) for r in rows] == [
        ("limit", False, 1), ("new-checkout", True, 1)]
    staff = cli("flags", "eval", "new-checkout", "--context",
                '{"targetingKey": "u1", "email": "kim@acme.com"}', "--json").json()
    assert (staff["value"], staff["variant"], staff["reason"]) == (True, "on",
                                                                    "TARGETING_MATCH")
    assert staff["metadata"] == {"flagSetId": "shop", "version": 1}
    human = cli("flags", "eval", "limit")
    assert human.exit_code == 0 and "limit = 5" in human.stdout and "STATIC" in human.stdout
    assert cli("flags", "eval", "nope").exit_code == 3


def test_a_file_that_is_not_a_flag_set_is_a_usage_error(cli: Invoke, tmp_path: Path) -> None:
    result = cli("flags", "import", _file(tmp_path, {"flagz": {}}), "--json")
    assert result.exit_code == 2 and "flags" in result.error()["message"]
