"""Apply: a plan committed as one transaction, with its git metadata and ownership record.

Every key change becomes one op carrying the version the plan saw (creates expect 0), and the
source's ownership record (ownership.py) is written in the same transaction, also by
compare-and-set. So either everything lands at one revision or nothing does: a key someone
changed since the plan, a second apply racing this one, or a value a schema refuses aborts the
whole batch with the store untouched.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidRequest, PlanRefused, ValidationFailed, VersionConflict
from ..fieldpath import to_pointer
from .diffs import MASK, KeyChange
from .layout import INVENTORY_NAMESPACE
from .ownership import Inventory
from .plan import Plan

__all__ = ["ApplyResult", "apply_plan", "check_plan", "rollout_ops", "start_plan_rollout"]


@dataclass(frozen=True)
class ApplyResult:
    revision: int | None  # None: nothing committed (no changes, a dry run, or a rollout)
    plan: Plan
    dry_run: bool = False
    rollout: Any = None  # the Rollout started instead of committing (``--rollout``)

    def to_dict(self) -> dict[str, Any]:
        extra = {} if self.rollout is None else {"rollout": self.rollout.to_dict()}
        return {"revision": self.revision, "dry_run": self.dry_run, **extra,
                **{k: v for k, v in self.plan.to_dict().items() if k != "revision"},
                "planned_at_revision": self.plan.revision}


def check_plan(plan: Plan, expect_revision: int | None = None) -> None:
    """Refuse before writing: a store that moved since the plan, a plan above ``max_risk``,
    or values that fail validation."""
    if expect_revision is not None and plan.revision != expect_revision:
        raise VersionConflict(
            f"tenant {plan.tenant!r} is at revision {plan.revision}, not {expect_revision}: "
            "the store moved since the plan; plan again", expected_revision=expect_revision,
            current_revision=plan.revision)
    if plan.refused:
        assert plan.max_risk is not None
        raise PlanRefused(f"the plan's risk is {plan.risk.name}, above --max-risk "
                          f"{plan.max_risk.name}; nothing was applied",
                          risk=plan.risk.name, max_risk=plan.max_risk.name)
    if not plan.valid:
        bad = [c for c in plan.changes if not c.report.valid]
        errors = [dataclasses.replace(issue, namespace=c.namespace, key=c.key, env=c.env,
                                      message=f"{c.file}: {issue.message}").to_dict()
                  | {"file": c.file} for c in bad for issue in c.report.errors]
        raise ValidationFailed(
            f"{len(bad)} value(s) fail validation; nothing was applied: " + "; ".join(
                f"{c.file or c.namespace + '/' + c.key}: {c.report.errors[0].message}"
                for c in bad)[:2000], errors=errors, warnings=[])


def _has_kept_secret(change: KeyChange) -> bool:
    """Does the file keep a stored secret with ``"***"``? Then a whole-value write would
    overwrite the secret with the mask, so only the changed fields are patched."""
    return change.secret and _contains_mask(change.desired)


def _contains_mask(value: Any) -> bool:
    if value == MASK:
        return True
    if isinstance(value, Mapping):
        return any(_contains_mask(v) for v in value.values())
    if isinstance(value, list):
        return any(_contains_mask(v) for v in value)
    return False


def _patch_ops(change: KeyChange) -> list[dict[str, Any]]:
    ops: list[dict[str, Any]] = []
    for item in change.fields:
        pointer = to_pointer(item.path)
        if item.op == "remove":
            ops.append({"op": "remove", "path": pointer})
        else:
            ops.append({"op": item.op, "path": pointer, "value": item.new})
    # Removals go last and from the end, so the indexes of a shortened list stay valid.
    return ([op for op in ops if op["op"] != "remove"]
            + [op for op in reversed(ops) if op["op"] == "remove"])


def _next_inventory(plan: Plan) -> dict[str, Any]:
    """The ownership record after this apply (see ownership.py)."""
    old = plan.inventory
    created: dict[Any, int | None] = {a: r for a, r in old.created.items()}
    for change in plan.changes:
        if change.action == "create":
            created[change.address] = None  # this apply's revision
        elif change.action == "delete":
            created.pop(change.address, None)
    managed = tuple(sorted(plan.layout.keys))
    record = Inventory(source=plan.source, files=dict(plan.layout.digests), managed=managed,
                       git=plan.git.metadata() if plan.git else {}, created=created)
    return record.document()


def apply_plan(hub: Any, plan: Plan, *, reason: str | None = None, author: str | None = None,
               metadata: Mapping[str, Any] | None = None, dry_run: bool = False,
               expect_revision: int | None = None,
               progress: Callable[[str], None] | None = None) -> ApplyResult:
    """Commit ``plan`` as one transaction (or, with ``dry_run``, have the store check the
    whole batch and commit nothing). Raises VersionConflict, PlanRefused or ValidationFailed
    before writing anything."""
    check_plan(plan, expect_revision)
    record = _next_inventory(plan)
    if not plan.changes and plan.inventory.version and record == plan.inventory.document():
        return ApplyResult(revision=None, plan=plan, dry_run=dry_run)  # nothing new at all
    note = progress or (lambda _: None)
    if not plan.tenant_exists:
        if dry_run:
            return ApplyResult(revision=None, plan=plan, dry_run=True)
        hub.create_tenant(plan.tenant)
    tenant = hub.tenant(plan.tenant)
    meta: dict[str, Any] = {"confhub_source": plan.source, "confhub_applyset":
                            plan.inventory.key}
    if plan.git:
        meta.update(plan.git.metadata())
    meta.update(metadata or {})
    note(f"applying {len(plan.changes)} changes to tenant {plan.tenant}…")
    with tenant.transaction(reason=reason or f"apply {plan.source}", author=author,
                            metadata=meta, dry_run=dry_run) as tx:
        for change in plan.changes:
            ns, key, env = change.namespace, change.key, change.env
            if change.action == "delete":
                tx.delete(ns, key, env=env, expected_version=change.expected_version)
            elif _has_kept_secret(change):
                tx.patch(ns, key, _patch_ops(change), env=env, json_patch=True,
                         expected_version=change.expected_version)
            else:
                tx.set(ns, key, change.desired, env=env,
                       expected_version=change.expected_version)
        tx.set(INVENTORY_NAMESPACE, plan.inventory.key, record,
               expected_version=plan.inventory.version)
    return ApplyResult(revision=None if dry_run else tx.revision, plan=plan, dry_run=dry_run)



def rollout_ops(plan: Plan) -> list[dict[str, Any]]:
    """The plan as a rollout's change set: one put or delete per key change, each expecting
    the version the plan saw, plus the source's ownership record (see start_plan_rollout)."""
    ops: list[dict[str, Any]] = []
    for change in plan.changes:
        if change.secret:
            raise InvalidRequest(
                f"{change.namespace}/{change.key} holds secret values; staged rollouts of "
                "secrets are not supported, apply without --rollout",
                namespace=change.namespace, key=change.key)
        where = {"namespace": change.namespace, "key": change.key, "env": change.env,
                 "expected_version": change.expected_version}
        if change.action == "delete":
            ops.append({"op": "delete", **where})
        else:
            ops.append({"op": "put", **where, "value": change.desired})
    ops.append({"op": "put", "namespace": INVENTORY_NAMESPACE, "key": plan.inventory.key,
                "value": _next_inventory(plan), "expected_version": plan.inventory.version})
    return ops


def start_plan_rollout(hub: Any, plan: Plan, *, strategy: str | None,
                       reason: str | None = None, author: str | None = None,
                       expect_revision: int | None = None,
                       progress: Callable[[str], None] | None = None,
                       **options: Any) -> ApplyResult:
    """Start a staged rollout of ``plan`` instead of committing it (``apply --rollout``).

    The ownership record travels inside the rollout's change set, so it is committed with the
    keys in the one transaction that completes the rollout (and its ``created`` revisions are
    that transaction's), and a rollback commits neither: ownership always describes what is
    committed. ``options`` are those of ``rollouts.start`` (steps, bake, selector, ...). A
    refused plan (risk, validation, a moved store) raises before anything is started.
    """
    check_plan(plan, expect_revision)
    if not plan.changes:
        return ApplyResult(revision=None, plan=plan)  # nothing to roll out
    if not plan.tenant_exists:
        hub.create_tenant(plan.tenant)
    (progress or (lambda _: None))(
        f"starting a rollout of {len(plan.changes)} changes in tenant {plan.tenant}…")
    rollout = hub.tenant(plan.tenant).rollouts.start(
        rollout_ops(plan), strategy=strategy, reason=reason or f"apply {plan.source}",
        author=author, **options)
    return ApplyResult(revision=None, plan=plan, rollout=rollout)
