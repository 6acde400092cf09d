"""PostgreSQL backend (psycopg 3), for several processes or machines on one database.

Writers of one tenant are serialised by ``SELECT ... FOR UPDATE`` on the tenant's row, so its
revisions commit in order and a reader never sees revision R+1 before R. Every commit sends
``NOTIFY confhub_commits`` inside its transaction (delivered only if it commits); other processes
LISTEN and catch up from the change feed, which stays the source of truth when a notification is
missed. Durability is PostgreSQL's own: a write is acknowledged after COMMIT returns.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import psycopg_pool

from ..errors import ConfhubError, TenantExists, Unavailable
from ..model import now_micros
from .migrate import migrate
from .sql import SqlStore

CHANNEL = "confhub_commits"
TABLES = ("confhub_tenants", "confhub_versions", "confhub_current", "confhub_snapshots",
          "confhub_schema", "confhub_schemas", "confhub_tokens", "confhub_data_keys",
          "confhub_audit", "confhub_retention")


@contextmanager
def _translated() -> Iterator[None]:
    try:
        yield
    except ConfhubError:
        raise
    except (psycopg.OperationalError, psycopg_pool.PoolTimeout) as exc:
        raise Unavailable(f"PostgreSQL is unavailable: {exc}", backend="postgres") from exc
    except psycopg.errors.SerializationFailure as exc:
        raise Unavailable(f"PostgreSQL transaction conflict, retry: {exc}",
                          backend="postgres") from exc


class PostgresStore(SqlStore):
    backend = "postgres"
    placeholder = "%s"

    def __init__(self, dsn: str, *, min_size: int = 1, max_size: int = 10,
                 timeout: float = 10.0) -> None:
        self.dsn = dsn
        self._listen_lock = threading.Lock()
        self._listener: psycopg.Connection[Any] | None = None
        with _translated():
            self._pool = psycopg_pool.ConnectionPool(
                dsn, min_size=min_size, max_size=max_size, timeout=timeout,
                kwargs={"autocommit": True}, open=False,
            )
            self._pool.open(wait=True, timeout=timeout)
            with self._writing_raw() as conn:
                conn.execute("SELECT pg_advisory_xact_lock(8011)")
                migrate(conn, "postgres", placeholder="%s")
            self.backfill_checksums()

    @contextmanager
    def _writing_raw(self) -> Iterator[psycopg.Connection[Any]]:
        with self._pool.connection() as conn, conn.transaction():
            yield conn

    @contextmanager
    def _reading(self) -> Iterator[psycopg.Connection[Any]]:
        with _translated(), self._pool.connection() as conn:
            yield conn

    @contextmanager
    def _writing(self) -> Iterator[psycopg.Connection[Any]]:
        with _translated(), self._writing_raw() as conn:
            yield conn

    def _lock_tenant_sql(self) -> str:
        return "SELECT revision, deleted_at FROM confhub_tenants WHERE id = %s FOR UPDATE"

    def _lock_all_tenants_sql(self) -> str:
        return "SELECT id FROM confhub_tenants ORDER BY id FOR UPDATE"

    def _lock_tenant_creation(self, conn: Any) -> None:
        conn.execute("SELECT pg_advisory_xact_lock(8012)")

    def _insert_tenant(self, conn: Any, tenant: str) -> None:
        self._lock_tenant_creation(conn)  # see SqlStore.write_schema
        # Two processes creating the same tenant at once: the loser's insert conflicts.
        inserted = conn.execute(
            "INSERT INTO confhub_tenants (id, created_at, deleted_at, revision, "
            "compacted_revision) VALUES (%s, %s, NULL, 0, 0) ON CONFLICT (id) DO NOTHING",
            (tenant, now_micros()),
        ).rowcount
        if not inserted:
            raise TenantExists(f"tenant {tenant!r} already exists", tenant=tenant)

    def _after_write(self, conn: Any, tenant: str, revision: int) -> None:
        conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, f"{tenant}:{revision}"))

    def _storage_bytes(self, conn: Any) -> int:
        row = conn.execute(
            "SELECT COALESCE(SUM(pg_total_relation_size(to_regclass(t))), 0) "
            "FROM unnest(%s::text[]) AS t", (list(TABLES),)
        ).fetchone()
        return int(row[0])

    def ping(self) -> float:
        started = time.perf_counter()
        with self._reading() as conn:
            conn.execute("SELECT 1").fetchone()
        return time.perf_counter() - started

    def wait_for_commit(self, timeout: float) -> bool:
        """Wait for a NOTIFY from any process's commit; reconnects the listener as needed."""
        with self._listen_lock, _translated():
            try:
                if self._listener is None or self._listener.closed:
                    self._listener = psycopg.connect(self.dsn, autocommit=True)
                    self._listener.execute(f"LISTEN {CHANNEL}")
                    return True  # we may have missed commits while not listening
                for _ in self._listener.notifies(timeout=timeout, stop_after=1):
                    return True
                return False
            except psycopg.OperationalError:
                if self._listener is not None:
                    self._listener.close()
                self._listener = None
                raise

    def reclaim_space(self, full: bool = False) -> dict[str, Any]:
        """Autovacuum makes the space of removed versions reusable (it is not handed back to
        the OS; ``VACUUM FULL`` would, under an exclusive lock). ``full``: VACUUM ANALYZE now."""
        before = self.stats()["storage_size_mb"]
        if full:
            with _translated(), self._pool.connection() as conn:  # autocommit: VACUUM needs it
                conn.execute("VACUUM ANALYZE confhub_versions")
        return {"method": "vacuum analyze" if full else "autovacuum",
                "size_mb_before": before, "size_mb_after": self.stats()["storage_size_mb"]}

    def close(self) -> None:
        with self._listen_lock:
            if self._listener is not None:
                self._listener.close()
                self._listener = None
        self._pool.close()
