"""What the store offers for day-two operations: checksums, retention, compaction, checks.

A mixin of :class:`~confhub.store.sql.SqlStore` (the SQL is the same on both backends). The
rules — which versions retention may remove, what a finding means — live in the hub
(``hub/retention.py``, ``hub/integrity.py``); the store only reads and removes what it is told,
under the same tenant write lock every writer takes.

The checksum of a version is the hex SHA-256 of the canonical JSON of the row as stored::

    ["acme", "base", "models", "opus", 3, 17, "put", false, "{\\"max_tokens\\":8192}",
     1732440000000000, "ops", "raise limit", null, null, "req-1", false]

(tenant, env, namespace, key, version, revision, op, deleted, value text, created_at, author,
reason, metadata text, rollback_of, request_id, secret; ``json.dumps`` with ``,``/``:``
separators and non-ASCII kept), so any change to any stored field is found, and the value is
hashed exactly as stored (a secret's ciphertext, never its plain text).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any

from .base import RetentionRow, VersionRow, VersionStub

__all__ = ["Maintenance", "RetentionRow", "VersionStub", "version_checksum"]

BACKFILL_BATCH = 2000


def _not_json(value: object) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


# The encoder ``json.dumps(record, separators=(",", ":"), ensure_ascii=False)`` builds on
# every call, built once (a checksum is computed for every version written; the record is
# flat, so no circular-reference markers): the same text, in a third of the time.
_c_encoder = getattr(json.encoder, "c_make_encoder", None)
_RECORD_CHUNKS = (_c_encoder(None, _not_json, json.encoder.encode_basestring, None, ":", ",",
                             False, False, True) if _c_encoder is not None else None)


def version_checksum(row: VersionRow) -> str:
    """Hex SHA-256 of the row's canonical JSON (see the module docstring)."""
    record = [row.tenant, row.env, row.namespace, row.key, row.version, row.revision, row.op,
              bool(row.deleted), row.value, row.created_at, row.author, row.reason,
              row.metadata, row.rollback_of, row.request_id, bool(row.secret)]
    text = ("".join(_RECORD_CHUNKS(record, 0)) if _RECORD_CHUNKS is not None
            else json.dumps(record, separators=(",", ":"), ensure_ascii=False))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


_VERSION_COLUMNS = (
    "tenant, env, namespace, key, version, revision, op, deleted, value, created_at, author, "
    "reason, metadata, rollback_of, request_id, secret"
)


class Maintenance:
    """Mixin: needs ``_reading()``, ``_writing()``, ``q()``, ``_lock_tenant_sql()``."""

    backend: str

    def _reading(self) -> AbstractContextManager[Any]:
        raise NotImplementedError

    def _writing(self) -> AbstractContextManager[Any]:
        raise NotImplementedError

    def q(self, sql: str) -> str:
        raise NotImplementedError

    def _lock_tenant_sql(self) -> str:
        raise NotImplementedError

    # ------------------------------------------------------------------ checksums

    def backfill_checksums(self) -> int:
        """Compute the checksum of every version that has none (written before schema 4);
        returns how many. Idempotent, in batches, each its own transaction."""
        from .sql_txn import version_row

        done = 0
        while True:
            with self._writing() as conn:
                rows = conn.execute(self.q(
                    f"SELECT {_VERSION_COLUMNS} FROM confhub_versions WHERE checksum IS NULL "
                    "LIMIT ?"), (BACKFILL_BATCH,)).fetchall()
                for raw in rows:
                    row = version_row(raw)
                    conn.execute(self.q(
                        "UPDATE confhub_versions SET checksum = ? WHERE tenant = ? AND env = ? "
                        "AND namespace = ? AND key = ? AND version = ?"),
                        (version_checksum(row), row.tenant, row.env, row.namespace, row.key,
                         row.version))
            done += len(rows)
            if len(rows) < BACKFILL_BATCH:
                return done

    def checksum_mismatches(self, tenant: str) -> Iterator[tuple[VersionRow, str | None]]:
        """Versions of ``tenant`` whose stored checksum is not that of their content, with the
        stored checksum (None: missing). Streams; reads one snapshot."""
        from .sql_txn import version_row

        with self._reading() as conn:
            cursor = conn.execute(self.q(
                f"SELECT {_VERSION_COLUMNS}, checksum FROM confhub_versions WHERE tenant = ? "
                "ORDER BY env, namespace, key, version"), (tenant,))
            for raw in cursor:
                row = version_row(raw)
                if raw[16] != version_checksum(row):
                    yield row, raw[16]

    # ------------------------------------------------------------------ revision continuity

    def missing_revisions(self, tenant: str, after: int, upto: int, limit: int = 100
                          ) -> list[int]:
        """Revisions in ``(after, upto]`` that no version carries (each committed revision
        appended at least one version, so every one of them must be there)."""
        with self._reading() as conn:
            count, = conn.execute(self.q(
                "SELECT COUNT(DISTINCT revision) FROM confhub_versions WHERE tenant = ? "
                "AND revision > ? AND revision <= ?"), (tenant, after, upto)).fetchone()
            if count == upto - after:
                return []
            present = {r for r, in conn.execute(self.q(
                "SELECT DISTINCT revision FROM confhub_versions WHERE tenant = ? "
                "AND revision > ? AND revision <= ?"), (tenant, after, upto))}
        missing = []
        for revision in range(after + 1, upto + 1):
            if revision not in present:
                missing.append(revision)
                if len(missing) >= limit:
                    break
        return missing

    def revisions_beyond(self, tenant: str, upto: int) -> int:
        """How many versions carry a revision above the tenant's own (never legitimate)."""
        with self._reading() as conn:
            count, = conn.execute(self.q(
                "SELECT COUNT(*) FROM confhub_versions WHERE tenant = ? AND revision > ?"),
                (tenant, upto)).fetchone()
        return int(count)

    def stale_current_pointers(self, tenant: str) -> list[tuple[str, str, str, int, int]]:
        """Keys whose current pointer is not their newest version:
        ``(env, namespace, key, pointer, newest)`` (newest 0: the version is missing)."""
        with self._reading() as conn:
            rows = conn.execute(self.q(
                "SELECT c.env, c.namespace, c.key, c.version, COALESCE((SELECT MAX(v.version) "
                "FROM confhub_versions v WHERE v.tenant = c.tenant AND v.env = c.env "
                "AND v.namespace = c.namespace AND v.key = c.key), 0) AS newest "
                "FROM confhub_current c WHERE c.tenant = ?"), (tenant,)).fetchall()
        return [(r[0], r[1], r[2], r[3], r[4]) for r in rows if r[3] != r[4]]

    def integrity_findings(self) -> list[str]:
        """The database engine's own check (SQLite ``PRAGMA integrity_check``); [] when fine
        or when the backend has none (PostgreSQL checks its pages itself)."""
        if self.backend != "sqlite":
            return []
        with self._reading() as conn:
            rows = [r[0] for r in conn.execute("PRAGMA integrity_check")]
        return [] if rows == ["ok"] else rows

    # ------------------------------------------------------------------ retention policies

    def retention_policies(self, tenant: str | None = None) -> list[RetentionRow]:
        sql = ("SELECT tenant, namespace, keep_last, keep_for, updated_at "
               "FROM confhub_retention")
        params: tuple[Any, ...] = ()
        if tenant is not None:
            sql, params = sql + " WHERE tenant = ?", (tenant,)
        with self._reading() as conn:
            rows = conn.execute(self.q(sql + " ORDER BY tenant, namespace"), params).fetchall()
        return [RetentionRow(*r) for r in rows]

    def set_retention(self, row: RetentionRow) -> None:
        """Store (or, with both limits None, remove) a policy. Moves no revision."""
        with self._writing() as conn:
            conn.execute(self.q("DELETE FROM confhub_retention WHERE tenant = ? "
                                "AND namespace = ?"), (row.tenant, row.namespace))
            if row.keep_last is not None or row.keep_for is not None:
                conn.execute(self.q(
                    "INSERT INTO confhub_retention (tenant, namespace, keep_last, keep_for, "
                    "updated_at) VALUES (?, ?, ?, ?, ?)"),
                    (row.tenant, row.namespace, row.keep_last, row.keep_for, row.updated_at))

    # ------------------------------------------------------------------ compaction

    def version_index(self, tenant: str, page: int = 10_000) -> Iterator[VersionStub]:
        """Every version of ``tenant`` without its value, ordered by (env, namespace, key,
        version) — the primary key's order — read in pages of ``page`` rows, each its own
        short read: a caller may write between pages (compaction does), and no read stays
        open long enough to stop SQLite from checkpointing its WAL."""
        after: tuple[str, str, str, int] | None = None
        columns = ("SELECT env, namespace, key, version, revision, created_at, rollback_of, "
                   "deleted FROM confhub_versions WHERE tenant = ?")
        while True:
            with self._reading() as conn:
                if after is None:
                    rows = conn.execute(self.q(
                        f"{columns} ORDER BY env, namespace, key, version LIMIT ?"),
                        (tenant, page)).fetchall()
                else:
                    rows = conn.execute(self.q(
                        f"{columns} AND (env, namespace, key, version) > (?, ?, ?, ?) "
                        "ORDER BY env, namespace, key, version LIMIT ?"),
                        (tenant, *after, page)).fetchall()
            for r in rows:
                yield VersionStub(r[0], r[1], r[2], r[3], r[4], r[5], r[6], bool(r[7]))
            if len(rows) < page:
                return
            last = rows[-1]
            after = (last[0], last[1], last[2], last[3])

    def remove_versions(self, tenant: str,
                        doomed: Sequence[tuple[str, str, str, int, int]]) -> int:
        """Remove these versions — ``(env, namespace, key, version, superseded_at)`` where
        ``superseded_at`` is the revision of the key's next version — in one transaction under
        the tenant's write lock, and move the tenant's ``compacted_revision`` up to the
        largest ``superseded_at`` removed: from that revision on, the state at every revision
        and every change after it are still complete.

        Checked again under the lock, whatever the caller planned: a key's current version is
        never removed, nor a version a remaining version names as its ``rollback_of``.
        Moves no revision; returns how many versions were removed.
        """
        if not doomed:
            return 0
        removed = 0
        horizon = 0
        with self._writing() as conn:
            locked = conn.execute(self.q(self._lock_tenant_sql()), (tenant,)).fetchone()
            if locked is None:
                return 0
            for env, namespace, key, version, superseded_at in doomed:
                gone = conn.execute(self.q(
                    "DELETE FROM confhub_versions WHERE tenant = ? AND env = ? "
                    "AND namespace = ? AND key = ? AND version = ? "
                    "AND version < (SELECT c.version FROM confhub_current c WHERE "
                    "c.tenant = ? AND c.env = ? AND c.namespace = ? AND c.key = ?) "
                    "AND NOT EXISTS (SELECT 1 FROM confhub_versions w WHERE w.tenant = ? "
                    "AND w.env = ? AND w.namespace = ? AND w.key = ? AND w.rollback_of = ?)"),
                    (tenant, env, namespace, key, version, tenant, env, namespace, key,
                     tenant, env, namespace, key, version)).rowcount
                if gone:
                    removed += gone
                    horizon = max(horizon, superseded_at)
            if horizon:
                conn.execute(self.q(
                    "UPDATE confhub_tenants SET compacted_revision = ? WHERE id = ? "
                    "AND compacted_revision < ?"), (horizon, tenant, horizon))
        return removed

    def compacted_revision(self, tenant: str) -> int:
        with self._reading() as conn:
            row = conn.execute(self.q("SELECT compacted_revision FROM confhub_tenants "
                                      "WHERE id = ?"), (tenant,)).fetchone()
        return int(row[0]) if row else 0

    def reclaim_space(self, full: bool = False) -> dict[str, Any]:
        """Give freed pages back to the file system. SQLite: ``PRAGMA incremental_vacuum``
        (databases created by confhub use ``auto_vacuum=INCREMENTAL``), or with ``full`` a
        ``VACUUM`` that also switches older databases to incremental mode (it rewrites the
        file and holds the write lock meanwhile). PostgreSQL: autovacuum makes the space
        reusable; ``full`` runs a plain ``VACUUM ANALYZE`` of the versions table."""
        raise NotImplementedError
