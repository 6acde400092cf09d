"""tenant ls/create/clone/delete/restore, stats and health."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .conftest import Invoke


class TestTenant:
    def test_default_tenant_is_listed(self, cli: Invoke) -> None:
        assert [t["id"] for t in cli("tenant", "ls", "--json").json()] == ["default"]
        assert "default" in cli("tenant", "ls").stdout

    def test_create_from_template_with_overrides(self, cli: Invoke, tmp_path: Path) -> None:
        cli("set", "models/claude-opus", '{"max_tokens": 8192, "temperature": 0.5}')
        overrides = tmp_path / "overrides.yaml"
        overrides.write_text("models:\n  claude-opus: {max_tokens: 100}\n")
        info = cli("tenant", "create", "acme", "--template", "default", "--overrides",
                   str(overrides), "--json").json()
        assert info["id"] == "acme" and info["deleted"] is False
        value = cli("get", "models/claude-opus", "-t", "acme", "--raw").json()
        assert value == {"max_tokens": 100, "temperature": 0.5}

    def test_show(self, cli: Invoke) -> None:
        cli("set", "models/a", "1")
        cli("set", "models/a", "2", "--env", "production")
        shown = cli("tenant", "show", "default", "--json").json()
        assert shown["id"] == "default" and shown["namespaces"] == {"models": 2}
        assert "models" in cli("tenant", "show", "default").stdout
        assert cli("tenant", "show", "ghost").exit_code == 3

    def test_create_existing_exits_4(self, cli: Invoke) -> None:
        cli("tenant", "create", "acme")
        result = cli("tenant", "create", "acme", "--json")
        assert result.exit_code == 4 and result.error()["code"] == "tenant_exists"

    def test_clone(self, cli: Invoke) -> None:
        cli("set", "models/a", "1")
        assert "cloned tenant default to copy" in cli("tenant", "clone", "default", "copy").stdout
        assert cli("get", "models/a", "-t", "copy", "--raw").json() == 1

    def test_soft_delete_and_restore(self, cli: Invoke) -> None:
        cli("tenant", "create", "acme")
        assert "tenant restore acme" in cli("tenant", "delete", "acme").stdout
        assert [t["id"] for t in cli("tenant", "ls", "--json").json()] == ["default"]
        listed = {t["id"]: t["deleted"] for t in cli("tenant", "ls", "--all", "--json").json()}
        assert listed == {"acme": True, "default": False}
        assert cli("get", "models/a", "-t", "acme").exit_code == 3
        assert cli("tenant", "restore", "acme", "--json").json()["deleted"] is False

    def test_hard_delete_asks_first(self, cli: Invoke) -> None:
        cli("tenant", "create", "acme")
        refused = cli("tenant", "delete", "acme", "--hard", input="n\n")
        assert refused.exit_code == 1
        assert len(cli("tenant", "ls", "--json").json()) == 2
        assert cli("tenant", "delete", "acme", "--hard", "--yes").exit_code == 0
        assert len(cli("tenant", "ls", "--all", "--json").json()) == 1

    def test_default_cannot_be_deleted(self, cli: Invoke) -> None:
        assert cli("tenant", "delete", "default").exit_code == 2

    def test_missing_tenant_exits_3(self, cli: Invoke) -> None:
        assert cli("tenant", "restore", "ghost").exit_code == 3
        assert cli("ls", "--tenant", "ghost").exit_code == 3


class TestStatsHealth:
    def test_stats(self, cli: Invoke) -> None:
        cli("set", "models/a", "1")
        stats = cli("stats", "--json").json()
        assert stats["total_configs"] == 1 and stats["configs_per_namespace"] == {"models": 1}
        assert "total_configs" in cli("stats").stdout

    def test_health_ok_exits_0(self, cli: Invoke) -> None:
        health = cli("health", "--json").json()
        assert health["ok"] is True and health["backend"] == "sqlite"
        assert cli("health").exit_code == 0

    def test_unhealthy_exits_1(self, cli: Invoke) -> None:
        result = cli("health", "--url", "http://127.0.0.1:9", "--json")
        assert result.exit_code == 1 and result.json()["ok"] is False

    def test_unreachable_server_is_an_error_not_a_traceback(self, cli: Invoke) -> None:
        result = cli("get", "models/a", "--url", "http://127.0.0.1:9", "--json")
        assert result.exit_code == 1
        assert result.error()["code"] == "unavailable"
        human = cli("get", "models/a", "--url", "http://127.0.0.1:9")
        assert "cannot reach" in human.stderr and "Traceback" not in human.stderr


class TestTargetChoice:
    def test_typed_db_beats_url_from_environment(self, cli: Invoke, tmp_path: Path) -> None:
        local = str(tmp_path / "other.db")
        env = {"CONFHUB_URL": "http://127.0.0.1:9"}  # nothing listens there
        assert cli("set", "m/k", "1", "--db", local, env=env).exit_code == 0
        assert cli("get", "m/k", "--db", local, "--raw", env=env).json() == 1

    def test_typed_url_and_db_is_a_usage_error(self, cli: Invoke, tmp_path: Path) -> None:
        result = cli("get", "m/k", "--url", "http://127.0.0.1:9", "--db", str(tmp_path / "x"))
        assert result.exit_code == 2 and "not both" in result.stderr
