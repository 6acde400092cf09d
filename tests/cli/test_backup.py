"""export / import round trips, and snapshot / restore."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .conftest import Invoke


def _seed(cli: Invoke) -> None:
    cli("set", "models/claude-opus", '{"max_tokens": 8192}')
    cli("set", "models/claude-opus", '{"max_tokens": 4096}')
    cli("set", "routing/tiers", '{"fast": "haiku"}', "--env", "production")


class TestExportImport:
    def test_export_to_stdout_is_the_document(self, cli: Invoke) -> None:
        _seed(cli)
        document = cli("export").json()
        assert document["format"] == "confhub-export"
        assert {(e["namespace"], e["key"], e["env"]) for e in document["entries"]} == {
            ("models", "claude-opus", "base"), ("routing", "tiers", "production")}
        assert "history" not in document

    def test_export_with_history_to_a_file(self, cli: Invoke, tmp_path: Path) -> None:
        _seed(cli)
        path = tmp_path / "backup.json"
        summary = cli("export", "--history", "--to", str(path), "--json").json()
        assert summary["file"] == str(path) and summary["entries"] == 2
        assert len(json.loads(path.read_text())["history"]) == 3
        human = cli("export", "--to", str(path)).stdout
        assert "exported tenant default" in human

    def test_round_trip_into_another_tenant(self, cli: Invoke, tmp_path: Path) -> None:
        _seed(cli)
        cli("snapshot", "create", "before")
        cli("set", "models/claude-opus", '{"max_tokens": 1}')
        path = tmp_path / "backup.json"
        cli("export", "--history", "--to", str(path))
        counts = cli("import", str(path), "--tenant", "copy", "--json").json()
        assert counts == {"tenant": "copy", "created": 2, "updated": 0, "skipped": 0,
                          "versions": 4, "snapshots": 1, "snapshots_skipped": 0}
        entry = cli("get", "models/claude-opus", "-t", "copy", "--json").json()
        assert entry["value"] == {"max_tokens": 1} and entry["version"] == 3
        assert [(s["label"], s["revision"]) for s in
                cli("snapshot", "ls", "-t", "copy", "--json").json()] == [("before", 3)]
        cli("restore", "--snapshot", "before", "-t", "copy")
        entry = cli("get", "models/claude-opus", "-t", "copy", "--json").json()
        assert entry["value"] == {"max_tokens": 4096}

    def test_import_from_stdin_skips_existing_unless_overwrite(self, cli: Invoke) -> None:
        _seed(cli)
        document = cli("export").stdout
        assert cli("import", "-", "--json", input=document).json()["skipped"] == 2
        counts = cli("import", "-", "--overwrite", "--json", input=document).json()
        assert counts["updated"] == 2

    def test_import_dry_run(self, cli: Invoke) -> None:
        _seed(cli)
        document = cli("export").stdout
        counts = cli("import", "-", "-t", "copy", "--dry-run", "--json", input=document).json()
        assert counts["dry_run"] is True and counts["created"] == 2
        assert cli("get", "models/claude-opus", "-t", "copy").exit_code == 3

    def test_import_of_garbage_exits_2(self, cli: Invoke) -> None:
        assert cli("import", "-", input="[1, 2]").exit_code == 2
        assert cli("import", "-", input='{"format": "nope"}').exit_code == 2

    def test_export_to_a_missing_directory_exits_2(self, cli: Invoke, tmp_path: Path) -> None:
        result = cli("export", "--to", str(tmp_path / "no" / "such" / "dir.json"))
        assert result.exit_code == 2 and "cannot write" in result.stderr

    def test_export_of_missing_tenant_exits_3(self, cli: Invoke) -> None:
        assert cli("export", "--tenant", "ghost").exit_code == 3


class TestSnapshotRestore:
    def test_snapshot_create_and_ls(self, cli: Invoke) -> None:
        _seed(cli)
        snap = cli("snapshot", "create", "before", "--json").json()
        assert snap["label"] == "before" and snap["revision"] == 3
        assert [s["label"] for s in cli("snapshot", "ls", "--json").json()] == ["before"]
        assert "before" in cli("snapshot", "ls").stdout

    def test_duplicate_label_exits_4(self, cli: Invoke) -> None:
        _seed(cli)
        cli("snapshot", "create", "before")
        assert cli("snapshot", "create", "before").exit_code == 4

    def test_restore_snapshot_is_a_new_transaction(self, cli: Invoke) -> None:
        _seed(cli)
        cli("snapshot", "create", "before")
        cli("set", "models/claude-opus", '{"max_tokens": 1}')
        cli("set", "models/extra", "1")
        result = cli("restore", "--snapshot", "before", "--json").json()
        assert result["revision"] == 6
        assert {(c["key"], c["op"], c["deleted"]) for c in result["changes"]} == {
            ("claude-opus", "restore", False), ("extra", "restore", True)}
        assert cli("get", "models/claude-opus", "--raw").json() == {"max_tokens": 4096}
        assert cli("get", "models/extra").exit_code == 3

    def test_restore_revision_of_one_namespace(self, cli: Invoke) -> None:
        _seed(cli)
        cli("set", "models/claude-opus", '{"max_tokens": 1}')
        cli("set", "routing/tiers", '{"fast": "opus"}', "--env", "production")
        out = cli("restore", "--revision", "3", "--namespace", "models").stdout
        assert "1 key(s) changed" in out
        assert cli("get", "models/claude-opus", "--raw").json() == {"max_tokens": 4096}
        routing = cli("get", "routing/tiers", "--env", "production", "--raw").json()
        assert routing == {"fast": "opus"}

    def test_restore_needs_exactly_one_target(self, cli: Invoke) -> None:
        assert cli("restore").exit_code == 2
        assert cli("restore", "--snapshot", "a", "--revision", "1").exit_code == 2

    def test_restore_missing_snapshot_exits_3(self, cli: Invoke) -> None:
        assert cli("restore", "--snapshot", "ghost").exit_code == 3
