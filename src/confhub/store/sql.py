"""The SQL both backends share.

SQLite (3.35+) and PostgreSQL agree on everything confhub needs — ``ON CONFLICT`` upserts,
``RETURNING``, correlated sub-queries — so the queries live here once and the backends only
supply connections, the write lock and commit notification. Statements are written with ``?``
placeholders; PostgreSQL's driver gets ``%s`` (no statement here contains a literal ``%``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any, TypeVar

from ..errors import AlreadyExists, Gone, NotFound
from ..model import now_micros
from .base import (
    ALL_TENANTS,
    AuditRow,
    DataKeyRow,
    SchemaRow,
    TenantRow,
    TokenRow,
    VersionRow,
)
from .maintenance import Maintenance
from .rollouts import TENANT_TABLES, RolloutSql
from .sql_commit import SqlCommits, missing_tenant
from .sql_txn import (
    AUDIT_COLUMNS,
    FEED_ORDER,
    INSERT_AUDIT,
    SCHEMA_COLUMNS,
    TOKEN_COLUMNS,
    V_COLUMNS,
    VERSION_COLUMNS,
    SqlSchemaTxn,
    audit_values,
    latest_schema,
    schema_row,
    tenant_row,
    token_row,
    version_row,
)

T = TypeVar("T")


class SqlStore(Maintenance, RolloutSql, SqlCommits):
    """Reads and writes in SQL; subclasses provide ``_reading``/``_writing`` connections.
    Write transactions (``write``, ``submit``) are :class:`SqlCommits`'."""

    backend = "sql"
    placeholder = "?"
    _local_leaders: dict[str, threading.Lock]

    def __new__(cls, *args: Any, **kwargs: Any) -> SqlStore:
        store = super().__new__(cls)
        store._local_leaders = {}
        return store

    # ------------------------------------------------------------------ backend hooks

    def _reading(self) -> AbstractContextManager[Any]:
        raise NotImplementedError

    def _writing(self) -> AbstractContextManager[Any]:
        """A connection inside an open transaction holding the database's write lock."""
        raise NotImplementedError

    def _lock_tenant_sql(self) -> str:
        return "SELECT revision, deleted_at FROM confhub_tenants WHERE id = ?"

    def _after_write(self, conn: Any, tenant: str, revision: int) -> None:
        """Hook run inside the transaction after a commit-worthy write (PostgreSQL: NOTIFY)."""

    def q(self, sql: str) -> str:
        return sql if self.placeholder == "?" else sql.replace("?", self.placeholder)

    # ------------------------------------------------------------------ reads

    def tenants(self, include_deleted: bool = False) -> list[TenantRow]:
        where = "" if include_deleted else "WHERE deleted_at IS NULL"
        with self._reading() as conn:
            rows = conn.execute(
                "SELECT id, created_at, deleted_at, revision, compacted_revision "
                f"FROM confhub_tenants {where} ORDER BY id"
            ).fetchall()
        return [tenant_row(r) for r in rows]

    def tenant(self, tenant: str) -> TenantRow | None:
        with self._reading() as conn:
            row = conn.execute(
                self.q("SELECT id, created_at, deleted_at, revision, compacted_revision "
                       "FROM confhub_tenants WHERE id = ?"), (tenant,)
            ).fetchone()
        return tenant_row(row) if row else None

    def _current_rows(self, conn: Any, tenant: str, namespace: str | None,
                      live_only: bool) -> list[VersionRow]:
        sql = (f"SELECT {V_COLUMNS}, c.created_at FROM confhub_current c "
               "JOIN confhub_versions v ON v.tenant = c.tenant AND v.env = c.env "
               "AND v.namespace = c.namespace AND v.key = c.key AND v.version = c.version "
               "WHERE c.tenant = ?")
        params: tuple[Any, ...] = (tenant,)
        if live_only:
            sql += " AND NOT c.deleted"
        if namespace is not None:
            sql += " AND c.namespace = ?"
            params += (namespace,)
        rows = conn.execute(self.q(sql + " ORDER BY c.env, c.namespace, c.key"), params)
        return [version_row(r, r[16]) for r in rows]

    def namespaces(self, tenant: str) -> list[str]:
        with self._reading() as conn:
            rows = conn.execute(self.q("SELECT DISTINCT namespace FROM confhub_current "
                                       "WHERE tenant = ? ORDER BY namespace"), (tenant,))
            return [r[0] for r in rows]

    def current_rows(self, tenant: str, namespace: str | None = None) -> Iterator[VersionRow]:
        with self._reading() as conn:
            rows = self._current_rows(conn, tenant, namespace, live_only=True)
        return iter(rows)

    def version(self, tenant: str, env: str, namespace: str, key: str,
                version: int) -> VersionRow | None:
        with self._reading() as conn:
            row = conn.execute(
                self.q(f"SELECT {VERSION_COLUMNS} FROM confhub_versions WHERE tenant = ? "
                       "AND env = ? AND namespace = ? AND key = ? AND version = ?"),
                (tenant, env, namespace, key, version),
            ).fetchone()
        return version_row(row) if row else None

    def history(self, tenant: str, env: str, namespace: str, key: str, limit: int,
                before: int | None = None) -> list[VersionRow]:
        sql = (f"SELECT {VERSION_COLUMNS} FROM confhub_versions WHERE tenant = ? AND env = ? "
               "AND namespace = ? AND key = ?")
        params: tuple[Any, ...] = (tenant, env, namespace, key)
        if before is not None:
            sql += " AND version < ?"
            params += (before,)
        sql += " ORDER BY version DESC LIMIT ?"
        with self._reading() as conn:
            rows = conn.execute(self.q(sql), params + (limit,)).fetchall()
        return [version_row(r) for r in rows]

    def changes(self, tenant: str, since: int, limit: int) -> list[VersionRow]:
        select = f"SELECT {VERSION_COLUMNS} FROM confhub_versions WHERE tenant = ? "
        with self._reading() as conn:
            rows = [version_row(r) for r in conn.execute(
                self.q(select + f"AND revision > ? {FEED_ORDER} LIMIT ?"), (tenant, since, limit)
            )]
            if len(rows) == limit and rows:
                # Never split a transaction: finish the last revision of the page.
                last = rows[-1].revision
                rows = [r for r in rows if r.revision < last] + [version_row(r) for r in
                        conn.execute(self.q(select + f"AND revision = ? {FEED_ORDER}"),
                                     (tenant, last))]
            # Read after the rows: a compaction that committed before or while they were read
            # shows here, so a page with a hole is never handed out as complete.
            compacted = conn.execute(self.q("SELECT compacted_revision FROM confhub_tenants "
                                            "WHERE id = ?"), (tenant,)).fetchone()
        if compacted is not None and since < compacted[0]:
            raise Gone(f"history before revision {compacted[0]} of tenant {tenant!r} was "
                       "removed by retention; re-list the current state and watch from its "
                       "revision", tenant=tenant, compacted_revision=compacted[0])
        return rows

    def snapshots(self, tenant: str) -> list[tuple[str, int, int]]:
        with self._reading() as conn:
            rows = conn.execute(
                self.q("SELECT label, revision, created_at FROM confhub_snapshots "
                       "WHERE tenant = ? ORDER BY revision, label"), (tenant,)
            ).fetchall()
        return [(r[0], r[1], r[2]) for r in rows]

    def snapshot(self, tenant: str, label: str) -> tuple[str, int, int] | None:
        with self._reading() as conn:
            row = conn.execute(
                self.q("SELECT label, revision, created_at FROM confhub_snapshots "
                       "WHERE tenant = ? AND label = ?"), (tenant, label)
            ).fetchone()
        return (row[0], row[1], row[2]) if row else None

    # ------------------------------------------------------------------ security reads

    def tokens(self) -> list[TokenRow]:
        with self._reading() as conn:
            rows = conn.execute(f"SELECT {TOKEN_COLUMNS} FROM confhub_tokens "
                                "ORDER BY created_at, id").fetchall()
        return [token_row(r) for r in rows]

    def token(self, token_id: str) -> TokenRow | None:
        with self._reading() as conn:
            row = conn.execute(self.q(f"SELECT {TOKEN_COLUMNS} FROM confhub_tokens "
                                      "WHERE id = ?"), (token_id,)).fetchone()
        return token_row(row) if row else None

    def data_keys(self, tenant: str | None = None) -> list[DataKeyRow]:
        sql = "SELECT id, tenant, wrapped, master_id, created_at FROM confhub_data_keys"
        params: tuple[Any, ...] = ()
        if tenant is not None:
            sql, params = sql + " WHERE tenant = ?", (tenant,)
        with self._reading() as conn:
            rows = conn.execute(self.q(sql + " ORDER BY created_at, id"), params).fetchall()
        return [DataKeyRow(*r) for r in rows]

    def data_key(self, key_id: str) -> DataKeyRow | None:
        with self._reading() as conn:
            row = conn.execute(self.q("SELECT id, tenant, wrapped, master_id, created_at "
                                      "FROM confhub_data_keys WHERE id = ?"),
                               (key_id,)).fetchone()
        return DataKeyRow(*row) if row else None

    def audit(self, tenant: str | None, *, after: int = 0, limit: int = 1000,
              action: str | None = None, actor: str | None = None,
              target_prefix: str | None = None, since_at: int | None = None,
              until_at: int | None = None) -> list[AuditRow]:
        sql = f"SELECT {AUDIT_COLUMNS}, id FROM confhub_audit WHERE id > ?"
        params: list[Any] = [after]
        for clause, value in (("tenant = ?", tenant), ("action = ?", action),
                              ("actor = ?", actor), ("at >= ?", since_at),
                              ("at < ?", until_at)):
            if value is not None:
                sql += f" AND {clause}"
                params.append(value)
        if target_prefix is not None:
            # substr, not LIKE: a prefix holding % or _ must match literally
            sql += " AND substr(target, 1, ?) = ?"
            params += [len(target_prefix), target_prefix]
        sql += " ORDER BY id LIMIT ?"
        with self._reading() as conn:
            rows = conn.execute(self.q(sql), (*params, limit)).fetchall()
        return [AuditRow(*r) for r in rows]

    def schema(self, scope: str, namespace: str, version: int | None = None
               ) -> SchemaRow | None:
        with self._reading() as conn:
            return latest_schema(self, conn, scope, namespace, version)

    def schema_history(self, scope: str, namespace: str, limit: int) -> list[SchemaRow]:
        with self._reading() as conn:
            rows = conn.execute(self.q(
                f"SELECT {SCHEMA_COLUMNS} FROM confhub_schemas WHERE scope = ? "
                "AND namespace = ? ORDER BY version DESC LIMIT ?"),
                (scope, namespace, limit)).fetchall()
        return [schema_row(r) for r in rows]

    def schemas(self, scope: str) -> list[SchemaRow]:
        with self._reading() as conn:
            rows = conn.execute(self.q(
                f"SELECT {SCHEMA_COLUMNS} FROM confhub_schemas s WHERE scope = ? AND version = "
                "(SELECT MAX(version) FROM confhub_schemas w WHERE w.scope = s.scope "
                "AND w.namespace = s.namespace) ORDER BY namespace"), (scope,)).fetchall()
        return [schema_row(r) for r in rows]

    def _storage_bytes(self, conn: Any) -> int:
        raise NotImplementedError

    def stats(self) -> dict[str, Any]:
        # substr, not LIKE: no literal % in our SQL; the reserved ".rollouts" namespace
        # (rollout records, see hub/rollouts.py) is not configuration
        live = ("FROM confhub_current c JOIN confhub_tenants t ON t.id = c.tenant "
                "WHERE NOT c.deleted AND t.deleted_at IS NULL "
                "AND substr(c.namespace, 1, 1) <> '.'")
        with self._reading() as conn:
            per_ns = conn.execute(
                f"SELECT c.namespace, COUNT(*) {live} GROUP BY c.namespace ORDER BY c.namespace"
            ).fetchall()
            tenants = conn.execute(
                "SELECT COUNT(*) FROM confhub_tenants WHERE deleted_at IS NULL").fetchone()[0]
            versions = conn.execute("SELECT COUNT(*) FROM confhub_versions").fetchone()[0]
            per_tenant = conn.execute(
                f"SELECT c.tenant, COUNT(*) {live} GROUP BY c.tenant ORDER BY c.tenant"
            ).fetchall()
            versions_per_tenant = conn.execute(
                "SELECT tenant, COUNT(*) FROM confhub_versions GROUP BY tenant ORDER BY tenant"
            ).fetchall()
            size = self._storage_bytes(conn)
        return {
            "total_configs": sum(n for _, n in per_ns),
            "total_tenants": tenants,
            "total_versions": versions,
            "storage_size_mb": round(size / (1024 * 1024), 3),
            "configs_per_namespace": {ns: n for ns, n in per_ns},
            "configs_per_tenant": {t: n for t, n in per_tenant},
            "versions_per_tenant": {t: n for t, n in versions_per_tenant},
        }

    # ------------------------------------------------------------------ writes

    def _insert_tenant(self, conn: Any, tenant: str) -> None:
        conn.execute(
            self.q("INSERT INTO confhub_tenants (id, created_at, deleted_at, revision, "
                   "compacted_revision) VALUES (?, ?, NULL, 0, 0)"), (tenant, now_micros()))

    def create_tenant(self, tenant: str) -> TenantRow:
        self.write(tenant, lambda txn: None, create=True)
        row = self.tenant(tenant)
        assert row is not None
        return row

    def set_tenant_deleted(self, tenant: str, deleted: bool) -> None:
        with self._writing() as conn:
            row = conn.execute(self.q(self._lock_tenant_sql()), (tenant,)).fetchone()
            if row is None:
                raise missing_tenant(tenant, deleted=False)
            if deleted and row[1] is not None:
                raise missing_tenant(tenant, deleted=True)
            if not deleted and row[1] is None:
                raise NotFound(f"tenant {tenant!r} is not deleted; nothing to restore",
                               tenant=tenant)
            conn.execute(self.q("UPDATE confhub_tenants SET deleted_at = ? WHERE id = ?"),
                         (now_micros() if deleted else None, tenant))
            self._after_write(conn, tenant, row[0])

    def purge_tenant(self, tenant: str) -> None:
        with self._writing() as conn:
            row = conn.execute(self.q(self._lock_tenant_sql()), (tenant,)).fetchone()
            if row is None:
                raise missing_tenant(tenant, deleted=False)
            for table in ("confhub_current", "confhub_versions", "confhub_snapshots",
                          "confhub_retention", *TENANT_TABLES):
                conn.execute(self.q(f"DELETE FROM {table} WHERE tenant = ?"), (tenant,))
            # A tenant re-created under the same name must not inherit the old tokens.
            conn.execute(self.q("UPDATE confhub_tokens SET revoked_at = ? WHERE tenant = ? "
                                "AND revoked_at IS NULL"), (now_micros(), tenant))

            conn.execute(self.q("DELETE FROM confhub_schemas WHERE scope = ?"), (tenant,))
            conn.execute(self.q("DELETE FROM confhub_tenants WHERE id = ?"), (tenant,))
            self._after_write(conn, tenant, row[0])

    def add_snapshot(self, tenant: str, label: str) -> tuple[str, int, int]:
        with self._writing() as conn:
            row = conn.execute(self.q(self._lock_tenant_sql()), (tenant,)).fetchone()
            if row is None or row[1] is not None:
                raise missing_tenant(tenant, deleted=row is not None)
            exists = conn.execute(
                self.q("SELECT 1 FROM confhub_snapshots WHERE tenant = ? AND label = ?"),
                (tenant, label)).fetchone()
            if exists:
                raise AlreadyExists(f"snapshot {label!r} already exists in tenant {tenant!r}",
                                    tenant=tenant, label=label)
            created = now_micros()
            conn.execute(
                self.q("INSERT INTO confhub_snapshots (tenant, label, revision, created_at) "
                       "VALUES (?, ?, ?, ?)"), (tenant, label, row[0], created))
        return (label, row[0], created)


    # ------------------------------------------------------------------ security writes

    def add_token(self, row: TokenRow) -> None:
        with self._writing() as conn:
            if conn.execute(self.q("SELECT 1 FROM confhub_tokens WHERE id = ?"),
                            (row.id,)).fetchone():
                raise AlreadyExists(f"token {row.id!r} already exists", token_id=row.id)
            conn.execute(self.q(f"INSERT INTO confhub_tokens ({TOKEN_COLUMNS}) "
                                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
                         (row.id, row.name, row.hash, row.tenant, row.role, row.namespaces,
                          row.created_at, row.expires_at, row.revoked_at, row.created_by))

    def revoke_token(self, token_id: str, at: int) -> TokenRow:
        with self._writing() as conn:
            conn.execute(self.q("UPDATE confhub_tokens SET revoked_at = ? "
                                "WHERE id = ? AND revoked_at IS NULL"), (at, token_id))
            row = conn.execute(self.q(f"SELECT {TOKEN_COLUMNS} FROM confhub_tokens "
                                      "WHERE id = ?"), (token_id,)).fetchone()
        if row is None:
            raise NotFound(f"token {token_id!r} does not exist", token_id=token_id)
        return token_row(row)

    def add_data_key(self, row: DataKeyRow) -> None:
        with self._writing() as conn:
            conn.execute(self.q("INSERT INTO confhub_data_keys (id, tenant, wrapped, master_id, "
                                "created_at) VALUES (?, ?, ?, ?, ?)"),
                         (row.id, row.tenant, row.wrapped, row.master_id, row.created_at))

    def rewrap_data_keys(self, rows: Sequence[DataKeyRow]) -> int:
        changed = 0
        with self._writing() as conn:
            for row in rows:
                changed += conn.execute(
                    self.q("UPDATE confhub_data_keys SET wrapped = ?, master_id = ? "
                           "WHERE id = ?"), (row.wrapped, row.master_id, row.id)).rowcount
        return changed

    def append_audit(self, rows: Sequence[AuditRow]) -> None:
        if not rows:
            return
        with self._writing() as conn:
            for row in rows:
                conn.execute(self.q(INSERT_AUDIT), audit_values(row))

    def write_schema(self, scope: str, fn: Callable[[SqlSchemaTxn], T]) -> T:
        with self._writing() as conn:
            if scope == ALL_TENANTS:
                # Every tenant's write lock (PostgreSQL: row locks in id order, as writers of
                # one tenant take theirs), so no value write slips past the check; and no
                # tenant may be created meanwhile (its first values would not be checked).
                self._lock_tenant_creation(conn)
                conn.execute(self.q(self._lock_all_tenants_sql())).fetchall()
            else:
                row = conn.execute(self.q(self._lock_tenant_sql()), (scope,)).fetchone()
                if row is None or row[1] is not None:
                    raise missing_tenant(scope, deleted=row is not None)
            return fn(SqlSchemaTxn(self, conn, scope))

    def _lock_all_tenants_sql(self) -> str:
        return "SELECT id FROM confhub_tenants ORDER BY id"

    def _lock_tenant_creation(self, conn: Any) -> None:
        """Serialise tenant creation with all-tenants schema changes (SQLite: the database
        write lock already does)."""

