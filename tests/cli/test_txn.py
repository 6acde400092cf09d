"""txn: a batch of ops from a file or stdin, committed atomically as one revision."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from confhub.cli.txn import parse_ops
from confhub.errors import InvalidRequest

if TYPE_CHECKING:
    from .conftest import Invoke

OPS_YAML = """\
reason: tune routing
ops:
  - {op: put, namespace: routing, key: tiers, value: {fast: haiku}}
  - {op: put, namespace: models, key: claude-opus, value: {max_tokens: 8192}}
"""


class TestTxn:
    def test_ops_from_yaml_file_commit_as_one_revision(self, cli: Invoke, tmp_path: Path) -> None:
        path = tmp_path / "ops.yaml"
        path.write_text(OPS_YAML)
        result = cli("txn", str(path), "--json").json()
        assert result["revision"] == 1
        assert sorted((c["namespace"], c["key"], c["revision"]) for c in result["changes"]) == [
            ("models", "claude-opus", 1), ("routing", "tiers", 1)]
        assert cli("get", "routing/tiers", "--raw").json() == {"fast": "haiku"}
        assert cli("history", "routing/tiers", "--json").json()[0]["reason"] == "tune routing"

    def test_ops_from_stdin_as_a_bare_list(self, cli: Invoke) -> None:
        cli("set", "routing/old", "1")
        ops = [{"op": "delete", "namespace": "routing", "key": "old"},
               {"op": "set", "namespace": "routing", "key": "new", "value": 2}]
        result = cli("txn", "-", input=json.dumps(ops))
        assert result.exit_code == 0, result.stderr
        assert "committed as revision 2" in result.stdout
        assert cli("get", "routing/old").exit_code == 3

    def test_a_failing_op_writes_nothing(self, cli: Invoke) -> None:
        cli("set", "routing/tiers", "1")
        ops = [{"op": "put", "namespace": "routing", "key": "new", "value": 1},
               {"op": "put", "namespace": "routing", "key": "tiers", "value": 2,
                "expected_version": 7}]
        result = cli("txn", "-", "--json", input=json.dumps(ops))
        assert result.exit_code == 4
        assert result.error()["code"] == "version_conflict"
        assert cli("get", "routing/new").exit_code == 3

    def test_dry_run_commits_nothing(self, cli: Invoke) -> None:
        ops = [{"op": "put", "namespace": "routing", "key": "new", "value": 1}]
        result = cli("txn", "-", "--dry-run", "--json", input=json.dumps(ops)).json()
        assert result["dry_run"] is True and len(result["changes"]) == 1
        assert cli("get", "routing/new").exit_code == 3

    def test_env_option_is_the_default_layer(self, cli: Invoke) -> None:
        ops = [{"op": "put", "namespace": "m", "key": "k", "value": 1},
               {"op": "put", "namespace": "m", "key": "k", "value": 2, "env": "base"}]
        cli("txn", "-", "--env", "staging", input=json.dumps(ops))
        assert cli("get", "m/k", "--env", "staging", "--raw").json() == 1
        assert cli("get", "m/k", "--raw").json() == 2

    def test_bad_document_exits_2(self, cli: Invoke) -> None:
        result = cli("txn", "-", input='[{"op": "put", "namespace": "m"}]')
        assert result.exit_code == 2 and "op 1" in result.stderr


class TestParseOps:
    def test_document_options_are_returned(self) -> None:
        ops, options = parse_ops({"reason": "r", "ops": [
            {"op": "delete", "namespace": "a", "key": "b", "expected_version": 3}]}, "base")
        assert options == {"reason": "r"}
        assert ops[0].to_dict() == {"op": "delete", "namespace": "a", "key": "b", "env": "base",
                                    "expected_version": 3}

    def test_address_shorthand(self) -> None:
        ops, _ = parse_ops([{"op": "put", "address": "a/b", "value": 1}], "base")
        assert (ops[0].namespace, ops[0].key) == ("a", "b")

    @pytest.mark.parametrize("document, message", [
        ([], "non-empty"),
        ({"ops": [], "x": 1}, "unknown field"),
        (["put"], "op 1 is not an object"),
        ([{"op": "upsert", "namespace": "a", "key": "b"}], "put, patch or delete"),
        ([{"op": "put", "namespace": "a", "key": "b"}], "needs a 'value'"),
        ([{"op": "delete", "namespace": "a", "key": "b", "expected_version": -1}], ">= 0"),
        ([{"op": "delete", "namespace": "a", "key": "b", "typo": 1}], "unknown field"),
    ])
    def test_malformed_documents_are_refused(self, document: object, message: str) -> None:
        with pytest.raises(InvalidRequest, match=message):
            parse_ops(document, "base")
