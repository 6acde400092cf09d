"""SQL for staged rollouts (schema 5): the rollouts index, consumers and their reports.

Mixed into :class:`~confhub.store.sql.SqlStore`; both backends share it. Nothing here moves a
tenant revision: rollout transitions do, but they are versions in the feed like any change.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from .base import ConsumerRow, ReportRow

CONSUMER_COLUMNS = "tenant, client_id, labels, first_seen, last_seen, revision"
REPORT_COLUMNS = "tenant, rollout_id, client_id, status, step, at, reason"
TENANT_TABLES = ("confhub_rollouts", "confhub_consumers", "confhub_rollout_reports")


class RolloutSql:
    """Rollout, consumer and report queries over ``_reading``/``_writing`` connections."""

    _local_leaders: dict[str, threading.Lock]

    def q(self, sql: str) -> str:
        raise NotImplementedError

    def _reading(self) -> AbstractContextManager[Any]:
        raise NotImplementedError

    def _writing(self) -> AbstractContextManager[Any]:
        raise NotImplementedError

    # ------------------------------------------------------------------ reads

    def rollout_index(self, states: Sequence[str] | None = None
                      ) -> list[tuple[str, str, str]]:
        sql = "SELECT tenant, id, state FROM confhub_rollouts"
        params: tuple[Any, ...] = ()
        if states is not None:
            if not states:
                return []
            sql += f" WHERE state IN ({', '.join('?' * len(states))})"
            params = tuple(states)
        with self._reading() as conn:
            rows = conn.execute(self.q(sql + " ORDER BY tenant, id"), params).fetchall()
        return [(r[0], r[1], r[2]) for r in rows]

    def consumers(self, tenant: str, *, seen_since: int | None = None) -> list[ConsumerRow]:
        sql = f"SELECT {CONSUMER_COLUMNS} FROM confhub_consumers WHERE tenant = ?"
        params: tuple[Any, ...] = (tenant,)
        if seen_since is not None:
            sql, params = sql + " AND last_seen >= ?", params + (seen_since,)
        with self._reading() as conn:
            rows = conn.execute(self.q(sql + " ORDER BY client_id"), params).fetchall()
        return [ConsumerRow(*r) for r in rows]

    def consumer(self, tenant: str, client_id: str) -> ConsumerRow | None:
        with self._reading() as conn:
            row = conn.execute(self.q(f"SELECT {CONSUMER_COLUMNS} FROM confhub_consumers "
                                      "WHERE tenant = ? AND client_id = ?"),
                               (tenant, client_id)).fetchone()
        return ConsumerRow(*row) if row else None

    def reports(self, tenant: str, *, rollout_id: str | None = None,
                client_id: str | None = None) -> list[ReportRow]:
        sql = f"SELECT {REPORT_COLUMNS} FROM confhub_rollout_reports WHERE tenant = ?"
        params: tuple[Any, ...] = (tenant,)
        for clause, value in (("rollout_id = ?", rollout_id), ("client_id = ?", client_id)):
            if value is not None:
                sql, params = f"{sql} AND {clause}", params + (value,)
        with self._reading() as conn:
            rows = conn.execute(self.q(sql + " ORDER BY at DESC, client_id"), params).fetchall()
        return [ReportRow(*r) for r in rows]

    # ------------------------------------------------------------------ writes

    def touch_consumers(self, rows: Sequence[ConsumerRow]) -> None:
        if not rows:
            return
        with self._writing() as conn:
            for row in rows:
                conn.execute(self.q(
                    f"INSERT INTO confhub_consumers ({CONSUMER_COLUMNS}) "
                    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (tenant, client_id) DO UPDATE SET "
                    "labels = excluded.labels, last_seen = CASE WHEN excluded.last_seen > "
                    "confhub_consumers.last_seen THEN excluded.last_seen ELSE "
                    "confhub_consumers.last_seen END, revision = CASE WHEN excluded.revision > "
                    "confhub_consumers.revision THEN excluded.revision ELSE "
                    "confhub_consumers.revision END"),
                    (row.tenant, row.client_id, row.labels, row.first_seen, row.last_seen,
                     row.revision))

    def add_report(self, row: ReportRow) -> None:
        with self._writing() as conn:
            conn.execute(self.q(
                f"INSERT INTO confhub_rollout_reports ({REPORT_COLUMNS}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (tenant, rollout_id, client_id) "
                "DO UPDATE SET status = excluded.status, step = excluded.step, "
                "at = excluded.at, reason = excluded.reason"),
                (row.tenant, row.rollout_id, row.client_id, row.status, row.step, row.at,
                 row.reason))

    @contextmanager
    def leading(self, name: str) -> Iterator[bool]:
        """SQLite: one leader per process (a file has one writer at a time anyway, and every
        transition is a compare-and-set on the rollout's version, so two processes on one
        file never both apply one)."""
        lock = self._local_leaders.setdefault(name, threading.Lock())
        got = lock.acquire(blocking=False)
        try:
            yield got
        finally:
            if got:
                lock.release()


def index_rollout(store: Any, conn: Any, tenant: str, rollout_id: str, state: str,
                  now: int) -> None:
    conn.execute(store.q(
        "INSERT INTO confhub_rollouts (tenant, id, state, updated_at) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (tenant, id) DO UPDATE SET state = excluded.state, "
        "updated_at = excluded.updated_at"), (tenant, rollout_id, state, now))
