"""The in-memory view of current values that makes a read a dict lookup.

One :class:`TenantView` per tenant that has been read, loaded lazily and kept exact by applying
the change feed strictly in revision order:

* a commit made by this process is applied right after it is durable (read-your-writes);
* a commit made by another process (same SQLite file, same PostgreSQL database) is found by
  the hub's follower thread, woken by ``PRAGMA data_version`` / ``LISTEN``, which reads the
  feed after the view's revision.

Applying is idempotent and ordered: a revision at or below the view's is ignored, and a
revision that would leave a gap (another thread committed R+1 and has not applied it yet when
we bring R+2) makes the view catch up from storage first, so it never skips a change.
Worked example, view at revision 7::

    apply(8, rows)      -> applied, view at 8
    apply(8, rows)      -> ignored (already seen)
    apply(10, rows)     -> gap: read feed (8, ...] from storage = revisions 9 and 10, view at 10

Owns: ``TenantView``, ``Cache`` and the conversions of stored rows to ``Entry``/``Change``.
May import: ``confhub.errors``, ``confhub.model``, ``confhub.secrets`` (redaction) and
``confhub.store.base`` (the reader Protocol and row types); nothing else of the hub.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from datetime import datetime

from ..errors import ConfhubError, Gone
from ..model import Change, Entry, decode_value, utc_from_micros
from ..secrets import redact_text
from ..store.base import StoreReader, VersionRow

EntryKey = tuple[str, str, str]  # (env, namespace, key)


def entry_from_row(row: VersionRow, created_at: datetime | None = None) -> Entry:
    """The Entry a live version row stands for.

    ``created_at`` (when the key's live incarnation began) comes from the argument, else the
    row's ``key_created_at``, else the row's own time.
    """
    updated_at = utc_from_micros(row.created_at)
    if created_at is None and row.key_created_at is not None:
        created_at = utc_from_micros(row.key_created_at)
    return Entry(
        tenant=row.tenant, env=row.env, namespace=row.namespace, key=row.key,
        value=decode_value(redact_text(row.value) if row.secret else row.value),
        version=row.version, revision=row.revision,
        created_at=created_at or updated_at, updated_at=updated_at,
        updated_by=row.author, secret=row.secret,
    )


def change_from_row(row: VersionRow) -> Change:
    return Change(
        tenant=row.tenant, env=row.env, namespace=row.namespace, key=row.key,
        version=row.version, revision=row.revision, op=row.op,
        value=None if row.deleted else decode_value(redact_text(row.value) if row.secret
                                                    else row.value), deleted=row.deleted,
        created_at=utc_from_micros(row.created_at), author=row.author, reason=row.reason,
        metadata=json.loads(row.metadata) if row.metadata else {},
        rollback_of=row.rollback_of, request_id=row.request_id, secret=row.secret,
    )


class TenantView:
    """Current live entries of one tenant at ``revision``; ``valid`` drops when it is evicted."""

    __slots__ = ("tenant", "created_at", "revision", "entries", "by_namespace", "valid")

    def __init__(self, tenant: str, created_at: int = 0, revision: int = 0,
                 valid: bool = True) -> None:
        self.tenant = tenant
        self.created_at = created_at  # tells a purged-and-recreated tenant from the old one
        self.revision = revision
        self.entries: dict[EntryKey, Entry] = {}
        self.by_namespace: dict[tuple[str, str], dict[str, Entry]] = {}
        self.valid = valid

    def _put(self, entry: Entry) -> None:
        self.entries[(entry.env, entry.namespace, entry.key)] = entry
        self.by_namespace.setdefault((entry.env, entry.namespace), {})[entry.key] = entry

    def _remove(self, env: str, namespace: str, key: str) -> None:
        self.entries.pop((env, namespace, key), None)
        bucket = self.by_namespace.get((env, namespace))
        if bucket is not None:
            bucket.pop(key, None)
            if not bucket:
                del self.by_namespace[(env, namespace)]

    def apply_rows(self, rows: Iterable[VersionRow]) -> None:
        """Apply feed rows in order; a row older than the entry it would replace is skipped."""
        for row in rows:
            k = (row.env, row.namespace, row.key)
            existing = self.entries.get(k)
            if existing is not None and existing.version >= row.version:
                continue
            if row.deleted:
                self._remove(*k)
            elif row.key_created_at is not None or existing is None:
                self._put(entry_from_row(row))
            else:
                self._put(entry_from_row(row, existing.created_at))
            if row.revision > self.revision:
                self.revision = row.revision

    def load(self, rows: Iterable[VersionRow]) -> None:
        for row in rows:
            self._put(entry_from_row(row))

    def invalidate(self) -> None:
        self.valid = False
        self.entries.clear()
        self.by_namespace.clear()


EMPTY_VIEW = TenantView("", valid=False)


class Cache:
    """All tenant views of one hub, with the lock that orders updates.

    A whole revision is applied while holding ``lock``. A read of one entry takes no lock; a
    read of several (list, resolve) takes it, so it sees whole transactions, never half of one.
    """

    def __init__(self, store: StoreReader, *,
                 on_revision: Callable[[str, int, list[VersionRow], list[Entry | None]], None]
                 | None = None,
                 on_evict: Callable[[str, ConfhubError | None], None] | None = None) -> None:
        self._store = store
        self._lock = threading.RLock()
        self.views: dict[str, TenantView] = {}
        # Called under the lock, once per revision applied to a loaded view, in revision
        # order (this is what watchers are fed from), and when a loaded view is dropped.
        self._on_revision = on_revision
        self._on_evict = on_evict

    @property
    def lock(self) -> threading.RLock:
        return self._lock

    def view(self, tenant: str) -> TenantView | None:
        """The tenant's view, loading it on first use; None if the tenant is missing/deleted."""
        view = self.views.get(tenant)
        if view is not None:
            return view
        with self._lock:
            view = self.views.get(tenant)
            if view is not None:
                return view
            row = self._store.tenant(tenant)
            if row is None or row.deleted_at is not None:
                return None
            # Revision first, then rows, then the feed since that revision: a commit landing
            # in between is applied twice at worst, which apply_rows makes harmless.
            view = TenantView(tenant, row.created_at, row.revision)
            view.load(self._store.current_rows(tenant))
            self._catch_up(view)
            self.views[tenant] = view
            return view

    def _catch_up(self, view: TenantView) -> None:
        while True:
            try:
                rows = self._store.changes(view.tenant, view.revision, 10_000)
            except Gone as exc:
                # Retention removed history this view had not applied yet (it lagged behind
                # a compaction): it cannot be brought forward, only reloaded. Its watchers
                # are told (Gone) and re-list; the next read loads the tenant afresh.
                self.evict(view.tenant, exc)
                return
            if not rows:
                return
            start = 0
            for end in range(1, len(rows) + 1):  # one revision at a time, for watchers
                if end == len(rows) or rows[end].revision != rows[start].revision:
                    self._apply(view, rows[start].revision, rows[start:end])
                    start = end

    def _apply(self, view: TenantView, revision: int, rows: list[VersionRow]) -> None:
        # What each key was before this revision (watchers compare old and new values).
        before = [view.entries.get((r.env, r.namespace, r.key)) for r in rows]
        view.apply_rows(rows)
        view.revision = revision
        if self._on_revision is not None:
            self._on_revision(view.tenant, revision, rows, before)

    def applied(self, tenant: str, revision: int, rows: list[VersionRow]) -> None:
        """Apply a commit this process just made (rows all carry ``revision``)."""
        with self._lock:
            view = self.views.get(tenant)
            if view is None or revision <= view.revision:
                return
            if revision == view.revision + 1:
                self._apply(view, revision, rows)
            else:
                self._catch_up(view)

    def refresh(self) -> None:
        """Bring every loaded view up to storage; drop views of deleted or purged tenants."""
        if not self.views:
            return
        current = {t.id: t for t in self._store.tenants(include_deleted=True)}
        with self._lock:
            for name, view in list(self.views.items()):
                row = current.get(name)
                # ``current`` was read before taking the lock, so a revision below the view's
                # only means our own commit landed in between; a purged-and-recreated tenant
                # shows as a different created_at.
                if row is None or row.deleted_at is not None or row.created_at != view.created_at:
                    self.evict(name)
                elif row.revision > view.revision:
                    self._catch_up(view)

    def evict(self, tenant: str, error: ConfhubError | None = None) -> None:
        """Drop the tenant's view; its watchers end with ``error`` (default: deleted)."""
        with self._lock:
            view = self.views.pop(tenant, None)
            if view is not None:
                view.invalidate()
                if self._on_evict is not None:
                    self._on_evict(tenant, error)
