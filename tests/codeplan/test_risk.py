"""The risk rules, one per test (docs/config-as-code.md lists them; risk.py holds them)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import confhub
from confhub.codeplan import KEY_RULES, PLAN_RULES, Plan, apply_plan, load_directory, make_plan

from .conftest import MASTER_KEY, write


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[confhub.Hub]:
    (tmp_path / "db").mkdir()
    hub = confhub.open(f"sqlite:///{tmp_path / 'db' / 'risk.db'}", master_key=MASTER_KEY)
    hub.create_tenant("acme")
    yield hub
    hub.close()


def plan(hub: confhub.Hub, root: Path, **options: object) -> Plan:
    return make_plan(hub, "acme", load_directory(root), **options)  # type: ignore[arg-type]


def applied(hub: confhub.Hub, root: Path, files: dict[str, str]) -> Path:
    write(root, files)
    apply_plan(hub, plan(hub, root))
    return root


def only_change(result: Plan) -> tuple[str, tuple[str, ...]]:
    [change] = result.changes
    return change.risk, change.reasons


def test_every_rule_is_documented_data() -> None:
    names = [rule.name for rule in KEY_RULES] + [name for name, *_ in PLAN_RULES]
    assert len(set(names)) == len(names) == 9
    assert all(rule.says for rule in KEY_RULES)


def test_a_plain_change_is_low(hub: confhub.Hub, tmp_path: Path) -> None:
    root = applied(hub, tmp_path / "cfg", {"m/a.yaml": "a: 1\nb: 2\nc: 3\nd: 4\n"})
    write(root, {"m/a.yaml": "a: 9\nb: 2\nc: 3\nd: 4\n"})
    assert only_change(plan(hub, root)) == ("LOW", ())


def test_production_like_env_is_medium(hub: confhub.Hub, tmp_path: Path) -> None:
    root = write(tmp_path / "cfg", {"env/production/m/a.yaml": "a: 1\n"})
    assert only_change(plan(hub, root)) == ("MEDIUM", ("production-env",))


def test_more_than_a_quarter_of_the_fields_is_medium(hub: confhub.Hub, tmp_path: Path) -> None:
    root = applied(hub, tmp_path / "cfg", {"m/a.yaml": "a: 1\nb: 2\nc: 3\nd: 4\n"})
    write(root, {"m/a.yaml": "a: 9\nb: 9\nc: 3\nd: 4\n"})
    assert only_change(plan(hub, root)) == ("MEDIUM", ("large-edit",))


def test_deletion_is_high(hub: confhub.Hub, tmp_path: Path) -> None:
    root = applied(hub, tmp_path / "cfg", {"m/a.yaml": "a: 1\n", "m/b.yaml": "b: 1\n"})
    (root / "m/a.yaml").unlink()
    assert only_change(plan(hub, root, prune=True)) == ("HIGH", ("deletion",))


def test_secret_touched_is_high_and_masked(hub: confhub.Hub, tmp_path: Path) -> None:
    hub.tenant("acme").set_schema("db", {"type": "object", "properties": {
        "password": {"type": "string", "x-secret": True}, "pool": {"type": "integer"}}})
    hub.tenant("acme").set("db", "main", {"password": "hunter2", "pool": 1, "x": 1, "y": 1})
    root = write(tmp_path / "cfg", {"db/main.yaml": "password: '***'\npool: 1\nx: 1\ny: 1\n"})
    assert plan(hub, root).changes == ()  # "***" keeps the stored secret
    write(root, {"db/main.yaml": "password: swordfish\npool: 1\nx: 1\ny: 1\n"})
    result = plan(hub, root)
    assert only_change(result) == ("HIGH", ("secret-touched",))
    assert result.to_dict()["changes"][0]["fields"] == [
        {"path": "password", "pointer": "/password", "op": "replace", "old": "***",
         "new": "***", "secret": True}]
    assert "swordfish" not in str(result.to_dict())


def test_restart_required_field_is_high(hub: confhub.Hub, tmp_path: Path) -> None:
    hub.tenant("acme").set_schema("svc", {"type": "object", "properties": {
        "port": {"type": "integer", "x-restart-required": True}}})
    root = applied(hub, tmp_path / "cfg", {"svc/api.yaml": "port: 80\na: 1\nb: 1\nc: 1\n"})
    write(root, {"svc/api.yaml": "port: 81\na: 1\nb: 1\nc: 1\n"})
    assert only_change(plan(hub, root)) == ("HIGH", ("restart-required",))


def test_type_change_is_high(hub: confhub.Hub, tmp_path: Path) -> None:
    root = applied(hub, tmp_path / "cfg", {"m/a.yaml": "a: 1\nb: 2\nc: 3\nd: 4\n"})
    write(root, {"m/a.yaml": "a: '1'\nb: 2\nc: 3\nd: 4\n"})
    assert only_change(plan(hub, root)) == ("HIGH", ("type-change",))


def test_failing_validation_is_critical(hub: confhub.Hub, tmp_path: Path) -> None:
    hub.tenant("acme").set_schema("m", {"type": "object", "required": ["a"]})
    root = write(tmp_path / "cfg", {"m/a.yaml": "b: 1\n"})
    assert only_change(plan(hub, root)) == ("CRITICAL", ("invalid",))


def test_deleting_a_whole_namespace_is_critical(hub: confhub.Hub, tmp_path: Path) -> None:
    root = applied(hub, tmp_path / "cfg", {"m/a.yaml": "a: 1\n", "keep/b.yaml": "b: 1\n"})
    (root / "m/a.yaml").unlink()
    assert only_change(plan(hub, root, prune=True)) == (
        "CRITICAL", ("deletion", "namespace-deletion"))


def test_more_than_50_keys_at_once_is_critical(hub: confhub.Hub, tmp_path: Path) -> None:
    write(tmp_path / "fifty", {f"m/k{i}.yaml": "a: 1\n" for i in range(50)})
    assert plan(hub, tmp_path / "fifty").risk.name == "LOW"
    write(tmp_path / "more", {f"m/k{i}.yaml": "a: 1\n" for i in range(51)})
    result = plan(hub, tmp_path / "more")
    assert (result.risk.name, result.plan_reasons) == ("CRITICAL", ("many-keys",))
