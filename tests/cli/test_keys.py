"""get, set, patch, delete and ls: what people see, what scripts parse, and the exit codes."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .conftest import Invoke

OPUS = '{"max_tokens": 8192, "temperature": 0.5}'


class TestSet:
    def test_set_creates_version_1_and_says_so(self, cli: Invoke) -> None:
        result = cli("set", "models/claude-opus", OPUS, "--reason", "raise limit")
        assert result.exit_code == 0, result.output
        assert "models/claude-opus" in result.stdout and "version 1" in result.stdout

    def test_set_json_is_the_entry(self, cli: Invoke) -> None:
        entry = cli("set", "models/claude-opus", OPUS, "--json").json()
        assert entry["value"] == {"max_tokens": 8192, "temperature": 0.5}
        assert entry["version"] == 1 and entry["env"] == "base" and entry["tenant"] == "default"
        assert set(entry) >= {"namespace", "key", "revision", "created_at", "updated_at",
                              "updated_by", "secret"}

    def test_second_set_is_version_2(self, cli: Invoke) -> None:
        cli("set", "models/claude-opus", OPUS)
        assert cli("set", "models/claude-opus", "{}", "--json").json()["version"] == 2

    def test_value_from_stdin(self, cli: Invoke) -> None:
        cli("set", "models/claude-opus", "-", input=OPUS)
        assert cli("get", "models/claude-opus", "--raw").json()["max_tokens"] == 8192

    def test_value_from_yaml_file(self, cli: Invoke, tmp_path: Path) -> None:
        path = tmp_path / "opus.yaml"
        path.write_text("max_tokens: 8192\nreleased: 2024-03-04\nstop: [a, b]\n")
        assert cli("set", "models/claude-opus", "-f", str(path)).exit_code == 0
        value = cli("get", "models/claude-opus", "--raw").json()
        assert value == {"max_tokens": 8192, "released": "2024-03-04", "stop": ["a", "b"]}

    def test_value_from_json_file(self, cli: Invoke, tmp_path: Path) -> None:
        path = tmp_path / "opus.json"
        path.write_text(OPUS)
        cli("set", "models/claude-opus", "--file", str(path))
        assert cli("get", "models/claude-opus", "--raw").json()["temperature"] == 0.5

    def test_scalars_and_plain_words(self, cli: Invoke) -> None:
        cli("set", "features/dark-mode", "true")
        cli("set", "app/motd", "hello")
        cli("set", "app/banner", "--string", "42")
        assert cli("get", "features/dark-mode", "--raw").json() is True
        assert cli("get", "app/motd", "--raw").json() == "hello"
        assert cli("get", "app/banner", "--raw").json() == "42"

    def test_reason_author_metadata_reach_history(self, cli: Invoke) -> None:
        cli("set", "models/claude-opus", OPUS, "-r", "raise limit", "--author", "ops",
            "-m", "ticket=X-1", "-m", "commit=abc")
        (version,) = cli("history", "models/claude-opus", "--json").json()
        assert version["reason"] == "raise limit" and version["author"] == "ops"
        assert version["metadata"] == {"ticket": "X-1", "commit": "abc"}

    def test_author_defaults_to_environment(self, cli: Invoke) -> None:
        cli("set", "models/claude-opus", OPUS)
        assert cli("get", "models/claude-opus", "--json").json()["updated_by"] == "tester"

    def test_env_layer(self, cli: Invoke) -> None:
        cli("set", "models/claude-opus", OPUS)
        entry = cli("set", "models/claude-opus", '{"max_tokens": 1}', "-e", "production",
                            "--json").json()
        assert entry["env"] == "production" and entry["version"] == 1
        assert cli("get", "models/claude-opus", "--raw").json()["max_tokens"] == 8192

    def test_dry_run_writes_nothing(self, cli: Invoke) -> None:
        entry = cli("set", "models/claude-opus", OPUS, "--dry-run", "--json").json()
        assert entry["dry_run"] is True and entry["version"] == 1
        assert entry["diff"] == [{"op": "replace", "path": "",
                                  "value": {"max_tokens": 8192, "temperature": 0.5}}]
        assert cli("get", "models/claude-opus").exit_code == 3

    def test_dry_run_shows_what_would_change(self, cli: Invoke) -> None:
        cli("set", "models/claude-opus", OPUS)
        out = cli("set", "models/claude-opus", '{"max_tokens": 1, "temperature": 0.5}',
                  "--dry-run").stdout
        assert "would set" in out and "replace" in out and "/max_tokens" in out
        patched = cli("patch", "models/claude-opus", '{"top_p": 1}', "--dry-run", "--json")
        assert patched.json()["diff"] == [{"op": "add", "path": "/top_p", "value": 1}]
        assert cli("get", "models/claude-opus", "--json").json()["version"] == 1


class TestCompareAndSet:
    def test_expected_version_match_writes(self, cli: Invoke) -> None:
        cli("set", "models/claude-opus", OPUS)
        result = cli("set", "models/claude-opus", "{}", "--expected-version", "1")
        assert result.exit_code == 0

    def test_conflict_exits_4_and_names_current_version(self, cli: Invoke) -> None:
        cli("set", "models/claude-opus", OPUS)
        cli("set", "models/claude-opus", OPUS)
        result = cli("set", "models/claude-opus", "{}", "--if-version", "1")
        assert result.exit_code == 4
        assert "version 2" in result.stderr and "--expected-version 2" in result.stderr
        assert result.stdout == ""

    def test_conflict_json_error_body_on_stderr(self, cli: Invoke) -> None:
        cli("set", "models/claude-opus", OPUS)
        result = cli("set", "models/claude-opus", "{}", "--if-version", "0", "--json")
        assert result.exit_code == 4
        error = result.error()
        assert error["code"] == "version_conflict"
        assert error["details"]["current_version"] == 1

    def test_expected_zero_creates(self, cli: Invoke) -> None:
        assert cli("set", "models/new", "{}", "--expected-version", "0").exit_code == 0


class TestGet:
    def test_human_output_shows_value_and_version(self, cli: Invoke) -> None:
        cli("set", "models/claude-opus", OPUS)
        out = cli("get", "models/claude-opus").stdout
        assert "models/claude-opus" in out and "version 1" in out and '"max_tokens": 8192' in out

    def test_missing_key_exits_3(self, cli: Invoke) -> None:
        result = cli("get", "models/missing")
        assert result.exit_code == 3 and "not found" in result.stderr

    def test_missing_key_json_error(self, cli: Invoke) -> None:
        result = cli("get", "models/missing", "--json")
        assert result.exit_code == 3
        assert result.error()["code"] == "not_found"

    def test_old_version(self, cli: Invoke) -> None:
        cli("set", "models/claude-opus", OPUS)
        cli("set", "models/claude-opus", "{}")
        entry = cli("get", "models/claude-opus", "--version", "1", "--json").json()
        assert entry["version"] == 1 and entry["value"]["max_tokens"] == 8192

    def test_resolved_merges_layers_and_reports_sources(self, cli: Invoke) -> None:
        cli("set", "models/claude-opus", OPUS)
        cli("set", "models/claude-opus", '{"max_tokens": 100000}', "--env", "production")
        res = cli("get", "models/claude-opus", "--env", "production", "--resolved",
                          "--json").json()
        assert res["value"] == {"max_tokens": 100000, "temperature": 0.5}
        assert res["sources"] == {"max_tokens": "production", "temperature": "base"}
        human = cli("get", "models/claude-opus", "--env", "production", "--resolved").stdout
        assert "production" in human and "temperature" in human

    def test_tenant_option_isolates(self, cli: Invoke) -> None:
        cli("tenant", "create", "acme")
        cli("set", "models/claude-opus", OPUS, "--tenant", "acme")
        assert cli("get", "models/claude-opus").exit_code == 3
        assert cli("get", "models/claude-opus", "-t", "acme").exit_code == 0


class TestUsageErrors:
    def test_address_without_slash_exits_2(self, cli: Invoke) -> None:
        result = cli("get", "claude-opus")
        assert result.exit_code == 2 and "NAMESPACE/KEY" in result.stderr

    def test_invalid_name_exits_2(self, cli: Invoke) -> None:
        result = cli("set", "models/bad name", "{}")
        assert result.exit_code == 2 and "invalid key name" in result.stderr

    def test_unknown_option_exits_2(self, cli: Invoke) -> None:
        assert cli("get", "models/x", "--bogus").exit_code == 2

    def test_bad_json_value_exits_2(self, cli: Invoke) -> None:
        result = cli("set", "models/x", '{"not": [json')
        assert result.exit_code == 2 and "not valid JSON" in result.stderr

    def test_missing_value_exits_2(self, cli: Invoke) -> None:
        assert cli("set", "models/x").exit_code == 2

    def test_missing_file_exits_2(self, cli: Invoke) -> None:
        result = cli("set", "models/x", "-f", "/nonexistent/value.json")
        assert result.exit_code == 2 and "file not found" in result.stderr

    def test_bad_metadata_exits_2(self, cli: Invoke) -> None:
        assert cli("set", "models/x", "{}", "-m", "novalue").exit_code == 2


class TestPatch:
    def test_merge_patch_changes_and_removes_fields(self, cli: Invoke) -> None:
        cli("set", "models/claude-opus", OPUS)
        entry = cli("patch", "models/claude-opus", '{"temperature": null, "top_p": 1}',
                            "--json").json()
        assert entry["value"] == {"max_tokens": 8192, "top_p": 1} and entry["version"] == 2

    def test_json_patch(self, cli: Invoke) -> None:
        cli("set", "models/claude-opus", OPUS)
        ops = '[{"op": "replace", "path": "/max_tokens", "value": 1}]'
        entry = cli("patch", "models/claude-opus", "--json-patch", ops, "--json").json()
        assert entry["value"]["max_tokens"] == 1

    def test_patch_missing_key_exits_3(self, cli: Invoke) -> None:
        assert cli("patch", "models/missing", "{}").exit_code == 3


class TestDelete:
    def test_delete_writes_a_tombstone(self, cli: Invoke) -> None:
        cli("set", "models/claude-opus", OPUS)
        result = cli("delete", "models/claude-opus", "--json")
        assert result.exit_code == 0
        tombstone = result.json()
        assert tombstone["deleted"] is True and tombstone["version"] == 2
        assert cli("get", "models/claude-opus").exit_code == 3
        assert len(cli("history", "models/claude-opus", "--json").json()) == 2

    def test_delete_missing_exits_3(self, cli: Invoke) -> None:
        assert cli("delete", "models/missing").exit_code == 3

    def test_delete_with_wrong_version_exits_4(self, cli: Invoke) -> None:
        cli("set", "models/claude-opus", OPUS)
        assert cli("delete", "models/claude-opus", "--expected-version", "5").exit_code == 4


class TestLs:
    def test_namespaces_with_counts(self, cli: Invoke) -> None:
        cli("set", "models/a", "1")
        cli("set", "models/b", "2")
        cli("set", "routing/tiers", "{}")
        assert cli("ls", "--json").json() == [{"namespace": "models", "keys": 2},
                                                {"namespace": "routing", "keys": 1}]
        human = cli("ls").stdout
        assert "models" in human and "routing" in human

    def test_keys_of_a_namespace(self, cli: Invoke) -> None:
        cli("set", "models/a", "1")
        cli("set", "models/b", '{"x": 2}')
        entries = cli("ls", "models", "--json").json()
        assert [e["key"] for e in entries] == ["a", "b"]
        human = cli("ls", "models").stdout
        assert "a" in human and '{"x": 2}' in human

    def test_prefix(self, cli: Invoke) -> None:
        cli("set", "models/claude-opus", "1")
        cli("set", "models/claude-haiku", "2")
        cli("set", "models/gpt", "3")
        keys = [e["key"] for e in cli("ls", "models", "--prefix", "claude-", "--json").json()]
        assert keys == ["claude-haiku", "claude-opus"]

    def test_resolved_shows_what_an_env_sees(self, cli: Invoke) -> None:
        cli("set", "models/a", '{"x": 1, "y": 1}')
        cli("set", "models/a", '{"y": 2}', "--env", "production")
        cli("set", "models/only-prod", "3", "--env", "production")
        cli("set", "models/only-base", "4")
        listed = cli("ls", "models", "--env", "production", "--resolved", "--json").json()
        assert {r["key"]: r["value"] for r in listed} == {
            "a": {"x": 1, "y": 2}, "only-base": 4, "only-prod": 3}
        human = cli("ls", "models", "--env", "production", "--resolved").stdout
        assert "base v1, production v1" in human

    def test_empty_store_says_so(self, cli: Invoke) -> None:
        result = cli("ls")
        assert result.exit_code == 0 and "no namespaces" in result.stderr
        assert cli("ls", "--json").json() == []
