"""How a write transaction of ``SqlStore`` commits: held rows, batches, group commit hooks.

``SqlCommits`` is the half of :class:`~confhub.store.sql.SqlStore` that runs write
transactions (``write``, ``submit``): it locks the tenant, runs the transaction function on a
:class:`~confhub.store.sql_txn.SqlWriteTxn` whose rows are held in a
:class:`~confhub.store.pending.Pending`, and writes them in one batch per table before
COMMIT (``_finish_group``). SQLite runs several callers' transactions in one database
transaction (its group commit); PostgreSQL sends it all in two round trips.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any, TypeVar

from ..errors import NotFound, TenantExists
from .base import AuditRow, VersionRow
from .group import Job
from .pending import UNREAD, Pending
from .sql_txn import (
    INSERT_AUDIT,
    INSERT_VERSION,
    UPSERT_CURRENT,
    V_COLUMNS,
    SqlWriteTxn,
    audit_values,
    current_values,
    version_row,
    version_values,
)

T = TypeVar("T")
logger = logging.getLogger("confhub.store")
PREFETCH_CHUNK = 300  # keys per query (3 parameters each)


class SqlCommits:
    """Write transactions of a SQL store (mixed into ``SqlStore``)."""

    isolates = False  # True where one database transaction carries several write()s

    # provided by SqlStore and the backends
    def q(self, sql: str) -> str:
        raise NotImplementedError

    def _writing(self) -> AbstractContextManager[Any]:
        raise NotImplementedError

    def _lock_tenant_sql(self) -> str:
        raise NotImplementedError

    def _insert_tenant(self, conn: Any, tenant: str) -> None:
        raise NotImplementedError

    def _after_write(self, conn: Any, tenant: str, revision: int) -> None:
        raise NotImplementedError

    def write(self, tenant: str, fn: Callable[[SqlWriteTxn], T], *, create: bool = False,
              keys: Sequence[tuple[str, str, str]] = (),
              on_commit: Callable[[T], object] | None = None) -> T:
        with self._writing() as conn:
            group = Pending()
            result = self._write_in(conn, tenant, fn, create, group)
            self._finish_group(conn, group)
        if on_commit is not None:
            after_commit(on_commit, result)
        return result

    def _write_in(self, conn: Any, tenant: str, fn: Callable[[SqlWriteTxn], T],
                  create: bool, group: Pending,
                  prefetched: dict[tuple[str, str, str], VersionRow | None] | None = None,
                  locked: Any = UNREAD) -> T:
        """Run one write transaction ``fn`` on a connection inside a write transaction,
        holding its rows in ``group`` (see :class:`SqlWriteTxn`); ``locked`` is the tenant's
        locked ``(revision, deleted_at)`` row (None: absent) when the caller read it."""
        known = group.tenants.get(tenant)
        row = known if known is not None and not create else locked
        if row is UNREAD:
            row = conn.execute(self.q(self._lock_tenant_sql()), (tenant,)).fetchone()
        if create:
            if row is not None:
                raise TenantExists(f"tenant {tenant!r} already exists", tenant=tenant)
            previous = 0
        elif row is None or row[1] is not None:
            raise missing_tenant(tenant, deleted=row is not None)
        else:
            group.started.setdefault(tenant, row[0])
            previous = group.revisions.get(tenant, row[0])
        txn = SqlWriteTxn(self, conn, tenant, previous, group,  # type: ignore[arg-type]
                          prefetched)  # (only SqlStore mixes SqlCommits in)
        try:
            if create:
                txn.go_direct()  # the new tenant row goes inside this transaction's SAVEPOINT
                self._insert_tenant(conn, tenant)
            result = fn(txn)
        except BaseException:
            txn.finish(succeeded=False)
            raise
        txn.finish(succeeded=True)
        group.tenants[tenant] = (txn.revision if txn.appended else previous, None)
        if txn.appended:
            group.revisions[tenant] = txn.revision
        if txn.appended or create:
            group.notify[tenant] = txn.revision if txn.appended else previous
        return result

    def _prefetch(self, conn: Any, tenant: str, keys: Sequence[tuple[str, str, str]]
                  ) -> dict[tuple[str, str, str], VersionRow | None]:
        """The current rows of many keys in a few queries (a transaction of 10,000 puts
        would otherwise read them one statement each)."""
        found: dict[tuple[str, str, str], VersionRow | None] = dict.fromkeys(keys)
        for start in range(0, len(keys), PREFETCH_CHUNK):
            chunk = keys[start:start + PREFETCH_CHUNK]
            # the wanted keys drive the join: one primary-key lookup each
            sql = ("WITH wanted (env, namespace, key) AS (VALUES "
                   + ", ".join(["(?, ?, ?)"] * len(chunk)) + ") "
                   f"SELECT {V_COLUMNS}, c.created_at FROM wanted w CROSS JOIN "
                   "confhub_current c JOIN confhub_versions v ON v.tenant = c.tenant "
                   "AND v.env = c.env AND v.namespace = c.namespace AND v.key = c.key "
                   "AND v.version = c.version WHERE c.tenant = ? AND c.env = w.env "
                   "AND c.namespace = w.namespace AND c.key = w.key")
            params = [*(part for address in chunk for part in address), tenant]
            for r in conn.execute(self.q(sql), params):
                found[(r[1], r[2], r[3])] = version_row(r, r[16])
        return found

    def _finish_group(self, conn: Any, group: Pending) -> None:
        """Write what ``group`` holds, move each tenant's revision, announce the commit."""
        self._write_pending(conn, group)
        for tenant, revision in group.revisions.items():
            conn.execute(self.q("UPDATE confhub_tenants SET revision = ? WHERE id = ?"),
                         (revision, tenant))
        for tenant, revision in group.notify.items():
            self._after_write(conn, tenant, revision)

    def _write_pending(self, conn: Any, pending: Pending) -> None:
        """Write held version and audit rows, one batch per table."""
        if pending.versions:
            self._write_versions(conn, pending.versions)
        if pending.audit:
            self._write_audit(conn, pending.audit)
        pending.written()

    def _write_versions(self, conn: Any, rows: Sequence[VersionRow]) -> None:
        """Version rows and their keys' current pointers, in order (a key may have several
        rows here: each of them moves its pointer in turn)."""
        self._executemany(conn, INSERT_VERSION, [version_values(r) for r in rows])
        self._executemany(conn, UPSERT_CURRENT, [current_values(r) for r in rows])

    def _write_audit(self, conn: Any, rows: Sequence[AuditRow]) -> None:
        self._executemany(conn, INSERT_AUDIT, [audit_values(r) for r in rows])

    def _executemany(self, conn: Any, sql: str, params: Sequence[tuple[Any, ...]]) -> None:
        conn.executemany(self.q(sql), params)


def settle(jobs: Sequence[Job], failure: BaseException | None) -> None:
    """Tell a group's jobs how its database transaction ended: on ``failure`` every job
    fails (with its own error if it had one, else the transaction's); after a COMMIT the
    ``on_commit`` callbacks of the jobs that succeeded run, in commit order."""
    for job in jobs:
        if failure is not None:
            job.result, job.error = None, job.error or failure
        elif job.on_commit is not None and job.error is None:
            job.context.run(after_commit, job.on_commit, job.result)


def after_commit(callback: Callable[[T], object], result: T) -> None:
    """Run a write's ``on_commit``: the write is durable, so a failure here is logged and
    its caller still hears of the success."""
    try:
        callback(result)
    except Exception:
        logger.exception("after-commit callback failed")


def missing_tenant(tenant: str, *, deleted: bool) -> NotFound:
    if deleted:
        return NotFound(f"tenant {tenant!r} is deleted (restore it with restore_tenant)",
                        tenant=tenant, deleted=True)
    return NotFound(f"tenant {tenant!r} does not exist", tenant=tenant)
