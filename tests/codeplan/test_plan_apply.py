"""plan and apply against an embedded hub and a real server: diffs, atomicity, CAS, prune,
git metadata and exit codes."""

from __future__ import annotations

from pathlib import Path

import pytest

import confhub
from confhub.codeplan import PlanRefused, apply_plan, load_directory, make_plan
from confhub.codeplan.risk import Level

from .conftest import Target, git, git_repo, write

MODELS = {"models/opus.yaml": "# limits agreed with finance\nmax_tokens: 8192\n"
                              "temperature: 0.2\nretry:\n  tries: 3\n  backoff: 0.5\n"}


def plan_of(target: Target, root: Path, **options: object):  # type: ignore[no-untyped-def]
    return make_plan(target.hub, target.tenant, load_directory(root), **options)  # type: ignore[arg-type]


def apply_dir(target: Target, root: Path, **options: object) -> int | None:
    plan = plan_of(target, root, prune=bool(options.pop("prune", False)))
    return apply_plan(target.hub, plan, reason="test", **options).revision  # type: ignore[arg-type]


class TestPlan:
    def test_a_one_field_edit_shows_as_one_field(self, target: Target, tmp_path: Path) -> None:
        root = write(tmp_path / "cfg", MODELS)
        apply_dir(target, root)
        (root / "models/opus.yaml").write_text(
            MODELS["models/opus.yaml"].replace("tries: 3", "tries: 5"))
        run = target.cli("plan", str(root), "--json")
        assert run.exit_code == 2, run.stderr
        [change] = run.json()["changes"]
        assert change["action"] == "update"
        assert change["fields"] == [{"path": "retry.tries", "pointer": "/retry/tries",
                                     "op": "replace", "old": 3, "new": 5}]

    def test_nothing_to_do_exits_0(self, target: Target, tmp_path: Path) -> None:
        root = write(tmp_path / "cfg", MODELS)
        apply_dir(target, root)
        run = target.cli("plan", str(root))
        assert run.exit_code == 0, run.stdout + run.stderr
        assert "no changes" in run.stdout

    def test_human_plan_has_a_summary_line(self, target: Target, tmp_path: Path) -> None:
        root = write(tmp_path / "cfg", {**MODELS, "models/gpt.json": '{"max_tokens": 1}'})
        apply_dir(target, root)
        write(root, {"models/opus.yaml": "max_tokens: 1\ntemperature: 0.2\n"
                                         "retry: {tries: 3, backoff: 0.5}\n",
                     "models/new.yaml": "a: 1\n"})
        run = target.cli("plan", str(root))
        assert run.exit_code == 2
        assert "1 to change, 1 to create, 0 to delete; risk LOW" in run.stdout
        assert "max_tokens" in run.stdout and "8192 → 1" in run.stdout

    def test_validation_results_come_from_the_stores_schemas(self, target: Target,
                                                             tmp_path: Path) -> None:
        target.hub.create_tenant(target.tenant)
        target.cfg.set_schema("models", {"type": "object", "properties": {
            "max_tokens": {"type": "integer", "maximum": 10000}}})
        root = write(tmp_path / "cfg", {"models/opus.yaml": "max_tokens: 20000\n"})
        run = target.cli("plan", str(root), "--json")
        assert run.exit_code == 2
        [change] = run.json()["changes"]
        assert change["valid"] is False
        assert change["errors"][0]["path"] == "/max_tokens"
        assert run.json()["risk"] == "CRITICAL"

    def test_an_error_exits_1_not_a_plan_code(self, target: Target, tmp_path: Path) -> None:
        root = write(tmp_path / "cfg", {"models/a.yaml": "a: [1\n"})
        run = target.cli("plan", str(root))
        assert run.exit_code == 1
        assert "models/a.yaml:2" in run.stderr

    def test_plan_above_max_risk_exits_3(self, target: Target, tmp_path: Path) -> None:
        root = write(tmp_path / "cfg", {"env/production/models/a.yaml": "a: 1\n"})
        run = target.cli("plan", str(root), "--max-risk", "LOW")
        assert run.exit_code == 3
        assert "refused" in run.stdout

    def test_tenant_comes_from_confhub_toml(self, target: Target, tmp_path: Path) -> None:
        root = write(tmp_path / "cfg", {"confhub.toml": f'tenant = "{target.tenant}"\n',
                                        "models/a.yaml": "a: 1\n"})
        assert target.cli("apply", str(root), tenant=False).exit_code == 0
        assert target.cfg.get("models", "a").value == {"a": 1}


class TestApply:
    def test_apply_commits_everything_as_one_revision(self, target: Target,
                                                      tmp_path: Path) -> None:
        root = write(tmp_path / "cfg", {**MODELS, "routing/tiers.json": '{"default": "opus"}',
                                        "env/production/models/opus.yaml": "max_tokens: 4096\n"})
        revision = apply_dir(target, root)
        cfg = target.cfg
        assert cfg.get("models", "opus").revision == revision
        assert cfg.get("routing", "tiers").revision == revision
        assert cfg.resolve("models", "opus", env="production").value["max_tokens"] == 4096

    def test_a_value_refused_by_a_schema_writes_nothing(self, target: Target,
                                                        tmp_path: Path) -> None:
        target.hub.create_tenant(target.tenant)
        target.cfg.set_schema("models", {"type": "object", "properties": {
            "max_tokens": {"type": "integer", "maximum": 10000}}})
        before = target.cfg.revision
        root = write(tmp_path / "cfg", {"models/ok.yaml": "max_tokens: 10\n",
                                        "models/bad.yaml": "max_tokens: 20000\n"})
        run = target.cli("apply", str(root), "--reason", "r")
        assert run.exit_code == 5
        assert "models/bad.yaml" in run.stderr
        assert target.cfg.revision == before
        with pytest.raises(confhub.NotFound):
            target.cfg.get("models", "ok")

    def test_an_unparseable_file_writes_nothing(self, target: Target, tmp_path: Path) -> None:
        root = write(tmp_path / "cfg", {"models/ok.yaml": "a: 1\n", "models/bad.toml": "a ="})
        run = target.cli("apply", str(root), "--reason", "r")
        assert run.exit_code != 0
        assert "models/bad.toml" in run.stderr
        with pytest.raises(confhub.NotFound):
            target.cfg.get("models", "ok")

    def test_expect_revision_refuses_a_moved_store(self, target: Target,
                                                   tmp_path: Path) -> None:
        root = write(tmp_path / "cfg", {"models/a.yaml": "a: 1\n"})
        apply_dir(target, root)
        planned = target.cfg.revision
        target.cfg.set("other", "x", 1)  # someone else writes meanwhile
        write(root, {"models/a.yaml": "a: 2\n"})
        run = target.cli("apply", str(root), "--expect-revision", str(planned))
        assert run.exit_code == 4
        assert target.cfg.get("models", "a").value == {"a": 1}
        assert target.cli("apply", str(root), "--expect-revision",
                          str(target.cfg.revision)).exit_code == 0

    def test_a_key_changed_since_the_plan_aborts_the_apply(self, target: Target,
                                                           tmp_path: Path) -> None:
        root = write(tmp_path / "cfg", {"models/a.yaml": "a: 1\n", "models/b.yaml": "b: 1\n"})
        apply_dir(target, root)
        write(root, {"models/a.yaml": "a: 2\n", "models/b.yaml": "b: 2\n"})
        plan = plan_of(target, root)
        target.cfg.set("models", "b", {"b": 99})
        with pytest.raises(confhub.VersionConflict):
            apply_plan(target.hub, plan)
        assert target.cfg.get("models", "a").value == {"a": 1}

    def test_apply_above_max_risk_is_refused(self, target: Target, tmp_path: Path) -> None:
        root = write(tmp_path / "cfg", {"env/production/models/a.yaml": "a: 1\n"})
        plan = make_plan(target.hub, target.tenant, load_directory(root), max_risk=Level.LOW)
        with pytest.raises(PlanRefused):
            apply_plan(target.hub, plan)
        assert target.cli("apply", str(root), "--max-risk", "low").exit_code == 3
        with pytest.raises(confhub.NotFound):
            target.hub.tenant(target.tenant).get("models", "a", env="production")

    def test_dry_run_commits_nothing(self, target: Target, tmp_path: Path) -> None:
        root = write(tmp_path / "cfg", {"models/a.yaml": "a: 1\n"})
        apply_dir(target, root)
        write(root, {"models/a.yaml": "a: 2\n"})
        run = target.cli("apply", str(root), "--dry-run", "--json")
        assert run.exit_code == 0 and run.json()["dry_run"] is True
        assert target.cfg.get("models", "a").value == {"a": 1}

    def test_git_commit_branch_and_dirty_flag_are_recorded(self, target: Target,
                                                           tmp_path: Path) -> None:
        repo = git_repo(write(tmp_path / "repo", {"config/models/a.yaml": "a: 1\n"}))
        run = target.cli("apply", str(repo / "config"), "--reason", "from git")
        assert run.exit_code == 0, run.stderr
        [version] = target.cfg.history("models", "a")
        assert version.metadata["git_commit"] == git(repo, "rev-parse", "HEAD")
        assert version.metadata["git_branch"] == "main"
        assert version.metadata["git_dirty"] is False
        assert version.reason == "from git"
        write(repo, {"config/models/a.yaml": "a: 2\n"})
        target.cli("apply", str(repo / "config"))
        assert target.cfg.history("models", "a")[0].metadata["git_dirty"] is True


class TestPrune:
    def test_prune_deletes_only_keys_an_apply_created(self, target: Target,
                                                      tmp_path: Path) -> None:
        target.hub.create_tenant(target.tenant)
        target.cfg.set("models", "by-hand", {"v": 0})
        root = write(tmp_path / "cfg", {"models/ours.yaml": "v: 1\n",
                                        "models/by-hand.yaml": "v: 1\n"})
        apply_dir(target, root)
        for name in ("ours", "by-hand"):
            (root / f"models/{name}.yaml").unlink()
        write(root, {"models/keep.yaml": "v: 1\n"})
        plan = plan_of(target, root)
        assert [c.action for c in plan.changes] == ["create"]
        assert plan.orphans == (("base", "models", "ours"),)
        run = target.cli("apply", str(root), "--prune")
        assert run.exit_code == 0, run.stderr
        with pytest.raises(confhub.NotFound):
            target.cfg.get("models", "ours")
        assert target.cfg.get("models", "by-hand").value == {"v": 1}

    def test_a_key_re_made_by_hand_is_not_pruned(self, target: Target, tmp_path: Path) -> None:
        root = write(tmp_path / "cfg", {"models/a.yaml": "v: 1\n", "models/b.yaml": "v: 1\n"})
        apply_dir(target, root)
        target.cfg.delete("models", "a")
        target.cfg.set("models", "a", {"v": "mine"})
        (root / "models/a.yaml").unlink()
        plan = plan_of(target, root, prune=True)
        assert plan.changes == ()
        apply_dir(target, root, prune=True)
        assert target.cfg.get("models", "a").value == {"v": "mine"}

    def test_keys_never_in_the_directory_are_left_alone(self, target: Target,
                                                        tmp_path: Path) -> None:
        target.hub.create_tenant(target.tenant)
        target.cfg.set("models", "elsewhere", 1)
        root = write(tmp_path / "cfg", {"models/a.yaml": "v: 1\n"})
        apply_dir(target, root, prune=True)
        apply_dir(target, root, prune=True)
        assert target.cfg.get("models", "elsewhere").value == 1
