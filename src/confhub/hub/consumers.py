"""The consumer registry: who reads a tenant, seen when, at which revision, reporting what.

Reads are the hot path, so a read only notes its consumer in memory (at most once a second
per consumer); a flush writes the notes to storage in one transaction about once a second,
and re-notes every consumer with an open watch so a connected consumer never looks gone.
Several servers on one database write the same table, which is how ``confhub consumers`` on
any of them lists everyone.

May import: ``confhub.identity``, ``confhub.model``, ``confhub.store.base`` (row types).
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Sequence

from ..identity import Consumer, Identity
from ..model import now_micros, utc_from_micros
from ..rollout import Rollout
from ..store.base import ConsumerRow, ReportRow, Store

__all__ = ["CONNECTED_WINDOW", "RECENT_WINDOW", "ConsumerBook"]

NOTE_EVERY = 1.0  # seconds between two notes of one consumer's reads
FLUSH_EVERY = 1.0
CONNECTED_WINDOW = 30.0  # seen this recently: listed as connected
RECENT_WINDOW = 300.0  # seen this recently: counted in a rollout's cohort


class ConsumerBook:
    """Notes reads and connections in memory; ``flush`` stores them."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._noted: dict[tuple[str, Identity], float] = {}
        self._pending: dict[tuple[str, str], ConsumerRow] = {}
        self._connected: Counter[tuple[str, Identity]] = Counter()
        self._last_flush = 0.0
        self._last_connected = 0.0

    def seen(self, tenant: str, identity: Identity, revision: int) -> None:
        """A read by ``identity`` at ``revision`` (cheap: most calls only compare a time)."""
        now = time.monotonic()
        key = (tenant, identity)
        if now - self._noted.get(key, 0.0) < NOTE_EVERY:
            return
        self._noted[key] = now
        self._note(tenant, identity, revision)

    def _note(self, tenant: str, identity: Identity, revision: int) -> None:
        at = now_micros()
        row = ConsumerRow(tenant, identity.client_id, json.dumps(identity.label_map), at, at,
                          revision)
        with self._lock:
            old = self._pending.get((tenant, identity.client_id))
            if old is not None and old.revision > revision:
                row = ConsumerRow(row.tenant, row.client_id, row.labels, old.first_seen, at,
                                  old.revision)
            self._pending[(tenant, identity.client_id)] = row

    def connect(self, tenant: str, identity: Identity, revision: int) -> None:
        with self._lock:
            self._connected[(tenant, identity)] += 1
        self._note(tenant, identity, revision)

    def disconnect(self, tenant: str, identity: Identity) -> None:
        with self._lock:
            self._connected[(tenant, identity)] -= 1
            if self._connected[(tenant, identity)] <= 0:
                del self._connected[(tenant, identity)]

    def flush(self, force: bool = False) -> None:
        """Store what was noted (at most once a second unless ``force``); consumers with an
        open watch are re-noted every ``CONNECTED_WINDOW / 3`` seconds."""
        now = time.monotonic()
        if not force and now - self._last_flush < FLUSH_EVERY:
            return
        self._last_flush = now
        with self._lock:
            rows, self._pending = list(self._pending.values()), {}
            connected: list[tuple[str, Identity]] = []
            if now - self._last_connected > CONNECTED_WINDOW / 3:
                self._last_connected = now
                noted = {(r.tenant, r.client_id) for r in rows}
                connected = [k for k in self._connected if (k[0], k[1].client_id) not in noted]
        at = now_micros()
        rows += [ConsumerRow(t, i.client_id, json.dumps(i.label_map), at, at, 0)
                 for t, i in connected]
        if rows:
            self._store.touch_consumers(rows)

    def report(self, row: ReportRow) -> None:
        self._store.add_report(row)

    def listed(self, tenant: str, active: Sequence[Rollout],
               client_id: str | None = None) -> list[Consumer]:
        """Consumers of ``tenant`` (or just ``client_id``) with their last reports and the
        ``active`` rollouts whose cohort they are in."""
        self.flush(force=True)
        if client_id is not None:
            one = self._store.consumer(tenant, client_id)
            rows = [one] if one is not None else []
        else:
            rows = self._store.consumers(tenant)
        reports: dict[str, list[dict[str, object]]] = {}
        for report in self._store.reports(tenant, client_id=client_id):
            reports.setdefault(report.client_id, []).append({
                "rollout": report.rollout_id, "status": report.status,
                "reason": report.reason, "step": report.step,
                "at": utc_from_micros(report.at).isoformat()})
        now = now_micros()
        listed = []
        for row in rows:
            labels = json.loads(row.labels)
            listed.append(Consumer(
                tenant=tenant, client_id=row.client_id, labels=labels,
                first_seen=utc_from_micros(row.first_seen),
                last_seen=utc_from_micros(row.last_seen), revision=row.revision,
                connected=now - row.last_seen < CONNECTED_WINDOW * 1e6,
                rollouts=tuple(r.id for r in active if r.member(row.client_id, labels)),
                reports=tuple(reports.get(row.client_id, ())[:10])))
        return listed

    def recent(self, tenant: str, *, fresh: bool = True) -> list[ConsumerRow]:
        """Consumers seen within RECENT_WINDOW (those a rollout's cohort is counted from);
        ``fresh=False`` (the gate's rounds) lets the notes of the last second wait for the
        next regular flush instead of writing on every round."""
        self.flush(force=fresh)
        return self._store.consumers(tenant, seen_since=now_micros() - int(RECENT_WINDOW * 1e6))

    def recent_count(self) -> int:
        """Consumers of every tenant seen within RECENT_WINDOW."""
        self.flush(force=True)
        since = now_micros() - int(RECENT_WINDOW * 1e6)
        return sum(len(self._store.consumers(t.id, seen_since=since))
                   for t in self._store.tenants())
