"""history, diff and rollback: reading the past, and bringing it back as a new version."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .conftest import Invoke


def _three_versions(cli: Invoke) -> None:
    cli("set", "models/claude-opus", '{"max_tokens": 8192, "temperature": 0.5}', "-r", "create")
    cli("set", "models/claude-opus", '{"max_tokens": 4096, "temperature": 0.5}', "-r", "lower")
    cli("patch", "models/claude-opus", '{"temperature": 0.2, "top_p": 1}', "-r", "tune")


class TestHistory:
    def test_newest_first_with_reasons(self, cli: Invoke) -> None:
        _three_versions(cli)
        versions = cli("history", "models/claude-opus", "--json").json()
        assert [v["version"] for v in versions] == [3, 2, 1]
        assert [v["op"] for v in versions] == ["patch", "put", "put"]
        assert [v["reason"] for v in versions] == ["tune", "lower", "create"]

    def test_limit(self, cli: Invoke) -> None:
        _three_versions(cli)
        assert len(cli("history", "models/claude-opus", "-n", "2", "--json").json()) == 2

    def test_before_pages_back(self, cli: Invoke) -> None:
        _three_versions(cli)
        page = cli("history", "models/claude-opus", "--before", "3", "-n", "1", "--json").json()
        assert [v["version"] for v in page] == [2]

    def test_human_table(self, cli: Invoke) -> None:
        _three_versions(cli)
        out = cli("history", "models/claude-opus", "--values").stdout
        for text in ("version", "patch", "tune", "tester", '"max_tokens": 4096'):
            assert text in out

    def test_reasons_are_shown_verbatim_not_as_markup(self, cli: Invoke) -> None:
        cli("set", "models/x", "1", "-r", "[red]careful[/red]")
        assert "[red]careful[/red]" in cli("history", "models/x").stdout

    def test_missing_key_exits_3(self, cli: Invoke) -> None:
        assert cli("history", "models/missing").exit_code == 3


class TestDiff:
    def test_between_two_versions_is_json_patch(self, cli: Invoke) -> None:
        _three_versions(cli)
        ops = cli("diff", "models/claude-opus", "1", "3", "--json").json()
        assert {"op": "replace", "path": "/max_tokens", "value": 4096} in ops
        assert {"op": "add", "path": "/top_p", "value": 1} in ops

    def test_default_is_the_last_change(self, cli: Invoke) -> None:
        _three_versions(cli)
        ops = cli("diff", "models/claude-opus", "--json").json()
        assert {op["path"] for op in ops} == {"/temperature", "/top_p"}

    def test_human_output_marks_changes(self, cli: Invoke) -> None:
        _three_versions(cli)
        out = cli("diff", "models/claude-opus", "2", "3").stdout
        assert "version 2 → 3" in out and "+ add" in out and "/top_p" in out

    def test_missing_version_exits_3(self, cli: Invoke) -> None:
        _three_versions(cli)
        assert cli("diff", "models/claude-opus", "1", "9").exit_code == 3

    def test_missing_key_exits_3(self, cli: Invoke) -> None:
        assert cli("diff", "models/missing").exit_code == 3


class TestRollback:
    def test_rollback_writes_a_new_version(self, cli: Invoke) -> None:
        _three_versions(cli)
        entry = cli("rollback", "models/claude-opus", "--to", "1", "-r", "bad", "--json").json()
        assert entry["version"] == 4
        assert entry["value"] == {"max_tokens": 8192, "temperature": 0.5}
        latest = cli("history", "models/claude-opus", "-n", "1", "--json").json()[0]
        assert latest["op"] == "rollback" and latest["rollback_of"] == 1

    def test_human_output(self, cli: Invoke) -> None:
        _three_versions(cli)
        out = cli("rollback", "models/claude-opus", "--to", "2").stdout
        assert "version 2" in out and "version 4" in out

    def test_needs_to(self, cli: Invoke) -> None:
        _three_versions(cli)
        assert cli("rollback", "models/claude-opus").exit_code == 2

    def test_missing_version_exits_3(self, cli: Invoke) -> None:
        _three_versions(cli)
        assert cli("rollback", "models/claude-opus", "--to", "9").exit_code == 3

    def test_conflict_exits_4(self, cli: Invoke) -> None:
        _three_versions(cli)
        result = cli("rollback", "models/claude-opus", "--to", "1", "--expected-version", "2")
        assert result.exit_code == 4


class TestChanges:
    def test_feed_in_revision_order_from_since(self, cli: Invoke) -> None:
        _three_versions(cli)
        cli("set", "routing/tiers", "{}")
        feed = cli("changes", "--json").json()
        assert [(c["revision"], c["key"]) for c in feed] == [
            (1, "claude-opus"), (2, "claude-opus"), (3, "claude-opus"), (4, "tiers")]
        assert [c["revision"] for c in cli("changes", "--since", "2", "--json").json()] == [3, 4]
        assert "routing/tiers" in cli("changes", "--since", "3").stdout

    def test_nothing_new_is_not_an_error(self, cli: Invoke) -> None:
        result = cli("changes", "--since", "5")
        assert result.exit_code == 0 and "no changes" in result.stderr
