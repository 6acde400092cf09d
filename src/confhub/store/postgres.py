"""PostgreSQL backend (psycopg 3), for several processes or machines on one database.

Writers of one tenant are serialised by ``SELECT ... FOR UPDATE`` on the tenant's row, so its
revisions commit in order and a reader never sees revision R+1 before R. Every commit sends
``NOTIFY confhub_commits`` inside its transaction (delivered only if it commits); other processes
LISTEN and catch up from the change feed, which stays the source of truth when a notification is
missed. Durability is PostgreSQL's own: a write is acknowledged after its commit returns.

Outages fail fast. Waiting for the pool to hand out a connection while PostgreSQL is down
would hold every request for the pool's whole timeout (as long as a client's own timeout), so
callers would see hangs instead of 503. So the store remembers that the database went away
(a connection error, or no connection within ``FAST_FAIL`` seconds while a direct connect is
refused) and, until a probe connects again, answers ``Unavailable`` at once: one caller
probes (at most every ``PROBE_INTERVAL``), the others do not wait for it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
import psycopg_pool

from ..errors import ConfhubError, TenantExists, Unavailable
from ..model import now_micros
from .base import ALL_TENANTS, AuditRow, VersionRow
from .group import MAX_GROUP, GroupCommits, Job
from .migrate import migrate
from .pending import Pending
from .pg_rows import finish_statement, rows_source, write_audit, write_versions
from .sql import SqlStore
from .sql_commit import settle
from .sql_txn import SCHEMA_COLUMNS, VERSION_COLUMNS, schema_row, version_row

CHANNEL = "confhub_commits"


def current_of_keys(tenant: str, keys: Sequence[tuple[str, str, str]]) -> tuple[str, list[Any]]:
    """The current version rows of ``keys`` (env, namespace, key), each with its key's
    created_at.

    The wanted keys drive (one index lookup each, in the current pointers, then the versions
    by their whole primary key); each LATERAL ... OFFSET 0 keeps the planner to that order. A
    plain join let it read every version of a key and filter (stale statistics make both
    look alike): a hot key with 300 versions took milliseconds to prefetch. Never prepared
    (the caller passes ``prepare=False``): a generic plan made while the tables were small
    kept choosing the feed index (tenant, revision) and filtering every version of the
    tenant, long after the tables had grown."""
    source, params = rows_source(keys, ("text", "text", "text"))
    return (f"SELECT v.*, c.created_at FROM ({source}) AS w (env, namespace, key) "
            "CROSS JOIN LATERAL (SELECT c.version, c.created_at "
            "FROM confhub_current c WHERE c.tenant = %s AND c.env = w.env "
            "AND c.namespace = w.namespace AND c.key = w.key OFFSET 0) c "
            f"CROSS JOIN LATERAL (SELECT {VERSION_COLUMNS} FROM confhub_versions v "
            "WHERE v.tenant = %s AND v.env = w.env AND v.namespace = w.namespace "
            "AND v.key = w.key AND v.version = c.version OFFSET 0) v"), [
                *params, tenant, tenant]


def schemas_in_force_of(namespaces: Sequence[str], tenant: str) -> tuple[str, list[Any]]:
    """The newest schema version of each of ``namespaces``, the tenant's and the global."""
    source, params = rows_source([(n,) for n in namespaces], ("text",))
    return (f"SELECT {SCHEMA_COLUMNS} FROM confhub_schemas s WHERE namespace IN ({source}) "
            "AND scope IN (%s, %s) AND version = (SELECT MAX(version) FROM confhub_schemas w "
            "WHERE w.scope = s.scope AND w.namespace = s.namespace)"), [
                *params, tenant, ALL_TENANTS]


FAST_FAIL = 1.0  # seconds to wait for a pooled connection before asking if the server is up
PROBE_INTERVAL = 0.5  # seconds between two connection probes while the database is down
CONNECT_TIMEOUT = 2  # seconds (libpq's connect_timeout is whole seconds)
TABLES = ("confhub_tenants", "confhub_versions", "confhub_current", "confhub_snapshots",
          "confhub_schema", "confhub_schemas", "confhub_tokens", "confhub_data_keys",
          "confhub_audit", "confhub_retention", "confhub_rollouts", "confhub_consumers",
          "confhub_rollout_reports")
OWN_NOTIFY_TTL = 10.0  # seconds a sent notification is remembered (see wait_for_commit)
LEADER_LOCK = 8014  # first key of the advisory locks of ``leading`` (8011-8013 are taken)


def _unavailable(exc: BaseException) -> Unavailable:
    return Unavailable(f"PostgreSQL is unavailable: {_first_line(exc)}", backend="postgres",
                       retry_after=1)


class PostgresStore(GroupCommits, SqlStore):
    backend = "postgres"
    placeholder = "%s"
    isolates = True  # a group commit carries several write()s

    def __init__(self, dsn: str, *, min_size: int = 1, max_size: int = 10,
                 timeout: float = 10.0) -> None:
        self.dsn = dsn
        self._timeout = timeout
        self._listen_lock = threading.Lock()
        # Notifications of this store's own group commits, "tenant:revision" -> when sent:
        # their rows reach the cache through on_commit, so the follower need not wake for them.
        self._own: dict[str, float] = {}
        self._listener: psycopg.Connection[Any] | None = None
        self._down: str | None = None  # why the database is unreachable, None while it is up
        self._probe_lock = threading.Lock()
        self._last_probe = 0.0
        try:
            # One direct connect first: a wrong or missing database fails in one clear line
            # at once, instead of the pool's retries for ``timeout`` seconds.
            psycopg.connect(dsn, connect_timeout=CONNECT_TIMEOUT).close()
        except psycopg.OperationalError as exc:
            raise Unavailable(f"cannot connect to PostgreSQL: {_first_line(exc)}",
                              backend="postgres") from None
        with self._translated():
            self._pool = psycopg_pool.ConnectionPool(
                dsn, min_size=min_size, max_size=max_size, timeout=timeout,
                kwargs={"autocommit": True, "connect_timeout": CONNECT_TIMEOUT}, open=False,
            )
            self._pool.open(wait=True, timeout=timeout)
            with self._writing_raw() as conn:
                conn.execute("SELECT pg_advisory_xact_lock(8011)")
                migrate(conn, "postgres", placeholder="%s")
            self.backfill_checksums()
        self._write_lock = threading.Lock()  # one group of this process at a time
        self._start_groups("postgres")

    @contextmanager
    def _translated(self) -> Iterator[None]:
        try:
            yield
        except ConfhubError:
            raise
        except psycopg.errors.SerializationFailure as exc:
            raise Unavailable(f"PostgreSQL transaction conflict, retry: {exc}",
                              backend="postgres", retry_after=1) from exc
        except (psycopg.OperationalError, psycopg_pool.PoolTimeout) as exc:
            if isinstance(exc, psycopg_pool.PoolTimeout) or _lost_connection(exc):
                self._down = _first_line(exc)
            raise _unavailable(exc) from exc

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        """A pooled connection, or Unavailable at once while the database is down."""
        if self._down is not None:
            self._probe()
        try:
            conn = self._pool.getconn(timeout=min(FAST_FAIL, self._timeout))
        except psycopg_pool.PoolTimeout:
            # Busy, or down? A direct connect tells: refused means down (fail now).
            self._probe(force=True)
            conn = self._pool.getconn(timeout=max(self._timeout - FAST_FAIL, 0.1))
        try:
            with conn:  # what pool.connection() does: commit or roll back, never close
                yield conn
        finally:
            self._pool.putconn(conn)

    def _probe(self, *, force: bool = False) -> None:
        """While down: one caller tries a direct connect (at most every PROBE_INTERVAL);
        everyone else, and a failed probe, get Unavailable without waiting."""
        reason = self._down or "no connection within the pool's wait"
        if not self._probe_lock.acquire(blocking=False):
            raise Unavailable(f"PostgreSQL is unavailable: {reason}", backend="postgres",
                              retry_after=1)
        try:
            now = time.monotonic()
            if not force and now - self._last_probe < PROBE_INTERVAL:
                raise Unavailable(f"PostgreSQL is unavailable: {reason}", backend="postgres",
                                  retry_after=1)
            self._last_probe = now
            try:
                psycopg.connect(self.dsn, connect_timeout=CONNECT_TIMEOUT).close()
            except psycopg.OperationalError as exc:
                self._down = _first_line(exc)
                raise _unavailable(exc) from None
            if self._down is not None:
                self._down = None
                self._pool.check()  # drop the connections the outage broke
        finally:
            self._probe_lock.release()

    @contextmanager
    def _writing_raw(self) -> Iterator[psycopg.Connection[Any]]:
        with self._connection() as conn, conn.transaction():
            yield conn

    @contextmanager
    def _reading(self) -> Iterator[psycopg.Connection[Any]]:
        with self._translated(), self._connection() as conn:
            yield conn

    @contextmanager
    def _writing(self) -> Iterator[psycopg.Connection[Any]]:
        with self._translated(), self._writing_raw() as conn:
            yield conn

    def _lock_tenant_sql(self) -> str:
        return "SELECT revision, deleted_at FROM confhub_tenants WHERE id = %s FOR UPDATE"

    def _take_group(self) -> list[Job]:
        """Queued transactions of the first one's tenant, in order (one tenant's row lock per
        group, so two processes never wait for each other's locks in opposite orders); a
        tenant creation goes alone."""
        first = self._queue[0]
        jobs: list[Job] = []
        while (self._queue and len(jobs) < MAX_GROUP and self._queue[0].tenant == first.tenant
               and not self._queue[0].create and not first.create):
            jobs.append(self._queue.popleft())
        return jobs or [self._queue.popleft()]

    def _run_group(self, jobs: list[Job]) -> None:
        """The group's transactions in one PostgreSQL transaction and two round trips when
        every job named the keys it reads (psycopg's pipeline mode; each statement is still
        its own, in order).

        Round trip 1: lock the tenant's row, read the current rows of every job's ``keys``
        and the schemas in force for their namespaces. Then each job's function runs in
        Python against those (anything else it reads costs a round trip of its own) and its
        rows are held. Round trip 2: one statement with the rows (one batch per table), the
        tenant's revision and NOTIFY (``pg_rows.finish_statement``), then the pipeline's
        Sync. Each read statement runs after the lock is granted, so it sees every commit
        made before (READ COMMITTED takes a snapshot per statement).

        There is no BEGIN and no COMMIT: everything a pipeline sends before its Sync is one
        implicit transaction, which the Sync commits (or rolls back, after an error), and
        psycopg fetches the first round trip's rows with a flush request, not a Sync. That is
        two statements fewer per commit, ~10 % of a ``set``'s client instructions. A job
        that needs a SAVEPOINT (a new tenant, a read of the whole database) first sends
        BEGIN, which turns the implicit transaction into a block holding what already ran
        (``SqlWriteTxn.go_direct``); the group then ends it with COMMIT. For example, a group
        of two ``set`` calls sends: lock, read, read | rows+revision+NOTIFY, Sync.
        """
        tenant, create = jobs[0].tenant, jobs[0].create
        keys = list(dict.fromkeys(k for job in jobs for k in job.keys))
        group = Pending()
        group.implicit = True
        try:
            with self._translated(), self._connection() as conn:
                try:
                    with conn.pipeline():
                        locked = conn.execute(self._lock_tenant_sql(), (tenant,))
                        current = schemas = None
                        if keys and not create:
                            current = conn.execute(*current_of_keys(tenant, keys),
                                                   prepare=False)
                            schemas = conn.execute(*schemas_in_force_of(
                                sorted({namespace for _, namespace, _ in keys}), tenant))
                        tenant_row = locked.fetchone()  # round trip 1: all of the above
                        prefetched = self._prefetched(group, tenant, keys, current, schemas)
                        for job in jobs:
                            try:
                                job.result = job.context.run(
                                    self._write_in, conn, tenant, job.fn, job.create, group,
                                    prefetched, tenant_row)
                            except psycopg.Error:
                                raise  # the transaction itself is in doubt: fail the group
                            except BaseException as exc:  # noqa: BLE001 - for the job's caller
                                job.error = exc
                        self._sent(group)
                        conn.execute(*finish_statement(group, CHANNEL))
                        if not group.implicit:  # a SAVEPOINT opened a transaction block
                            conn.execute("COMMIT")
                    # leaving the pipeline is round trip 2: its Sync commits, durably
                except BaseException:
                    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                        conn.execute("ROLLBACK")
                    raise
        except BaseException as exc:
            settle(jobs, exc)
            return
        settle(jobs, None)

    @staticmethod
    def _prefetched(group: Pending, tenant: str, keys: list[tuple[str, str, str]],
                    current: Any, schemas: Any) -> dict[tuple[str, str, str], VersionRow | None]:
        """What round trip 1 read: the keys' rows (None: absent) and, in ``group``, the
        schemas in force per namespace."""
        if current is None or schemas is None:
            return {}
        prefetched: dict[tuple[str, str, str], VersionRow | None] = dict.fromkeys(keys)
        for r in current.fetchall():
            prefetched[(r[1], r[2], r[3])] = version_row(r, r[16])
        for _, namespace, _ in keys:
            group.schemas[(tenant, namespace)] = []
        for r in schemas.fetchall():
            group.schemas[(tenant, r[1])].append(schema_row(r))
        return prefetched

    def _write_versions(self, conn: Any, rows: Sequence[VersionRow]) -> None:
        write_versions(conn, rows)  # one statement per table (pg_rows.py)

    def _write_audit(self, conn: Any, rows: Sequence[AuditRow]) -> None:
        write_audit(conn, rows)

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

    @contextmanager
    def leading(self, name: str) -> Iterator[bool]:
        """A session advisory lock, held on one pooled connection for the block; if this
        process dies PostgreSQL releases it with the session, so another server takes over."""
        with self._translated(), self._pool.connection() as conn:
            row = conn.execute("SELECT pg_try_advisory_lock(%s, hashtext(%s))",
                               (LEADER_LOCK, name)).fetchone()
            got = bool(row and row[0])
            try:
                yield got
            finally:
                if got:
                    conn.execute("SELECT pg_advisory_unlock(%s, hashtext(%s))",
                                 (LEADER_LOCK, name))

    def ping(self) -> float:
        started = time.perf_counter()
        with self._reading() as conn:
            conn.execute("SELECT 1").fetchone()
        return time.perf_counter() - started

    def _sent(self, group: Pending) -> None:
        """Remember the notifications of a group commit's written revisions (see
        ``wait_for_commit``); forget those older than ``OWN_NOTIFY_TTL``."""
        now = time.monotonic()
        if len(self._own) > 1000:
            for payload, at in list(self._own.items()):
                if now - at > OWN_NOTIFY_TTL:
                    self._own.pop(payload, None)
        for tenant, revision in group.revisions.items():
            self._own[f"{tenant}:{revision}"] = now

    def wait_for_commit(self, timeout: float) -> bool:
        """Wait for a NOTIFY from any process's commit; reconnects the listener as needed.

        A notification of a revision this store's own group commit wrote is skipped: its
        rows are applied to the cache by the writer's ``on_commit`` right after COMMIT, and
        waking the follower for it would read the tenants back (a query per write) or, when
        it won the race with ``on_commit``, the whole commit from the feed.
        """
        deadline = time.monotonic() + timeout
        with self._listen_lock, self._translated():
            try:
                if self._listener is None or self._listener.closed:
                    self._listener = psycopg.connect(self.dsn, autocommit=True,
                                                     connect_timeout=CONNECT_TIMEOUT)
                    self._listener.execute(f"LISTEN {CHANNEL}")
                    return True  # we may have missed commits while not listening
                while (remaining := deadline - time.monotonic()) > 0:
                    for notify in self._listener.notifies(timeout=remaining, stop_after=1):
                        if self._own.pop(notify.payload, None) is None:
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
            with self._reading() as conn:  # autocommit: VACUUM needs it
                conn.execute("VACUUM ANALYZE confhub_versions")
        return {"method": "vacuum analyze" if full else "autovacuum",
                "size_mb_before": before, "size_mb_after": self.stats()["storage_size_mb"]}

    def close(self) -> None:
        self._stop_groups()
        with self._listen_lock:
            if self._listener is not None:
                self._listener.close()
                self._listener = None
        self._pool.close()


def _first_line(exc: BaseException | str) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _lost_connection(exc: psycopg.OperationalError) -> bool:
    """An error that means the server cannot be reached (not, say, a statement timeout)."""
    if isinstance(exc, psycopg.errors.AdminShutdown | psycopg.errors.CannotConnectNow):
        return True
    sqlstate = getattr(exc, "sqlstate", None)
    return sqlstate is None or str(sqlstate).startswith("08")
