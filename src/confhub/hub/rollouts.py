"""The rollouts of every loaded tenant, as the cache holds them, and what each consumer sees.

A rollout is stored as a document in its tenant's reserved namespace ``.rollouts`` (a name no
user key can have), one version per transition, so each transition is a revision of the
tenant's feed: watchers, other servers' caches (the follower), resume and exactly-once carry
rollouts with no plumbing of their own. ``RolloutBook`` reads them back from the cached view:

* ``overlay(tenant, view, identity)``: the staged entries a consumer resolves instead of the
  committed ones (built once per consumer and rollout state, then a dict lookup per read);
* ``lens(tenant, identity)``: turns a revision as everyone sees it into what one consumer
  sees. Worked example, api-1 in the cohort of r-1 (staging ``models/a = 2``), api-2 not::

      rev 7  .rollouts/r-1 v1 running 10 %  -> api-1: + models/a = 2 (op "rollout")
                                               api-2: (only the transition itself)
      rev 9  .rollouts/r-1 v3 rolled_back   -> api-1: + models/a = 1 (the committed value)
      (or)   .rollouts/r-1 v3 completed     -> everyone: models/a v2 = 2, an ordinary change

  The lens is a pure function of the revision and the identity, so a watcher that resumes
  across a transition gets exactly the changes it would have seen live;
* ``guard``: inside a write transaction, refuses a write to a key under a running rollout.

May import: ``confhub.rollout``, ``confhub.identity``, ``confhub.model``, ``confhub.errors``,
``confhub.store.base`` (row types and the reader) and the hub's ``cache``.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

from ..errors import RolloutInProgress
from ..identity import Identity
from ..model import BASE_ENV, Change, Entry, WatchEvent, freeze, thaw, utc_from_micros
from ..rollout import ACTIVE, COMPLETED, Rollout, StagedOp
from ..store.base import StoreReader, VersionRow, WriteTxn
from .cache import Cache, Stored, TenantView, value_of

__all__ = ["EMPTY_OVERLAY", "ROLLOUT_NS", "Overlay", "RolloutBook"]

ROLLOUT_NS = ".rollouts"  # reserved: user names start with a letter or digit
Address = tuple[str, str, str]  # (env, namespace, key)
_DOC_MEMORY = 4096


Overlay = dict[Address, tuple[Entry | None, str]]
"""What one consumer resolves differently: staged entries (None: a staged deletion), each with
the id of its rollout."""

EMPTY_OVERLAY: Overlay = {}


class _TenantRollouts:
    __slots__ = ("view", "active", "overlays")

    def __init__(self, view: TenantView, active: tuple[Rollout, ...]) -> None:
        self.view = view
        self.active = active
        self.overlays: dict[str, Overlay] = {}  # by Identity.token


def parse(tenant: str, entry: Entry | Stored) -> Rollout:
    """The rollout a cached document holds (decoded or still the stored text)."""
    if type(entry) is Entry:
        return Rollout.from_doc(tenant, thaw(entry.value), revision=entry.revision,
                                version=entry.version)
    stored: Stored = entry  # type: ignore[assignment]
    return Rollout.from_doc(tenant, thaw(value_of(stored)), revision=stored[2],
                            version=stored[1])


class RolloutBook:
    """Rollouts per loaded tenant, rebuilt when a revision touches ``.rollouts``."""

    def __init__(self, cache: Cache, store: StoreReader) -> None:
        self._cache = cache
        self._store = store
        self._tenants: dict[str, _TenantRollouts] = {}
        self._docs: OrderedDict[tuple[str, str, int], Rollout | None] = OrderedDict()
        self._values: OrderedDict[tuple[str, str, str, str, int], Any] = OrderedDict()
        self._memory_lock = threading.Lock()
        # Moves on every rollout transition applied and every gate round (>= once a second):
        # readers keep their overlay while it stands still.
        self.stamp = 0

    # ------------------------------------------------------------------ upkeep

    def applied(self, tenant: str, rows: Sequence[VersionRow],
                before: Sequence[Entry | Stored | None]) -> None:
        """A revision was applied to ``tenant``'s view (under the cache lock)."""
        touched = False
        for row, old in zip(rows, before, strict=True):
            if row.namespace == ROLLOUT_NS:
                touched = True
                if old is not None:
                    doc = parse(tenant, old)
                    self._remember((tenant, row.key, doc.version), doc)
        if touched:
            self._tenants.pop(tenant, None)
            self.stamp += 1

    def forget(self, tenant: str) -> None:
        self._tenants.pop(tenant, None)
        self.stamp += 1

    def tick(self) -> None:
        """The clock readers note their reads by (called by the gate each round)."""
        self.stamp += 1

    def _state(self, tenant: str, view: TenantView) -> _TenantRollouts:
        state = self._tenants.get(tenant)
        if state is not None and state.view is view:
            return state
        # Namespaces load lazily: the rollouts must be in memory before they can be read.
        self._cache.ensure(view, ROLLOUT_NS)
        with self._cache.lock:  # the same lock ``applied`` runs under: never a stale state
            docs = view.entries(BASE_ENV, ROLLOUT_NS).values()
            active = tuple(sorted((parse(tenant, e) for e in docs
                                   if e.value.get("state") in ACTIVE), key=lambda r: r.id))
            state = self._tenants[tenant] = _TenantRollouts(view, active)
        return state

    # ------------------------------------------------------------------ reads

    def active(self, tenant: str, view: TenantView) -> tuple[Rollout, ...]:
        return self._state(tenant, view).active

    def all(self, view: TenantView) -> list[Rollout]:
        self._cache.ensure(view, ROLLOUT_NS)
        with self._cache.lock:
            bucket = list(view.entries(BASE_ENV, ROLLOUT_NS).values())
        return sorted((parse(view.tenant, e) for e in bucket), key=_id_order)

    def overlay(self, tenant: str, view: TenantView, identity: Identity) -> Overlay:
        """The consumer's staged entries (the read path's one extra call: keep it lean)."""
        state = self._tenants.get(tenant)
        if state is None or state.view is not view:
            state = self._state(tenant, view)
        if not state.active:
            return EMPTY_OVERLAY
        overlay = state.overlays.get(identity.token)
        if overlay is None:
            for namespace in {op.namespace for r in state.active for op in r.ops}:
                self._cache.ensure(view, namespace)  # the base entries' creation times
            overlay = state.overlays[identity.token] = _build(view, state.active, identity)
        return overlay

    def memberships(self, tenant: str, view: TenantView, identity: Identity) -> list[str]:
        labels = identity.label_map
        return [r.id for r in self.active(tenant, view) if r.member(identity.client_id, labels)]

    # ------------------------------------------------------------------ writes

    def guard(self, txn: WriteTxn, rows: Sequence[VersionRow], allowed: str | None) -> None:
        """RolloutInProgress if a row writes a key that a running rollout (other than
        ``allowed``, the one completing) stages. Authoritative: the tenant is locked and the
        rollouts come from the cache only when it is exactly at the locked revision."""
        if rows[0].namespace == ROLLOUT_NS and all(r.namespace == ROLLOUT_NS for r in rows):
            return  # only transitions (the first test spares a generator on every put)
        active = [rollout for rollout in self.active_in(txn) if rollout.id != allowed]
        if not active:
            return  # the common case: no set of the (maybe 10,000) keys written
        keys = {(r.env, r.namespace, r.key) for r in rows if r.namespace != ROLLOUT_NS}
        for rollout in active:
            for op in rollout.ops:
                if op.address in keys:
                    raise in_progress(rollout, op)

    def active_in(self, txn: WriteTxn) -> list[Rollout]:
        with self._cache.lock:
            view = self._cache.views.get(txn.tenant)
            # only if the rollouts are in memory: never load a namespace inside a write
            if (view is not None and view.valid and view.has(ROLLOUT_NS)
                    and (view.revision == txn.previous_revision
                         or txn.unchanged_since(view.revision, ROLLOUT_NS))):
                return list(self._state(txn.tenant, view).active)
        rows = txn.current_rows(ROLLOUT_NS)
        return [Rollout.from_doc(txn.tenant, json.loads(r.value), revision=r.revision,
                                 version=r.version)
                for r in rows if r.value is not None and json.loads(r.value)["state"] in ACTIVE]

    # ------------------------------------------------------------------ watch

    def lens(self, tenant: str, identity: Identity) -> Callable[[WatchEvent], WatchEvent]:
        labels = identity.label_map

        def see(event: WatchEvent) -> WatchEvent:
            extra: list[Change] = []
            for change in event.changes:
                if change.namespace == ROLLOUT_NS and change.value is not None:
                    extra.extend(self._moves(tenant, change, identity.client_id, labels))
            if not extra:
                return event
            return WatchEvent(event.tenant, event.revision, (*event.changes, *extra))

        return see

    def _moves(self, tenant: str, change: Change, client_id: str,
               labels: dict[str, str]) -> list[Change]:
        new = Rollout.from_doc(tenant, thaw(change.value), revision=change.revision,
                               version=change.version)
        old = self.doc(tenant, change.key, change.version - 1)
        was = old is not None and old.member(client_id, labels)
        now = new.member(client_id, labels)
        if was == now or new.state == COMPLETED:
            return []  # a completion brings the committed versions in the same revision
        return [self._change(tenant, new, op, staged=now) for op in new.ops]

    def _change(self, tenant: str, rollout: Rollout, op: StagedOp, *, staged: bool) -> Change:
        if staged:
            value, deleted = (None, True) if op.deleted else (freeze(op.value), False)
        else:
            value = self.committed(tenant, op)
            deleted = value is None
        return Change(
            tenant=tenant, env=op.env, namespace=op.namespace, key=op.key,
            version=op.base_version, revision=rollout.revision, op="rollout", value=value,
            deleted=deleted, created_at=utc_from_micros(rollout.updated_at),
            author=rollout.author, reason=rollout.event_reason or rollout.reason,
            metadata=freeze({"rollout": rollout.id, "event": rollout.event,
                             "state": rollout.state, "staged": staged}),
        )

    def doc(self, tenant: str, rollout_id: str, version: int) -> Rollout | None:
        """Version ``version`` of a rollout's document (None for version 0)."""
        if version < 1:
            return None
        key = (tenant, rollout_id, version)
        with self._memory_lock:
            if key in self._docs:
                return self._docs[key]
        row = self._store.version(tenant, BASE_ENV, ROLLOUT_NS, rollout_id, version)
        found = None if row is None or row.value is None else Rollout.from_doc(
            tenant, json.loads(row.value), revision=row.revision, version=row.version)
        self._remember(key, found)
        return found

    def committed(self, tenant: str, op: StagedOp) -> Any:
        """The committed value a staged key had (its base version; None: absent)."""
        if op.base_version < 1:
            return None
        key = (tenant, *op.address, op.base_version)
        with self._memory_lock:
            if key in self._values:
                return self._values[key]
        row = self._store.version(tenant, *op.address, op.base_version)
        value = None if row is None or row.deleted else freeze(json.loads(row.value or "null"))
        with self._memory_lock:
            self._values[key] = value
            if len(self._values) > _DOC_MEMORY:
                self._values.popitem(last=False)
        return value

    def _remember(self, key: tuple[str, str, int], rollout: Rollout | None) -> None:
        with self._memory_lock:
            self._docs[key] = rollout
            if len(self._docs) > _DOC_MEMORY:
                self._docs.popitem(last=False)


def _build(view: TenantView, active: Sequence[Rollout], identity: Identity) -> Overlay:
    labels = identity.label_map
    staged: dict[Address, tuple[Entry | None, str]] = {}
    for rollout in active:
        if not rollout.member(identity.client_id, labels):
            continue
        at = utc_from_micros(rollout.updated_at)
        for op in rollout.ops:
            if op.deleted:
                staged[op.address] = (None, rollout.id)
                continue
            base = view.entry(op.env, op.namespace, op.key)
            staged[op.address] = (Entry(
                tenant=view.tenant, env=op.env, namespace=op.namespace, key=op.key,
                value=freeze(op.value), version=op.base_version, revision=rollout.revision,
                created_at=base.created_at if base is not None else at, updated_at=at,
                updated_by=rollout.author, rollout=rollout.id), rollout.id)
    return staged or EMPTY_OVERLAY


def in_progress(rollout: Rollout, op: StagedOp) -> RolloutInProgress:
    where = f"{op.namespace}/{op.key}" + ("" if op.env == BASE_ENV else f" (env {op.env})")
    return RolloutInProgress(
        f"{where} is under rollout {rollout.id!r} ({rollout.state}, {rollout.percent:g} %); "
        "complete or roll it back before writing the key", rollout=rollout.id,
        namespace=op.namespace, key=op.key, env=op.env, state=rollout.state)


def _id_order(rollout: Rollout) -> tuple[int, str]:
    number = rollout.id.rsplit("-", 1)[-1]
    return (int(number) if number.isdigit() else 0, rollout.id)
