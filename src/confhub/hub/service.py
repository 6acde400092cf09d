"""``Hub``: an open confhub on one store, and ``open_embedded``, which picks the store.

``Hub`` is what every interface holds (the server, the CLI with ``--db``, a Python program);
it is assembled from one part per concern, all sharing one ``Core``:

    TenantAdmin  hub/tenants.py   tenant(), tenants, create/clone/delete/restore tenants
    Transfer     hub/transfer.py  export, import_
    Security     hub/security.py  tokens, authenticate, audit, rotate_keys
    Retention    hub/retention.py retention policies, compaction (issue 13)
    Backup       hub/backup.py    whole-store backup/restore, with Integrity
                 (hub/integrity.py: doctor) under it (issue 13)

and adds the life cycle (``close``, ``sync``), health and the few read-only windows the server
needs (``cached_entry``). This is the only module that names the store backends.

May import: ``confhub.store`` (backends, lazily), ``confhub.secrets``, ``confhub.model``,
``confhub.errors`` and the hub's parts and ``core``.
"""

from __future__ import annotations

from typing import Any

from ..errors import ConfhubError, InvalidRequest
from ..model import DEFAULT_TENANT, Entry
from ..secrets import KeyRing
from ..store.base import Store
from ..values import MAX_VALUE_BYTES
from .backup import Backup
from .core import Core
from .retention import Retention
from .security import Security
from .tenant import Tenant
from .tenants import TenantAdmin
from .transfer import Transfer


class Hub(TenantAdmin, Transfer, Security, Retention, Backup):
    """An open confhub: tenants, export/import, tokens, audit, health and stats on one store.

    Thread-safe. A follower thread keeps the read cache exact when other processes write the
    same database; ``close()`` stops it.
    """

    def __init__(self, store: Store, *, max_value_bytes: int = MAX_VALUE_BYTES,
                 keyring: KeyRing | None = None) -> None:
        self._core = Core(store, max_value_bytes=max_value_bytes, keyring=keyring)
        core = self._core
        core.gate.start(lambda name: Tenant(core, name).rollouts)

    @property
    def backend(self) -> str:
        return self._core.store.backend

    @property
    def max_value_bytes(self) -> int:
        return self._core.max_value_bytes

    def sync(self) -> None:
        """Bring the cache up to storage now (it otherwise lags other processes by ~ms)."""
        self._core.cache.refresh()

    def close(self) -> None:
        self._core.close()

    def __enter__(self) -> Hub:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def rollout_stats(self) -> dict[str, Any]:
        """For ``/metrics``: rollouts of every tenant by state, and consumers seen in the
        last five minutes (all tenants)."""
        by_state = dict.fromkeys(("running", "paused", "completed", "rolled_back"), 0)
        for _, _, state in self._core.store.rollout_index():
            by_state[state] = by_state.get(state, 0) + 1
        return {"rollouts": by_state, "consumers": self._core.consumers.recent_count()}

    def cached_entry(self, tenant: str, env: str, namespace: str, key: str) -> Entry | None:
        """The current entry if it is in memory, else None; never touches storage, so an
        event loop may call it (the server's lean GET path does). A hit is always a live,
        current entry: a view leaves the cache when its tenant is deleted and is updated in
        place by every commit."""
        view = self._core.cache.views.get(tenant)
        if view is None or not view.valid:
            return None
        return view.entry(env, namespace, key)

    def cache_size(self) -> int:
        """Entries this process holds in memory (all loaded tenant views)."""
        return sum(view.size() for view in list(self._core.cache.views.values()))

    def cached_entries(self, tenant: str, env: str, namespace: str) -> list[Entry] | None:
        """The live entries of a namespace in one env if the tenant is in memory (unsorted),
        else None; like :meth:`cached_entry`, never touches storage (the OFREP routes
        evaluate flags on the event loop with it). Copied under the cache lock, so the list
        holds whole transactions; None too while the namespace is not loaded yet or the lock
        is busy (a namespace may be loading under it), so the caller never waits."""
        core = self._core
        view = core.cache.views.get(tenant)
        if view is None or not view.valid or not view.has(namespace):
            return None
        if not core.cache.lock.acquire(blocking=False):
            return None
        try:
            return list(view.entries(env, namespace).values())
        finally:
            core.cache.lock.release()

    def health(self) -> dict[str, Any]:
        """Never raises: ``ok`` is False (with ``error``) when storage cannot be reached."""
        core = self._core
        try:
            latency = core.store.ping()
            row = core.store.tenant(DEFAULT_TENANT)
            return {"ok": True, "backend": self.backend,
                    "revision": row.revision if row else 0,
                    "latency_ms": round(latency * 1000, 3),
                    "cached_tenants": len(core.cache.views)}
        except ConfhubError as exc:
            return {"ok": False, "backend": self.backend, "error": exc.message}

    def stats(self) -> dict[str, Any]:
        return self._core.store.stats()


def open_embedded(url: str | None = None, *, max_value_bytes: int = MAX_VALUE_BYTES,
                  master_key: str | None = None, key_file: str | None = None) -> Hub:
    """A hub on a local store: SQLite (default ``./confhub.db``) or PostgreSQL.

    ``url`` forms: ``None`` or a file path; ``sqlite:///relative/path.db`` and
    ``sqlite:////absolute/path.db`` (SQLAlchemy's convention); ``postgresql://...``.
    Secrets are sealed with the master key(s) of ``master_key`` / ``key_file``, else
    ``CONFHUB_MASTER_KEY`` / ``CONFHUB_KEY_FILE`` (see :mod:`confhub.secrets`).
    """
    keyring = KeyRing.from_settings(master_key, key_file)
    return Hub(open_store(url), max_value_bytes=max_value_bytes, keyring=keyring)


def open_store(url: str | None) -> Store:
    """The store a URL names (the backend module is imported only when used)."""
    target = url if url is not None else "confhub.db"
    if target.startswith(("postgresql://", "postgres://")):
        from ..store.postgres import PostgresStore

        return PostgresStore(target)
    if target.startswith("sqlite://"):
        target = target[len("sqlite://"):]
        if not target.startswith("/") or target in ("", "/"):
            raise InvalidRequest(f"bad SQLite URL {url!r}: use sqlite:///relative.db or "
                                 "sqlite:////absolute/path.db")
        target = target[1:]
    elif "://" in target:
        raise InvalidRequest(f"unsupported URL {url!r}: use a file path, sqlite://, "
                             "postgresql:// or http(s)://")
    if target == ":memory:":
        raise InvalidRequest("in-memory SQLite is not supported (every connection would see "
                             "a different database); use a file in a temporary directory")
    from ..store.sqlite import SqliteStore

    return SqliteStore(target)
