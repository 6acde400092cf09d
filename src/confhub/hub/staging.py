"""``cfg.rollouts``: start a staged rollout of a change set, drive it, report on it.

Every transition is one store transaction on the tenant that appends the next version of the
rollout's document (see ``hub/rollouts.py``) and an audit record, so it is a revision of the
feed. Starting validates the change exactly as a write would (a dry run of the same ops), then
records the staged values and the committed versions they replace; completing commits those
values as one ordinary transaction whose versions carry ``{"rollout": id}`` in their
metadata, in the same revision as the ``completed`` state. Nothing else writes staged keys
meanwhile (``RolloutInProgress``), so a rollback has nothing to undo.

May import: ``confhub.rollout``, ``confhub.cohort``, ``confhub.identity``, ``confhub.model``,
``confhub.errors``, ``confhub.store.base`` and the hub's ``core``, ``ops``, ``rows``,
``rollouts``.
"""

from __future__ import annotations

import builtins
import dataclasses
import json
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..cohort import Cohort, check_client_id
from ..errors import (
    InvalidRequest,
    InvalidTransition,
    NotFound,
    ValidationFailed,
    VersionConflict,
)
from ..identity import Consumer, Identity, reporter
from ..model import BASE_ENV, encode_value, now_micros, thaw
from ..rollout import (
    ACTIVE,
    COMPLETED,
    REPORT_STATUSES,
    RUNNING,
    Rollout,
    RolloutHealth,
    StagedOp,
    Strategy,
)
from ..store.base import AuditRow, ReportRow, WriteTxn
from .ops import Op, apply_op
from .rollouts import ROLLOUT_NS, in_progress, parse
from .rows import meta, new_row

if TYPE_CHECKING:
    from .tenant import Tenant

__all__ = ["Rollouts"]

_ID = re.compile(r"r-[1-9][0-9]{0,17}")
OP_KINDS = ("put", "patch", "delete")


class _Stale(Exception):
    """An automatic transition found the rollout moved on since it looked: do nothing."""


class Rollouts:
    """The rollouts of one tenant (``cfg.rollouts``); see DESIGN.md section 8."""

    def __init__(self, tenant: Tenant) -> None:
        self._tenant = tenant
        self._core = tenant._core
        self.tenant = tenant.name

    def __repr__(self) -> str:
        return f"<confhub rollouts of {self.tenant!r}>"

    # ------------------------------------------------------------------ reads

    def list(self, *, state: str | None = None) -> builtins.list[Rollout]:
        """Every rollout of the tenant, oldest first (only those in ``state`` if given)."""
        rollouts = self._core.rollouts.all(self._tenant._view)
        return [r for r in rollouts if state is None or r.state == state]

    def get(self, rollout_id: str, *, health: bool = True) -> Rollout:
        """One rollout, with the health of its cohort (``rollout.health``). NotFound."""
        rollout = self._find(rollout_id)
        if health:
            rollout = dataclasses.replace(rollout, health=self.health(rollout))
        return rollout

    def _find(self, rollout_id: str) -> Rollout:
        if not (isinstance(rollout_id, str) and _ID.fullmatch(rollout_id)):
            entry = None
        else:
            entry = self._tenant._current(BASE_ENV, ROLLOUT_NS, rollout_id)
            if entry is None:
                # Started through another server a moment ago, and its notification has not
                # reached this one yet: read storage before saying it does not exist.
                self._core.cache.refresh()
                entry = self._tenant._current(BASE_ENV, ROLLOUT_NS, rollout_id)
        if entry is None:
            raise NotFound(f"rollout {rollout_id!r} does not exist in tenant {self.tenant!r}",
                           tenant=self.tenant, rollout=str(rollout_id))
        return parse(self.tenant, entry)

    def health(self, rollout: Rollout, prometheus: str | None = None, *,
               fresh: bool = True) -> RolloutHealth:
        """Known cohort members (consumers seen in the last minutes) and everyone's latest
        report on ``rollout`` (``fresh=False``: sightings may lag by a second)."""
        recent = (self._core.consumers.recent(self.tenant, fresh=fresh) if rollout.active
                  else [])
        members = [c.client_id for c in recent
                   if rollout.member(c.client_id, json.loads(c.labels))]
        reports = [(r.client_id, r.status, r.reason)
                   for r in self._core.store.reports(self.tenant, rollout_id=rollout.id)]
        return RolloutHealth.of(members, reports, prometheus)

    def consumers(self, client_id: str | None = None) -> builtins.list[Consumer]:
        active = self._core.rollouts.active(self.tenant, self._tenant._view)
        return self._core.consumers.listed(self.tenant, active, client_id)

    # ------------------------------------------------------------------ start

    def start(self, ops: Sequence[Mapping[str, Any]], *, strategy: str | Strategy | None = None,
              steps: str | Sequence[object] | None = None, bake: object = None,
              final_bake: object = None, max_failure: object = 0.0, min_reports: object = 1,
              min_ack: object = 0.0, auto: bool = True, selector: str | None = None,
              clients: Sequence[str] | None = None, reason: str | None = None,
              author: str | None = None, gate_prometheus: str | None = None,
              gate_query: str | None = None) -> Rollout:
        """Stage ``ops`` (the ops of a transaction: ``{"op": "put"|"patch"|"delete",
        "namespace", "key", "env"?, "value"?, "expected_version"?}``) for a growing cohort.

        ``strategy`` is a preset (``canary``, ``linear``, ``exponential``, ``all-at-once``)
        or a :class:`Strategy`; otherwise ``steps``/``bake``/... build one. The change is
        validated as a write would be (ValidationFailed, VersionConflict...); a key already
        under a running rollout raises RolloutInProgress.
        """
        plan = _strategy(strategy, steps=steps, bake=bake, final_bake=final_bake,
                         max_failure=max_failure, min_reports=min_reports, min_ack=min_ack,
                         auto=auto)
        cohort = Cohort.build("pending", selector, clients)
        self._core.consumers.flush(force=True)  # the gate counts the cohort from storage
        self._check_selector_keys(cohort)
        gate = _gate(gate_prometheus, gate_query)
        staged = self._dry_run(ops, reason, author)
        core = self._core

        def create(txn: WriteTxn) -> Rollout:
            for rollout in core.rollouts.active_in(txn):
                for op in rollout.ops:
                    if any(s.address == op.address for s in staged):
                        raise in_progress(rollout, op)
            for op in staged:
                cur = txn.current(*op.address)
                if (cur.version if cur is not None else 0) != op.base_version:
                    raise VersionConflict(
                        f"{op.namespace}/{op.key} changed while the rollout was being "
                        "validated; start it again", namespace=op.namespace, key=op.key,
                        current_version=cur.version if cur is not None else 0)
            rollout_id = f"r-{_next_number(txn)}"
            rollout = Rollout(
                id=rollout_id, tenant=txn.tenant, state=RUNNING, step=0, strategy=plan,
                cohort=dataclasses.replace(cohort, salt=f"{txn.tenant}/{rollout_id}"),
                ops=tuple(staged), created_at=txn.now, updated_at=txn.now,
                step_started_at=txn.now, reason=reason, author=author,
                gate_prometheus=gate, revision=txn.revision, version=1)
            _record(txn, rollout, author, core.max_value_bytes)
            return rollout

        rollout, _, _ = core.commit(self.tenant, create)
        core.gate.wake()
        return rollout

    def _dry_run(self, ops: Sequence[Mapping[str, Any]], reason: str | None,
                 author: str | None) -> builtins.list[StagedOp]:
        if isinstance(ops, Mapping) or not isinstance(ops, Sequence) or not ops:
            raise InvalidRequest("a rollout needs a non-empty list of ops")
        txn = self._tenant.transaction(reason=reason, author=author, dry_run=True)
        for index, op in enumerate(ops):
            _add(txn, op, index)
        staged = []
        for change in txn.commit():
            if change.secret:
                raise InvalidRequest(
                    f"{change.namespace}/{change.key} holds secret values; staged rollouts "
                    "of secrets are not supported, write it directly",
                    namespace=change.namespace, key=change.key)
            staged.append(StagedOp(change.env, change.namespace, change.key,
                                   None if change.deleted else thaw(change.value),
                                   change.deleted, change.version - 1))
        return staged

    def _check_selector_keys(self, cohort: Cohort) -> None:
        """A selector naming a label no consumer of the tenant has would select nobody:
        almost always a typo, so it is refused (unless no consumer was seen yet)."""
        if cohort.selector is None:
            return
        known = {k for c in self._core.store.consumers(self.tenant)
                 for k in json.loads(c.labels)}
        unknown = [k for k in cohort.selector.keys if k not in known]
        if known and unknown:
            raise InvalidRequest(
                f"selector {str(cohort.selector)!r} names label {unknown[0]!r}, which no "
                f"consumer of tenant {self.tenant!r} has (known labels: "
                f"{', '.join(sorted(known))})", selector=str(cohort.selector),
                label=unknown[0])

    # ------------------------------------------------------------------ transitions

    def advance(self, rollout_id: str, *, reason: str | None = None,
                author: str | None = None) -> Rollout:
        """The next step now (at the last step: complete, committing the change)."""
        return self._move(rollout_id, "advance", reason, author)

    def pause(self, rollout_id: str, *, reason: str | None = None,
              author: str | None = None) -> Rollout:
        return self._move(rollout_id, "pause", reason, author)

    def resume(self, rollout_id: str, *, reason: str | None = None,
               author: str | None = None) -> Rollout:
        return self._move(rollout_id, "resume", reason, author)

    def rollback(self, rollout_id: str, *, reason: str | None = None,
                 author: str | None = None) -> Rollout:
        """Stop: the cohort returns to the committed values and nothing is committed."""
        return self._move(rollout_id, "rollback", reason, author)

    def _move(self, rollout_id: str, action: str, reason: str | None, author: str | None,
              expected_version: int | None = None) -> Rollout:
        self._find(rollout_id)  # NotFound before taking any lock
        core = self._core

        def move(txn: WriteTxn) -> Rollout:
            row = txn.current(BASE_ENV, ROLLOUT_NS, rollout_id)
            assert row is not None and row.value is not None
            current = Rollout.from_doc(txn.tenant, json.loads(row.value),
                                       revision=row.revision, version=row.version)
            if expected_version is not None and current.version != expected_version:
                raise _Stale()
            moved: Rollout = getattr(current, action)(txn.now, reason)
            moved = dataclasses.replace(moved, revision=txn.revision,
                                        version=current.version + 1)
            _record(txn, moved, author, core.max_value_bytes)
            if moved.state == COMPLETED:
                _commit_staged(txn, moved, author, core)
            return moved

        rollout, _, _ = core.commit(self.tenant, move, rollout=rollout_id)
        return rollout

    def decide_and_move(self, rollout: Rollout, action: str, reason: str) -> Rollout | None:
        """An automatic transition, compare-and-set on the version the gate looked at
        (None when the rollout moved meanwhile)."""
        try:
            return self._move(rollout.id, action, reason, "confhub-gate",
                              expected_version=rollout.version)
        except (_Stale, InvalidTransition):
            return None
        except ValidationFailed as exc:
            # The schema changed while it ran and the change no longer passes: it cannot
            # complete, so it is rolled back (saying why) rather than retried forever.
            return self.decide_and_move(rollout, "rollback",
                                        f"the change no longer validates: {exc.message}")

    # ------------------------------------------------------------------ reports

    def report(self, rollout_id: str, status: str, reason: str | None = None, *,
               client_id: str | None = None) -> None:
        """Record a consumer's report on a running rollout: ``applied``/``failed`` for a
        staged value it met, ``healthy``/``unhealthy`` for itself."""
        who = check_client_id(reporter(client_id, self._tenant.identity))
        if status not in REPORT_STATUSES:
            raise InvalidRequest(f"status {status!r} is not one of "
                                 f"{', '.join(REPORT_STATUSES)}", status=str(status))
        if reason is not None and not isinstance(reason, str):
            raise InvalidRequest("reason must be a string")
        rollout = self._find(rollout_id)
        if rollout.state not in ACTIVE:
            raise InvalidTransition(f"rollout {rollout_id!r} is {rollout.state}; it takes no "
                                    "more reports", rollout=rollout_id, state=rollout.state)
        self._core.consumers.report(ReportRow(
            self.tenant, rollout_id, who, status, rollout.step, now_micros(),
            reason[:1000] if reason else None))
        self._core.gate.wake()
        identity = self._tenant.identity
        if identity is None or identity.client_id != who:  # a report is a sign of life too
            known = self._core.store.consumer(self.tenant, who)
            identity = Identity(who, tuple(json.loads(known.labels).items()) if known else ())
        self._core.consumers.seen(self.tenant, identity, self._tenant._view.revision)

    def report_health(self, ok: bool = True, reason: str | None = None) -> builtins.list[str]:
        """This consumer's own health, to every running rollout whose cohort it is in;
        returns their ids."""
        identity = self._tenant.identity
        reporter(None, identity, doing="reporting health")
        assert identity is not None  # reporter refused an anonymous tenant
        ids = self._core.rollouts.memberships(self.tenant, self._tenant._view, identity)
        for rollout_id in ids:
            self.report(rollout_id, "healthy" if ok else "unhealthy", reason)
        return ids


def _strategy(strategy: str | Strategy | None, **options: Any) -> Strategy:
    if isinstance(strategy, Strategy):
        return strategy
    if strategy is not None and not isinstance(strategy, str):
        raise InvalidRequest("strategy must be a preset name or a Strategy")
    return Strategy.build(strategy, steps=options.pop("steps"), **options)


def _gate(url: str | None, query: str | None) -> tuple[str, str] | None:
    if url is None and query is None:
        return None
    if not url or not query:
        raise InvalidRequest("the Prometheus gate needs both a URL and a query")
    if not url.startswith(("http://", "https://")):
        raise InvalidRequest(f"the Prometheus URL must start with http:// or https://, "
                             f"not {url!r}")
    return (url.rstrip("/"), query)


def _add(txn: Any, op: Mapping[str, Any], index: int) -> None:
    if not isinstance(op, Mapping):
        raise InvalidRequest(f"op {index} must be an object")
    unknown = set(op) - {"op", "namespace", "key", "env", "value", "expected_version"}
    if unknown:
        raise InvalidRequest(f"op {index} has unknown field(s): {', '.join(sorted(unknown))}")
    kind = op.get("op")
    if kind not in OP_KINDS:
        raise InvalidRequest(f"op {index}: 'op' must be one of {', '.join(OP_KINDS)}, "
                             f"not {kind!r}")
    args = {"env": op.get("env") or BASE_ENV, "expected_version": op.get("expected_version")}
    if kind != "delete" and "value" not in op:
        raise InvalidRequest(f"op {index} ({kind}) needs a value")
    if kind == "put":
        txn.set(op.get("namespace"), op.get("key"), op["value"], **args)
    elif kind == "patch":
        txn.patch(op.get("namespace"), op.get("key"), op["value"], **args)
    else:
        txn.delete(op.get("namespace"), op.get("key"), **args)


def _next_number(txn: WriteTxn) -> int:
    numbers = [int(r.key[2:]) for r in txn.current_rows(ROLLOUT_NS) if _ID.fullmatch(r.key)]
    return max(numbers, default=0) + 1


def _record(txn: WriteTxn, rollout: Rollout, author: str | None, max_bytes: int) -> None:
    """Append the rollout's new document version, index its state, audit the transition."""
    text = encode_value(rollout.to_doc(), max_bytes=max_bytes * (len(rollout.ops) + 1),
                        where=f"rollout {rollout.id}")
    txn.append(new_row(txn, BASE_ENV, ROLLOUT_NS, rollout.id, rollout.version, "rollout",
                       text, False, meta(rollout.event_reason or rollout.reason, author, None)))
    txn.index_rollout(rollout.id, rollout.state)
    txn.append_audit(AuditRow(
        at=txn.now, action=f"rollout.{rollout.event}", tenant=txn.tenant,
        target=f"rollouts/{rollout.id}", actor=author, reason=rollout.event_reason
        or (rollout.reason if rollout.event == "started" else None),
        details=json.dumps({"state": rollout.state, "step": rollout.step,
                            "percent": rollout.percent, "keys": rollout.keys,
                            "revision": txn.revision})))


def _commit_staged(txn: WriteTxn, rollout: Rollout, author: str | None, core: Any) -> None:
    """The staged values as ordinary versions (validated by the commit like any write)."""
    stamp = meta(rollout.reason, author or rollout.author, {"rollout": rollout.id})
    for op in rollout.ops:
        if op.deleted:
            write = Op("delete", op.env, op.namespace, op.key)
        else:
            write = Op("put", op.env, op.namespace, op.key, value=op.value,
                       encoded=encode_value(op.value, max_bytes=core.max_value_bytes))
        apply_op(txn, write, stamp, core.max_value_bytes, core.vault)
