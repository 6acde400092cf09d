"""The ``--json`` output of every command has a pinned shape, the same on both targets.

Scripts depend on these keys; a change here is a breaking change and needs a reason in
docs/decisions.md. (Values are tested elsewhere; this file pins the keys.)
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .conftest import Invoke

ENTRY = {"tenant", "env", "namespace", "key", "value", "version", "revision", "created_at",
         "updated_at", "updated_by", "secret"}
VERSION = {"tenant", "env", "namespace", "key", "version", "revision", "op", "value", "deleted",
           "created_at", "author", "reason", "metadata", "rollback_of", "request_id", "secret"}
RESOLVED = {"tenant", "env", "namespace", "key", "value", "sources", "versions"}
SNAPSHOT = {"tenant", "label", "revision", "created_at"}
TENANT = {"id", "revision", "created_at", "deleted_at", "deleted"}


def keys(data: Any) -> set[str]:
    assert isinstance(data, dict), data
    return set(data)


def test_every_command_json_shape(cli: Invoke, tmp_path: Path) -> None:
    def js(*args: str, input: str | None = None) -> Any:
        result = cli(*args, "--json", input=input)
        assert result.exit_code == 0, (args, result.stderr)
        return result.json()

    assert keys(js("set", "m/k", '{"a": 1}')) == ENTRY
    assert keys(js("set", "m/k", '{"a": 2}', "--dry-run")) == ENTRY | {"dry_run", "diff"}
    assert keys(js("patch", "m/k", '{"b": 1}')) == ENTRY
    assert keys(js("get", "m/k")) == ENTRY
    assert keys(js("get", "m/k", "--resolved")) == RESOLVED
    assert keys(js("rollback", "m/k", "--to", "1")) == ENTRY
    assert [keys(v) for v in js("history", "m/k")] == [VERSION] * 3
    assert all({"op", "path"} <= keys(op) for op in js("diff", "m/k", "1", "2"))
    assert js("ls") == [{"namespace": "m", "keys": 1}]
    assert [keys(e) for e in js("ls", "m")] == [ENTRY]
    assert [keys(r) for r in js("ls", "m", "--resolved")] == [RESOLVED]

    txn = js("txn", "-", input='[{"op": "put", "namespace": "m", "key": "t", "value": 1}]')
    assert keys(txn) == {"revision", "changes"} and [keys(c) for c in txn["changes"]] == [VERSION]
    assert keys(js("delete", "m/t")) == VERSION
    assert {frozenset(keys(c)) for c in js("changes")} == {frozenset(VERSION)}

    assert keys(js("snapshot", "create", "s1")) == SNAPSHOT
    assert [keys(s) for s in js("snapshot", "ls")] == [SNAPSHOT]
    assert keys(js("restore", "--snapshot", "s1")) == {"tenant", "snapshot", "to_revision",
                                                        "namespace", "revision", "changes"}

    path = str(tmp_path / "export.json")
    assert keys(js("export", "--to", path)) == {"tenant", "file", "bytes", "include_history",
                                                "entries"}
    assert keys(js("import", path, "--tenant", "copy")) == {
        "tenant", "created", "updated", "skipped", "versions", "snapshots", "snapshots_skipped"}

    assert keys(js("tenant", "create", "acme")) == TENANT
    assert keys(js("tenant", "clone", "acme", "acme2")) == TENANT | {"source"}
    assert keys(js("tenant", "delete", "acme2")) == {"id", "deleted", "hard"}
    assert keys(js("tenant", "restore", "acme2")) == TENANT
    assert all(keys(t) == TENANT for t in js("tenant", "ls", "--all"))

    assert {"total_configs", "total_tenants", "total_versions", "storage_size_mb",
            "configs_per_namespace"} <= keys(js("stats"))
    assert {"ok", "backend"} <= keys(js("health"))
