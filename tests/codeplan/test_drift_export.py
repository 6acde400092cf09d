"""drift (both directions) and export --to DIR (round trips that keep comments)."""

from __future__ import annotations

from pathlib import Path

import pytest

from confhub.codeplan import export_to_directory, load_directory, make_plan

from .conftest import Target, write

VALUES = {
    ("models", "opus"): {"max_tokens": 8192, "tags": ["a", "b"], "nested": {"x": None}},
    ("models", "plain"): "just a string",
    ("routing", "tiers"): {"default": "opus", "fallback": ["gpt", "haiku"], "ratio": 0.5},
}


def seed(target: Target) -> None:
    target.hub.create_tenant(target.tenant)
    for (namespace, key), value in VALUES.items():
        target.cfg.set(namespace, key, value)
    target.cfg.set("models", "opus", {"max_tokens": 4096}, env="production")


class TestDrift:
    def test_in_sync_after_apply_exits_0(self, target: Target, tmp_path: Path) -> None:
        root = write(tmp_path / "cfg", {"models/a.yaml": "a: 1\n"})
        assert target.cli("apply", str(root)).exit_code == 0
        run = target.cli("drift", str(root))
        assert run.exit_code == 0, run.stdout + run.stderr
        assert "in sync" in run.stdout

    def test_a_store_change_is_drift_with_who_and_why(self, target: Target,
                                                      tmp_path: Path) -> None:
        root = write(tmp_path / "cfg", {"models/a.yaml": "a: 1\n", "models/b.yaml": "b: 1\n"})
        target.cli("apply", str(root))
        target.cfg.patch("models", "a", {"a": 2}, author="mallory", reason="hotfix")
        target.cfg.set("models", "unmanaged", 1)  # not from this directory: not drift
        run = target.cli("drift", str(root), "--json")
        assert run.exit_code == 2
        [moved] = run.json()["store"]
        assert (moved["key"], moved["author"], moved["reason"], moved["op"]) == (
            "a", "mallory", "hotfix", "patch")
        assert run.json()["files"] == []

    def test_a_file_change_is_drift(self, target: Target, tmp_path: Path) -> None:
        root = write(tmp_path / "cfg", {"models/a.yaml": "a: 1\n", "models/b.yaml": "b: 1\n"})
        target.cli("apply", str(root))
        write(root, {"models/a.yaml": "a: 2\n", "models/c.yaml": "c: 1\n"})
        (root / "models/b.yaml").unlink()
        run = target.cli("drift", str(root), "--json")
        assert run.exit_code == 2
        assert run.json()["files"] == [{"file": "models/a.yaml", "status": "modified"},
                                       {"file": "models/b.yaml", "status": "removed"},
                                       {"file": "models/c.yaml", "status": "added"}]
        assert run.json()["store"] == []

    def test_never_applied_is_drift(self, target: Target, tmp_path: Path) -> None:
        root = write(tmp_path / "cfg", {"models/a.yaml": "a: 1\n"})
        assert target.cli("drift", str(root)).exit_code == 2


class TestExportRoundTrip:
    @pytest.mark.parametrize("fmt", ["yaml", "yml", "json", "toml"])
    def test_export_then_plan_is_empty(self, target: Target, tmp_path: Path,
                                       fmt: str) -> None:
        seed(target)
        out = tmp_path / "out"
        export_to_directory(target.hub, target.tenant, out, file_format=fmt)
        plan = make_plan(target.hub, target.tenant, load_directory(out))
        assert plan.changes == ()
        assert plan.unchanged == 4
        assert (out / f"routing/tiers.{fmt}").exists()

    def test_toml_falls_back_to_yaml_for_what_toml_cannot_hold(self, target: Target,
                                                               tmp_path: Path) -> None:
        seed(target)
        result = export_to_directory(target.hub, target.tenant, tmp_path / "out",
                                     file_format="toml")
        assert sorted(result.fallbacks) == ["models/opus.yaml", "models/plain.yaml"]

    def test_rewritten_yaml_keeps_comments_and_order(self, target: Target,
                                                     tmp_path: Path) -> None:
        root = write(tmp_path / "cfg", {"models/a.yaml": (
            "# owned by the ML team\nzeta: 1   # keep last-but-one\nalpha:\n"
            "  # why two\n  tries: 2\ngone: true\n")})
        target.cli("apply", str(root))
        target.cfg.set("models", "a", {"zeta": 5, "alpha": {"tries": 2}, "new": "x"})
        export_to_directory(target.hub, target.tenant, root)
        assert (root / "models/a.yaml").read_text() == (
            "# owned by the ML team\nzeta: 5   # keep last-but-one\nalpha:\n"
            "  # why two\n  tries: 2\nnew: x\n")
        assert make_plan(target.hub, target.tenant, load_directory(root)).changes == ()

    def test_rewritten_toml_keeps_comments(self, target: Target, tmp_path: Path) -> None:
        root = write(tmp_path / "cfg", {"models/a.toml": (
            "# limits\nmax_tokens = 10  # agreed\n\n[retry]\n# be gentle\ntries = 3\n")})
        target.cli("apply", str(root))
        target.cfg.patch("models", "a", {"retry": {"tries": 4}})
        export_to_directory(target.hub, target.tenant, root)
        assert (root / "models/a.toml").read_text() == (
            "# limits\nmax_tokens = 10  # agreed\n\n[retry]\n# be gentle\ntries = 4\n")

    def test_unchanged_files_are_not_touched(self, target: Target, tmp_path: Path) -> None:
        root = write(tmp_path / "cfg", {"models/a.json": '{"a":   1}'})
        target.cli("apply", str(root))
        result = export_to_directory(target.hub, target.tenant, root)
        assert (root / "models/a.json").read_text() == '{"a":   1}'
        assert "models/a.json" not in result.written and result.unchanged

    def test_stale_files_are_kept_unless_pruned(self, target: Target, tmp_path: Path) -> None:
        root = write(tmp_path / "cfg", {"models/a.yaml": "1\n", "models/old.yaml": "1\n"})
        target.hub.create_tenant(target.tenant)
        target.cfg.set("models", "a", 1)
        assert export_to_directory(target.hub, target.tenant, root).stale == (
            "models/old.yaml",)
        export_to_directory(target.hub, target.tenant, root, prune=True)
        assert not (root / "models/old.yaml").exists()
        assert make_plan(target.hub, target.tenant, load_directory(root)).changes == ()

    def test_secrets_export_masked_and_plan_back_to_nothing(self, target: Target,
                                                            tmp_path: Path) -> None:
        target.hub.create_tenant(target.tenant)
        target.cfg.set_schema("db", {"type": ["object", "string"], "properties": {
            "password": {"type": "string", "x-secret": True}}})
        target.cfg.set("db", "main", {"password": "hunter2", "pool": 5})
        target.cfg.set("db", "token", "s3cr3t", secret=True)
        out = tmp_path / "out"
        export_to_directory(target.hub, target.tenant, out)
        text = (out / "db/main.yaml").read_text() + (out / "db/token.yaml").read_text()
        assert "hunter2" not in text and "s3cr3t" not in text and "***" in text
        assert make_plan(target.hub, target.tenant, load_directory(out)).changes == ()
