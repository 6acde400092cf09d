"""``apply DIR --rollout STRATEGY``: the plan staged as a rollout instead of committed, on an
embedded hub and through a real server. Ownership is committed only with the rollout."""

from __future__ import annotations

from pathlib import Path

import pytest

import confhub
from confhub.codeplan.layout import INVENTORY_NAMESPACE
from confhub.codeplan.ownership import read_inventory

from .conftest import Target, git, git_repo, write


def _source(target: Target, root: Path) -> str:
    return str(target.cli("plan", str(root), "--json").json()["source"])


def test_apply_rollout_stages_then_completion_commits_keys_and_ownership(
        target: Target, tmp_path: Path) -> None:
    root = git_repo(write(tmp_path / "cfg", {"models/a.yaml": "a: 1\n"}))
    assert target.cli("apply", str(root)).exit_code == 0
    write(root, {"models/a.yaml": "a: 2\n", "models/new.yaml": "n: 1\n"})
    git(root, "commit", "-qam", "raise a")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "new")
    run = target.cli("apply", str(root), "--rollout", "canary", "--bake", "1h",
                     "--reason", "raise a", "--json")
    assert run.exit_code == 0, run.stdout + run.stderr
    rollout = run.json()["rollout"]
    assert rollout["state"] == "running" and run.json()["revision"] is None
    cfg = target.cfg
    assert cfg.get("models", "a").value == {"a": 1}  # nothing committed yet
    with pytest.raises(confhub.NotFound):
        cfg.get("models", "new")
    assert target.cli("drift", str(root)).exit_code == 2  # still the old apply's files
    assert target.cli("apply", str(root)).exit_code == 4  # keys are under the rollout (409)

    cfg.rollouts.advance(rollout["id"])
    done = cfg.rollouts.advance(rollout["id"])
    assert done.state == "completed"
    assert cfg.get("models", "a").value == {"a": 2}
    assert cfg.history("models", "new")[0].metadata == {"rollout": rollout["id"]}
    assert target.cli("plan", str(root)).exit_code == 0
    assert target.cli("drift", str(root)).exit_code == 0
    record = read_inventory(cfg, _source(target, root))
    assert record.git["git_commit"] == git(root, "rev-parse", "HEAD")
    assert record.applied_revision == done.revision
    # The key the rollout created is owned by this directory: --prune removes it later.
    (root / "models/new.yaml").unlink()
    assert target.cli("apply", str(root), "--prune").exit_code == 0
    with pytest.raises(confhub.NotFound):
        cfg.get("models", "new")


def test_rollback_commits_neither_keys_nor_ownership(target: Target, tmp_path: Path) -> None:
    root = write(tmp_path / "cfg", {"models/a.yaml": "a: 1\n"})
    run = target.cli("apply", str(root), "--rollout", "linear", "--selector", "region=eu")
    assert run.exit_code == 0, run.stdout + run.stderr
    rollout_id = target.cfg.rollouts.list()[0].id
    assert f"rollout {rollout_id} started" in run.stdout
    assert target.cfg.rollouts.get(rollout_id).cohort.selector is not None
    target.cfg.rollouts.rollback(rollout_id, reason="bad")
    with pytest.raises(confhub.NotFound):
        target.cfg.get("models", "a")
    with pytest.raises(confhub.NotFound):
        target.cfg.get(INVENTORY_NAMESPACE, read_inventory(target.cfg, _source(target, root)).key)
    assert target.cli("plan", str(root)).exit_code == 2  # the plan is still to do
    assert target.cli("apply", str(root)).exit_code == 0  # and a plain apply does it


def test_refused_plans_start_no_rollout(target: Target, tmp_path: Path) -> None:
    target.hub.create_tenant(target.tenant)
    target.cfg.set_schema("models", {"type": "object", "properties": {
        "max_tokens": {"type": "integer", "maximum": 10000}}})
    bad = write(tmp_path / "bad", {"models/bad.yaml": "max_tokens: 20000\n"})
    run = target.cli("apply", str(bad), "--rollout", "canary")
    assert run.exit_code == 5 and "models/bad.yaml" in run.stderr
    risky = write(tmp_path / "risky", {"env/production/models/a.yaml": "max_tokens: 1\n"})
    assert target.cli("apply", str(risky), "--rollout", "canary",
                      "--max-risk", "low").exit_code == 3
    assert target.cfg.rollouts.list() == []


def test_rollout_options_need_rollout_and_bad_ones_are_clear(target: Target,
                                                             tmp_path: Path) -> None:
    root = write(tmp_path / "cfg", {"models/a.yaml": "a: 1\n"})
    run = target.cli("apply", str(root), "--bake", "5m")
    assert run.exit_code != 0 and "need --rollout" in run.stderr
    run = target.cli("apply", str(root), "--rollout", "sideways")
    assert run.exit_code == 2 and "canary" in run.stderr  # names the valid presets
    with pytest.raises(confhub.NotFound):
        target.cfg.get("models", "a")


def test_a_plan_touching_a_secret_is_refused_with_rollout(target: Target,
                                                          tmp_path: Path) -> None:
    target.hub.create_tenant(target.tenant)
    target.cfg.set("db", "token", "s3cr3t", secret=True)
    root = write(tmp_path / "cfg", {"db/token.yaml": "rotated\n"})
    run = target.cli("apply", str(root), "--rollout", "all-at-once")
    assert run.exit_code == 2 and "db/token holds secret values" in run.stderr
    assert target.cfg.rollouts.list() == []
    assert target.cfg.get("db", "token").version == 1  # unchanged
