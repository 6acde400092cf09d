"""The state one open hub shares between all its tenants, and the commit pipeline.

``Core`` holds the store, the read cache, the vault, the token cache, the watchers and the
follower thread; every part of ``Hub`` and ``Tenant`` reaches them through it (``self._core``)
instead of through each other's private attributes. Data flows one way::

    Tenant.set(...) -> Core.commit -> store.write (durable)
                    -> Cache.applied -> Core._publish -> Broadcaster -> watchers
    another process's commit -> follower wakes -> Cache.refresh -> (same path from Cache)

``Core.commit`` is the one door every write goes through: the op functions append versions
to a store transaction, then the values are validated against the schema in force (inside
the same transaction), every change is audited, and only then does it commit; the cache is
updated after the commit is durable, in feed order.

``TenantPart`` and ``HubPart`` are the bases of the classes that make up ``Tenant`` and
``Hub`` (one concern per module).

May import: ``confhub.store.base``, ``confhub.watch``, ``confhub.secrets``, ``confhub.model``,
``confhub.errors``, ``confhub.audit``, ``confhub.identity`` and the hub's lower modules (cache,
rows, credentials, sealing, schemas, rollouts, consumers, gate). Never a module that builds on
it (reads, txn, feed, staging, ...).
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from ..audit import current_actor
from ..errors import ConfhubError, Gone, NotFound, TenantExists, Unavailable
from ..identity import Identity
from ..model import DEFAULT_TENANT, Entry, ValidationIssue, now_micros
from ..secrets import KeyRing, Vault
from ..store.base import AuditRow, SchemaRow, Store, VersionRow, WriteTxn
from ..watch import Broadcaster, Subscription, WatchFilter
from .cache import EMPTY_VIEW, Cache, Stored, TenantView, change_from_row, value_of
from .consumers import ConsumerBook
from .credentials import StoreKeys, TokenCache
from .gate import Gatekeeper
from .rollouts import EMPTY_OVERLAY, ROLLOUT_NS, Overlay, RolloutBook
from .rows import change_audit, check_since, feed_order
from .schemas import RestartFlags, validate_appended

T = TypeVar("T")
logger = logging.getLogger("confhub")


class _DryRun(Exception):
    """Raised inside a transaction to roll it back while keeping what it computed."""

    def __init__(self, result: Any) -> None:
        self.result = result


class Core:
    """One store and everything kept in memory about it. Thread-safe; ``close()`` stops the
    follower thread, ends every watch and closes the store."""

    def __init__(self, store: Store, *, max_value_bytes: int,
                 keyring: KeyRing | None) -> None:
        self.store = store
        self.max_value_bytes = max_value_bytes
        self.vault = Vault(keyring, StoreKeys(store))
        self.tokens = TokenCache(store)
        self.watchers = Broadcaster()
        self.restart_flags = RestartFlags(store)
        self.cache = Cache(store, on_revision=self._publish, on_evict=self._tenant_gone)
        self.rollouts = RolloutBook(self.cache, store)
        self.consumers = ConsumerBook(store)
        self.gate = Gatekeeper(store, self.consumers, self.rollouts.tick)
        self._closed = threading.Event()
        try:
            if store.tenant(DEFAULT_TENANT) is None:
                with contextlib.suppress(TenantExists):  # another process may be first
                    store.create_tenant(DEFAULT_TENANT)
        except BaseException:
            store.close()
            raise
        self._follower = threading.Thread(target=self._follow, name="confhub-follower",
                                          daemon=True)
        self._follower.start()

    def _follow(self) -> None:
        """Wake on any commit to the database and bring loaded tenant views up to date."""
        idle_rounds = 0
        while not self._closed.is_set():
            try:
                # Short waits so close() returns promptly; a periodic refresh covers a
                # missed wake-up.
                woke = self.store.wait_for_commit(0.05)
                idle_rounds = 0 if woke else idle_rounds + 1
                if not self._closed.is_set() and (woke or idle_rounds >= 20):
                    idle_rounds = 0
                    self.cache.refresh()
                    self.tokens.maybe_reload()
            except ConfhubError:
                self._closed.wait(0.5)  # storage is down; the next round catches up
            except Exception:  # pragma: no cover - never let the follower die silently
                logger.exception("cache follower failed; retrying")
                self._closed.wait(0.5)

    def close(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        self.gate.close()
        self.watchers.end(None, Unavailable("the hub was closed"))
        self._follower.join(timeout=5)
        # Storage may be gone: the registry is a record of sightings, not of data.
        with contextlib.suppress(ConfhubError):
            self.consumers.flush(force=True)
        self.store.close()

    # ------------------------------------------------------------------ reads and watchers

    def view(self, tenant: str) -> TenantView:
        """The tenant's cached view; NotFound if it is missing or deleted."""
        view = self.cache.view(tenant)
        if view is None:
            row = self.store.tenant(tenant)
            raise NotFound(
                f"tenant {tenant!r} " + ("is deleted" if row is not None else "does not exist"),
                tenant=tenant,
            )
        if not view.has(ROLLOUT_NS):
            # Namespaces load lazily, but the rollouts always: reads of a consumer overlay
            # them, and a write's rollout check reads them from memory.
            self.cache.ensure(view, ROLLOUT_NS)
        return view

    def _publish(self, tenant: str, revision: int, rows: list[VersionRow],
                 before: list[Entry | Stored | None]) -> None:
        self.rollouts.applied(tenant, rows, before)
        self.watchers.publish(tenant, revision, lambda: [
            self.restart_flags.flag(change_from_row(row), value_of(old))
            for row, old in zip(rows, before, strict=True)])

    def _tenant_gone(self, tenant: str, error: ConfhubError | None = None) -> None:
        self.rollouts.forget(tenant)
        self.watchers.end(tenant, error or NotFound(f"tenant {tenant!r} was deleted",
                                                    tenant=tenant))

    def subscribe(self, tenant: str, filter: WatchFilter, since: int | None,
                  wake: Callable[[], None], identity: Identity | None = None
                  ) -> Subscription:
        """Register a watcher of ``tenant`` starting after ``since`` (None: from now); with
        an ``identity`` it sees what that consumer sees (staged rollout values)."""
        if since is not None:
            check_since(since)
        lens = self.rollouts.lens(tenant, identity) if identity is not None else None
        while True:
            view = self.view(tenant)  # loads the tenant outside the lock if needed
            # the watched values in memory, so a change can be compared with the old value
            self.cache.ensure(view, filter.namespace)
            with self.cache.lock:
                if not view.valid:
                    continue  # deleted or reloaded meanwhile: look again
                position = view.revision if since is None else since
                subscription = Subscription(tenant, filter, position, view.revision, wake,
                                            lens)
                self.watchers.add(subscription)
                break
        if since is not None and since < view.revision:
            try:
                self.check_retained(tenant, since)
            except ConfhubError:
                self.watchers.remove(subscription)
                raise
        return subscription

    def check_retained(self, tenant: str, since: int) -> None:
        """NotFound for a missing or deleted tenant; Gone when retention removed revisions
        after ``since``."""
        info = self.store.tenant(tenant)
        if info is None or info.deleted_at is not None:
            self.view(tenant)  # raises the right NotFound
        assert info is not None
        if since < info.compacted_revision:
            raise Gone(f"history before revision {info.compacted_revision} of tenant "
                       f"{tenant!r} was removed by retention; re-list and continue from "
                       f"revision {info.revision}", compacted_revision=info.compacted_revision,
                       current_revision=info.revision)

    # ------------------------------------------------------------------ writes

    def commit(self, tenant: str, fn: Callable[[WriteTxn], T], *, create: bool = False,
               dry_run: bool = False, warnings: list[ValidationIssue] | None = None,
               keys: Sequence[tuple[str, str, str]] = (), rollout: str | None = None
               ) -> tuple[T, int, list[VersionRow]]:
        """Run ``fn`` in one store transaction; apply the commit to the cache once durable.

        Every write of every kind comes through here, so this is where values are validated:
        after ``fn`` appended its versions and before the commit, each key it touched is checked
        (resolved per env) against its namespace's schema, inside the same transaction and
        lock, so a refused write changes nothing and no schema change can slip in between.
        The write's warnings (rules of severity warning it broke) go to ``warnings``.
        ``keys`` names the ``(env, namespace, key)`` the write will read, so the store can
        read them all at once (PostgreSQL: in the round trip that takes the lock).

        The cache is updated by the store's ``on_commit`` callback: right after COMMIT, in
        commit order, by whichever thread committed (SQLite's group commit runs many callers'
        transactions in one), so it never sees revision R+1 before R and never has to read
        the feed back to fill such a gap.
        A key staged by a running rollout refuses every write (RolloutInProgress) except
        the one completing that ``rollout`` (the :meth:`submit` fast path included).
        """
        if not create:
            self._rollouts_in_memory(tenant)
        run, committed, appended = self._pipeline(tenant, fn, dry_run, warnings, rollout)
        try:
            result, revision = self.store.write(tenant, run, create=create, keys=keys,
                                                on_commit=committed)
        except _DryRun as dry:
            result, revision = dry.result
        return result, revision, appended

    def submit(self, tenant: str, fn: Callable[[WriteTxn], T], *,
               done: Callable[[tuple[T, int, list[VersionRow]] | None,
                               BaseException | None], object],
               warnings: list[ValidationIssue] | None = None,
               keys: Sequence[tuple[str, str, str]] = ()) -> None:
        """:meth:`commit` without waiting: ``done((result, revision, rows), None)`` or
        ``done(None, error)`` runs on a store thread once the commit is durable (the cache
        already updated) or failed. For event loops; no dry runs."""
        self._rollouts_in_memory(tenant)
        run, committed, appended = self._pipeline(tenant, fn, False, warnings, None)

        def finished(outcome: tuple[T, int] | None, error: BaseException | None) -> None:
            if outcome is None:
                done(None, error)
            else:
                done((outcome[0], outcome[1], appended), None)

        self.store.submit(tenant, run, callback=finished, keys=keys, on_commit=committed)

    def _rollouts_in_memory(self, tenant: str) -> None:
        """Load the tenant's view and its running rollouts before a write, outside its
        transaction: the write's rollout check then reads them from memory. Without this a
        process that only writes (a bulk loader, a server taking PUTs) would read
        ``.rollouts`` from storage inside every transaction, and on a group commit that
        read writes the group's held rows out first, one statement per row."""
        if self.cache.views.get(tenant) is None:
            with contextlib.suppress(NotFound):  # the write itself says what is missing
                self.view(tenant)

    def _pipeline(self, tenant: str, fn: Callable[[WriteTxn], T], dry_run: bool,
                  warnings: list[ValidationIssue] | None, rollout: str | None
                  ) -> tuple[Callable[[WriteTxn], tuple[T, int]],
                             Callable[[tuple[T, int]], None], list[VersionRow]]:
        """The two halves of a commit around the store: what runs inside the transaction
        (``fn``, validation, audit rows) and what runs once it is durable (the cache)."""
        appended: list[VersionRow] = []
        sink: list[ValidationIssue] = warnings if warnings is not None else []

        def run(txn: WriteTxn) -> tuple[T, int]:
            recording = _Recording(txn, appended)
            result = fn(recording)
            if appended:
                self.rollouts.guard(recording, appended, rollout)
                sink.extend(validate_appended(recording, appended, self.vault))
            if dry_run:
                raise _DryRun((result, txn.revision))
            for row in appended:  # in the same transaction: no change goes unaudited
                if row.namespace != ROLLOUT_NS:  # a transition audits itself, by name
                    txn.append_audit(change_audit(row))
            return result, txn.revision

        def committed(outcome: tuple[T, int]) -> None:
            if appended:
                # In feed order, so a watcher sees a revision the same whether it arrives
                # live or is read back from storage.
                self.cache.applied(tenant, outcome[1], sorted(appended, key=feed_order)
                                   if len(appended) > 1 else appended)

        return run, committed, appended

    def audit(self, action: str, tenant: str | None, *, target: str | None = None,
              reason: str | None = None, details: Mapping[str, Any] | None = None,
              actor: str | None = None) -> None:
        """Append one audit record outside any tenant transaction."""
        who = current_actor()
        self.store.append_audit([AuditRow(
            at=now_micros(), action=action, tenant=tenant, target=target, reason=reason,
            actor=actor or (who.name if who else None),
            client=who.client if who else "embedded",
            request_id=who.request_id if who else None,
            details=json.dumps(dict(details), sort_keys=True) if details else None)])


class _Recording:
    """Wraps a WriteTxn to remember what was appended (the cache applies exactly that)."""

    def __init__(self, txn: WriteTxn, sink: list[VersionRow]) -> None:
        self._txn = txn
        self._sink = sink
        self._schemas: dict[str, list[SchemaRow]] = {}
        self.tenant = txn.tenant
        self.revision = txn.revision
        self.previous_revision = txn.previous_revision
        self.now = txn.now

    def current(self, env: str, namespace: str, key: str) -> VersionRow | None:
        return self._txn.current(env, namespace, key)

    def version(self, env: str, namespace: str, key: str, version: int) -> VersionRow | None:
        return self._txn.version(env, namespace, key, version)

    def current_rows(self, namespace: str | None = None) -> list[VersionRow]:
        return self._txn.current_rows(namespace)

    def state_at(self, revision: int, namespace: str | None = None) -> list[VersionRow]:
        return self._txn.state_at(revision, namespace)

    def append(self, row: VersionRow) -> None:
        self._txn.append(row)
        self._sink.append(row)

    def unchanged_since(self, revision: int, namespace: str) -> bool:
        return self._txn.unchanged_since(revision, namespace)

    def changes_since(self, since: int) -> list[VersionRow]:
        return self._txn.changes_since(since)

    def append_audit(self, row: AuditRow) -> None:
        self._txn.append_audit(row)

    def layers(self, namespace: str, key: str) -> list[VersionRow]:
        return self._txn.layers(namespace, key)

    def schema(self, scope: str, namespace: str) -> SchemaRow | None:
        return self._txn.schema(scope, namespace)

    def index_rollout(self, rollout_id: str, state: str) -> None:
        self._txn.index_rollout(rollout_id, state)

    def commit_as(self, revision: int) -> None:
        self._txn.commit_as(revision)
        self.revision = revision

    def add_snapshot(self, label: str, revision: int, created_at: int) -> None:
        self._txn.add_snapshot(label, revision, created_at)

    def schemas_in_force(self, namespace: str) -> list[SchemaRow]:
        # Asked for by every op (x-secret fields) and by validation: once per namespace is
        # enough, as schema writes take the tenant's lock, which this transaction holds.
        found = self._schemas.get(namespace)
        if found is None:
            found = self._schemas[namespace] = self._txn.schemas_in_force(namespace)
        return found


class HubPart:
    """Base of the classes ``Hub`` is made of: they share one ``Core``."""

    _core: Core


class TenantPart:
    """Base of the classes ``Tenant`` is made of: the hub's core and the tenant's name.

    ``_view`` is the tenant's cached view, looked up again only after it was invalidated
    (the tenant deleted or reloaded), so a read of one key is two dict lookups.
    """

    def __init__(self, core: Core, name: str, identity: Identity | None = None) -> None:
        self._core = core
        self.name = name
        self.identity = identity  # the consumer reading (None: anonymous)
        # A consumer's staged entries, as of the rollouts' stamp (see Reads.get).
        self._stamp = -1
        self._stamped_view: TenantView = EMPTY_VIEW
        self._staged_now: Overlay = EMPTY_OVERLAY
        self._cached_view: TenantView = EMPTY_VIEW

    @property
    def _view(self) -> TenantView:
        view = self._cached_view
        if not view.valid:
            view = self._cached_view = self._core.view(self.name)
        return view

