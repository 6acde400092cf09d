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
from datetime import UTC, datetime, timedelta
from typing import Any

from ..errors import ConfhubError, Gone
from ..model import Change, Entry, utc_from_micros
from ..secrets import redact_text
from ..store.base import StoreReader, TenantRow, VersionRow
from ..values import NOT_PLAIN, decode_value

EntryKey = tuple[str, str, str]  # (env, namespace, key)


def entry_from_row(row: VersionRow, created_at: datetime | None = None,
                   value: Any = NOT_PLAIN) -> Entry:
    """The Entry a live version row stands for.

    ``created_at`` (when the key's live incarnation began) comes from the argument, else the
    row's ``key_created_at``, else the row's own time. ``value``, when given, is the row's
    value already decoded (see ``TenantView.entry_at``).
    """
    updated_at = utc_from_micros(row.created_at)
    if created_at is None and row.key_created_at is not None:
        created_at = utc_from_micros(row.key_created_at)
    return Entry(
        tenant=row.tenant, env=row.env, namespace=row.namespace, key=row.key,
        value=decode_value(redact_text(row.value) if row.secret else row.value)
        if value is NOT_PLAIN else value,
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


# A current value as the cache keeps it until somebody reads it: the stored JSON text and the
# row's few fields, not a decoded Entry (about a fifth of the memory, and nothing to decode
# on a write). ``TenantView.entry`` turns it into an Entry on first read and keeps that.
Stored = tuple[str, int, int, int, int, "str | None", bool]
# (value text, version, revision, updated_at µs, key created_at µs, updated_by, secret)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def micros_of(moment: datetime) -> int:
    """Exact microseconds since the epoch (``timestamp() * 1e6`` can be off by one)."""
    return (moment - _EPOCH) // timedelta(microseconds=1)


def value_of(found: Entry | Stored | None) -> Any:
    """The (redacted) value of what a view holds for a key, decoding it if need be."""
    if found is None:
        return None
    if type(found) is Entry:
        return found.value
    text, secret = found[0], found[6]  # type: ignore[index]
    return decode_value(redact_text(text) if secret else text)


def stored_from_row(row: VersionRow, created_at: int | None = None) -> Stored:
    assert row.value is not None
    born = created_at if created_at is not None else (
        row.key_created_at if row.key_created_at is not None else row.created_at)
    return (row.value, row.version, row.revision, row.created_at, born, row.author, row.secret)


class TenantView:
    """Current live values of one tenant at ``revision``; ``valid`` drops when it is evicted.

    Values live in ``by_namespace[(env, namespace)][key]``, each an ``Entry`` once read and a
    compact ``Stored`` tuple before. Namespaces are loaded on first use (``loaded``; all of
    them once ``complete``): a tenant of a million keys opens with the one namespace read
    first. Feed rows of a namespace not loaded yet are skipped; loading reads the namespace
    as storage has it then, and the feed after the view's revision is applied on top (see
    ``Cache.ensure``), which ``apply_rows`` makes harmless for rows already reflected.
    """

    __slots__ = ("tenant", "created_at", "revision", "by_namespace", "loaded", "complete",
                 "valid", "lock", "_names")

    def __init__(self, tenant: str, created_at: int = 0, revision: int = 0,
                 valid: bool = True, lock: threading.RLock | None = None) -> None:
        self.tenant = tenant
        self.lock = lock if lock is not None else threading.RLock()  # the cache's
        self.created_at = created_at  # tells a purged-and-recreated tenant from the old one
        self.revision = revision
        self.by_namespace: dict[tuple[str, str], dict[str, Entry | Stored]] = {}
        self.loaded: set[str] = set()
        self.complete = False
        self.valid = valid
        self._names: dict[str, str] = {}  # one str object per env/namespace/author name

    def has(self, namespace: str | None) -> bool:
        """Whether ``namespace`` (None: every namespace) is in memory."""
        return self.complete or (namespace is not None and namespace in self.loaded)

    def entry(self, env: str, namespace: str, key: str) -> Entry | None:
        """The live entry, None if absent (or its namespace not loaded)."""
        bucket = self.by_namespace.get((env, namespace))
        if bucket is None:
            return None
        found = bucket.get(key)
        if found is None or type(found) is Entry:
            return found
        return self.materialize(env, namespace, key, found)  # type: ignore[arg-type]

    def entry_at(self, env: str, namespace: str, key: str, version: int,
                 value: Any = NOT_PLAIN) -> Entry | None:
        """The live entry if it is at ``version``, else None. A write passes the ``value`` it
        just wrote, frozen: the entry is then built with it instead of parsing its text."""
        bucket = self.by_namespace.get((env, namespace))
        found = bucket.get(key) if bucket is not None else None
        if found is None:
            return None
        if type(found) is Entry:
            return found if found.version == version else None
        if found[1] != version:  # type: ignore[index]
            return None
        return self.materialize(env, namespace, key, found, value)  # type: ignore[arg-type]

    def materialize(self, env: str, namespace: str, key: str, stored: Stored,
                    value: Any = NOT_PLAIN) -> Entry:
        text, version, revision, updated, born, author, secret = stored
        updated_at = utc_from_micros(updated)
        if value is NOT_PLAIN:
            value = decode_value(redact_text(text) if secret else text)
        entry = Entry(tenant=self.tenant, env=env, namespace=namespace, key=key, value=value,
                      version=version, revision=revision,
                      created_at=updated_at if born == updated else utc_from_micros(born),
                      updated_at=updated_at, updated_by=author, secret=secret)
        # Keep it, unless a commit is replacing it right now (keep the newer one). Never
        # wait for the lock: the server's event loop reads through here, and the lock may be
        # held while a namespace loads; then the next read decodes again.
        if self.lock.acquire(blocking=False):
            try:
                bucket = self.by_namespace.get((env, namespace))
                if bucket is not None and bucket.get(key) is stored:
                    bucket[key] = entry
            finally:
                self.lock.release()
        return entry

    def entries(self, env: str, namespace: str) -> dict[str, Entry]:
        """Every live entry of one layer of a namespace, decoded."""
        bucket = self.by_namespace.get((env, namespace), {})
        return {key: found if type(found) is Entry
                else self.materialize(env, namespace, key, found)  # type: ignore[arg-type]
                for key, found in list(bucket.items())}

    def all_entries(self) -> dict[EntryKey, Entry]:
        """Every entry in memory, decoded, by (env, namespace, key) (call under the lock)."""
        return {(env, namespace, key): entry for env, namespace in list(self.by_namespace)
                for key, entry in self.entries(env, namespace).items()}

    def size(self) -> int:
        """How many live values are in memory."""
        return sum(len(bucket) for bucket in list(self.by_namespace.values()))

    def _version_of(self, env: str, namespace: str, key: str) -> tuple[int, int] | None:
        """(version, key created_at µs) of a live key, None if absent."""
        bucket = self.by_namespace.get((env, namespace))
        found = bucket.get(key) if bucket is not None else None
        if found is None:
            return None
        if type(found) is Entry:
            return found.version, micros_of(found.created_at)
        return found[1], found[4]  # type: ignore[index]

    def _name(self, name: str) -> str:
        return self._names.setdefault(name, name)

    def _put(self, row: VersionRow, created_at: int | None = None) -> None:
        name = self._name
        stored = stored_from_row(row, created_at)
        if row.author is not None:
            stored = (*stored[:5], name(row.author), stored[6])
        layer = (name(row.env), name(row.namespace))
        bucket = self.by_namespace.get(layer)
        if bucket is None:
            bucket = self.by_namespace[layer] = {}
        bucket[row.key] = stored

    def _remove(self, env: str, namespace: str, key: str) -> None:
        bucket = self.by_namespace.get((env, namespace))
        if bucket is not None:
            bucket.pop(key, None)
            if not bucket:
                del self.by_namespace[(env, namespace)]

    def apply_rows(self, rows: Iterable[VersionRow]) -> None:
        """Apply feed rows in order; a row older than the entry it would replace is skipped,
        and so is a row of a namespace not loaded."""
        for row in rows:
            if row.revision > self.revision:
                self.revision = row.revision
            if not self.complete and row.namespace not in self.loaded:
                continue
            existing = self._version_of(row.env, row.namespace, row.key)
            if existing is not None and existing[0] >= row.version:
                continue
            if row.deleted:
                self._remove(row.env, row.namespace, row.key)
            elif row.key_created_at is not None or existing is None:
                self._put(row)
            else:
                self._put(row, existing[1])

    def load(self, rows: Iterable[VersionRow]) -> None:
        for row in rows:
            self._put(row)

    def invalidate(self) -> None:
        self.valid = False
        self.by_namespace.clear()
        self.loaded.clear()


EMPTY_VIEW = TenantView("", valid=False)


class Cache:
    """All tenant views of one hub, with the lock that orders updates.

    A whole revision is applied while holding ``lock``. A read of one entry takes no lock; a
    read of several (list, resolve) takes it, so it sees whole transactions, never half of one.
    """

    def __init__(self, store: StoreReader, *,
                 on_revision: Callable[[str, int, list[VersionRow],
                                        list[Entry | Stored | None]], None]
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
            # No values yet: each namespace is loaded when first asked for (``ensure``).
            view = TenantView(tenant, row.created_at, row.revision, lock=self._lock)
            self.views[tenant] = view
            return view

    def ensure(self, view: TenantView, namespace: str | None) -> None:
        """Load ``namespace`` (None: all of them) into ``view`` if it is not in memory.

        Revision first, then rows, then the feed since that revision: a commit landing in
        between is applied twice at worst, which ``apply_rows`` makes harmless. Worked
        example, view at revision 7, loading ``models`` while another process commits::

            rows of models read at revision 9   (the commits of 8 and 9 included)
            catch up: feed (7, ...] = 8, 9      each row's version <= the loaded one: skipped
                                                (a tombstone too), so the view is exact at 9
        """
        if view.has(namespace):
            return
        with self._lock:
            if view.has(namespace) or not view.valid:
                return
            self._catch_up(view)
            # All of them: one namespace at a time (a million rows never sit in one list),
            # those already in memory skipped.
            wanted = [namespace] if namespace is not None else [
                ns for ns in self._store.namespaces(view.tenant) if ns not in view.loaded]
            for name in wanted:
                view.load(self._store.current_rows(view.tenant, name))
                view.loaded.add(name)
            if namespace is None:
                view.complete = True
            self._catch_up(view)

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
        # What each key was before this revision (watchers compare old and new values;
        # decoded only if somebody watches, see ``value_of``).
        before = [view.by_namespace.get((r.env, r.namespace), {}).get(r.key) for r in rows]
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
                # shows as a different created_at. It may also be older than a delete and
                # restore made meanwhile: confirm under the lock before dropping a view
                # (rare, and dropping ends the tenant's watchers with "deleted").
                if row is None or self._gone(view, row):
                    row = self._store.tenant(name)
                    if row is None or self._gone(view, row):
                        self.evict(name)
                        continue
                if row.revision > view.revision:
                    self._catch_up(view)

    @staticmethod
    def _gone(view: TenantView, row: TenantRow) -> bool:
        """Whether ``row`` says the tenant ``view`` shows is deleted or was recreated."""
        return row.deleted_at is not None or row.created_at != view.created_at

    def evict(self, tenant: str, error: ConfhubError | None = None) -> None:
        """Drop the tenant's view; its watchers end with ``error`` (default: deleted)."""
        with self._lock:
            view = self.views.pop(tenant, None)
            if view is not None:
                view.invalidate()
                if self._on_evict is not None:
                    self._on_evict(tenant, error)
