"""The SQL rows and transactions both backends share: how a row reads back as a record, and
the ``WriteTxn`` / ``SchemaTxn`` a write runs in (``store/base.py`` documents both Protocols).

Split from ``store/sql.py`` (the store's reads and writes), which opens the transactions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import AlreadyExists
from ..model import now_micros
from .base import ALL_TENANTS, AuditRow, SchemaRow, TenantRow, TokenRow, VersionRow
from .maintenance import version_checksum
from .pending import UNREAD, Pending, latest
from .rollouts import index_rollout

if TYPE_CHECKING:
    from .sql import SqlStore

VERSION_COLUMNS = (
    "tenant, env, namespace, key, version, revision, op, deleted, value, created_at, author, "
    "reason, metadata, rollback_of, request_id, secret"
)
# VERSION_COLUMNS qualified by the alias ``v``, for joins
V_COLUMNS = ", ".join(f"v.{c.strip()}" for c in VERSION_COLUMNS.split(","))
FEED_ORDER = "ORDER BY revision, env, namespace, key, version"


def version_row(row: Any, key_created_at: int | None = None) -> VersionRow:
    return VersionRow(
        tenant=row[0], env=row[1], namespace=row[2], key=row[3], version=row[4],
        revision=row[5], op=row[6], deleted=bool(row[7]), value=row[8], created_at=row[9],
        author=row[10], reason=row[11], metadata=row[12], rollback_of=row[13],
        request_id=row[14], secret=bool(row[15]), key_created_at=key_created_at,
    )


TOKEN_COLUMNS = ("id, name, hash, tenant, role, namespaces, created_at, expires_at, revoked_at, "
                 "created_by")
AUDIT_COLUMNS = "at, action, actor, tenant, target, request_id, client, reason, details"


def token_row(row: Any) -> TokenRow:
    return TokenRow(*row)


def audit_values(row: AuditRow) -> tuple[Any, ...]:
    return (row.at, row.action, row.actor, row.tenant, row.target, row.request_id, row.client,
            row.reason, row.details)


INSERT_AUDIT = f"INSERT INTO confhub_audit ({AUDIT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"

SCHEMA_COLUMNS = ("scope, namespace, version, document, deleted, created_at, author, reason, "
                  "rollback_of")


def schema_row(row: Any) -> SchemaRow:
    return SchemaRow(scope=row[0], namespace=row[1], version=row[2], document=row[3],
                     deleted=bool(row[4]), created_at=row[5], author=row[6], reason=row[7],
                     rollback_of=row[8])


def latest_schema(store: SqlStore, conn: Any, scope: str, namespace: str,
                   version: int | None = None) -> SchemaRow | None:
    sql = f"SELECT {SCHEMA_COLUMNS} FROM confhub_schemas WHERE scope = ? AND namespace = ?"
    params: tuple[Any, ...] = (scope, namespace)
    if version is not None:
        sql += " AND version = ?"
        params += (version,)
    row = conn.execute(store.q(sql + " ORDER BY version DESC LIMIT 1"), params).fetchone()
    return schema_row(row) if row else None


def tenant_row(row: Any) -> TenantRow:
    return TenantRow(id=row[0], created_at=row[1], deleted_at=row[2], revision=row[3],
                     compacted_revision=row[4])


class SqlWriteTxn:
    """A :class:`~confhub.store.base.WriteTxn` over an open SQL transaction.

    Appended rows are held (see :mod:`confhub.store.pending`) and written by the store in one
    batch per table before COMMIT; ``group`` holds those of the transactions committed before
    this one in the same database transaction (SQLite's group commit). A read that must see
    everything in the database (``current_rows``, ``state_at``, ``changes_since``) first
    writes what is held and from then on this transaction writes directly, inside a SAVEPOINT
    where the store runs several transactions in one (``store.isolates``).
    """

    def __init__(self, store: SqlStore, conn: Any, tenant: str, previous_revision: int,
                 group: Pending | None = None,
                 prefetched: dict[tuple[str, str, str], VersionRow | None] | None = None
                 ) -> None:
        self._store = store
        self._conn = conn
        self.tenant = tenant
        self.previous_revision = previous_revision
        self.revision = previous_revision + 1
        self.now = now_micros()
        self.appended = 0
        self._group = group if group is not None else Pending()
        self._mine = Pending()
        self._prefetched = prefetched or {}
        self.direct = False  # rows go straight to the database
        self.savepoint = False  # this transaction opened SAVEPOINT job

    def _one(self, sql: str, params: tuple[Any, ...]) -> Any:
        return self._conn.execute(self._store.q(sql), params).fetchone()

    def go_direct(self) -> None:
        """Write everything held (earlier transactions', then ours) and write directly from
        now on; our own writes go inside a SAVEPOINT when the store groups transactions."""
        if self.direct:
            return
        self._store._write_pending(self._conn, self._group)
        # What the group prefetched (PostgreSQL: for all its transactions, in round trip 1)
        # is older than the rows just written: from now on every transaction of the group
        # reads the database itself, or it would build a version on a stale one.
        self._prefetched.clear()
        if self._store.isolates:
            if self._group.implicit:  # BEGIN keeps what ran so far in the block it opens
                self._conn.execute("BEGIN")
                self._group.implicit = False
            self._conn.execute("SAVEPOINT job")
            self.savepoint = True
        self._store._write_pending(self._conn, self._mine)
        self.direct = True

    def finish(self, succeeded: bool) -> None:
        """Hand our held rows to the group (or drop them), close our SAVEPOINT if any."""
        if self.savepoint:
            if not succeeded:
                self._conn.execute("ROLLBACK TO job")
            self._conn.execute("RELEASE job")
        elif succeeded and not self.direct:
            self._group.merge(self._mine)

    def _read_current(self, env: str, namespace: str, key: str) -> VersionRow | None:
        row = self._one(
            f"SELECT {V_COLUMNS}, c.created_at FROM confhub_current c JOIN confhub_versions v "
            "ON v.tenant = c.tenant AND v.env = c.env AND v.namespace = c.namespace "
            "AND v.key = c.key AND v.version = c.version "
            "WHERE c.tenant = ? AND c.env = ? AND c.namespace = ? AND c.key = ?",
            (self.tenant, env, namespace, key),
        )
        return version_row(row, row[16]) if row else None

    def current(self, env: str, namespace: str, key: str) -> VersionRow | None:
        if self.direct:
            return self._read_current(env, namespace, key)
        # (Pending's dicts read directly: this runs for every op of a 10,000-key bulk load.)
        address = (self.tenant, env, namespace, key)
        group, mine = self._group, self._mine
        base: Any = group._base.get(address, UNREAD)
        if base is UNREAD:
            base = mine._base.get(address, UNREAD)
            if base is UNREAD:
                base = self._prefetched.get((env, namespace, key), UNREAD)
                if base is UNREAD:
                    base = self._read_current(env, namespace, key)
                mine._base[address] = base
        held_before = group._by_key.get(address)
        held_mine = mine._by_key.get(address)
        if held_before is None and held_mine is None:
            return base  # type: ignore[no-any-return]
        return latest(base, [*(held_before or ()), *(held_mine or ())])

    def version(self, env: str, namespace: str, key: str, version: int) -> VersionRow | None:
        if not self.direct:
            address = (self.tenant, env, namespace, key)
            found = self._mine.version(address, version) or self._group.version(address, version)
            if found is not None:
                return found
        row = self._one(
            f"SELECT {VERSION_COLUMNS} FROM confhub_versions "
            "WHERE tenant = ? AND env = ? AND namespace = ? AND key = ? AND version = ?",
            (self.tenant, env, namespace, key, version),
        )
        return version_row(row) if row else None

    def current_rows(self, namespace: str | None = None) -> list[VersionRow]:
        self.go_direct()
        return self._store._current_rows(self._conn, self.tenant, namespace, live_only=False)

    def state_at(self, revision: int, namespace: str | None = None) -> list[VersionRow]:
        self.go_direct()
        sql = (
            f"SELECT {VERSION_COLUMNS} FROM confhub_versions v WHERE v.tenant = ? "
            "AND v.revision <= ? {ns} AND v.version = (SELECT MAX(w.version) FROM "
            "confhub_versions w WHERE w.tenant = v.tenant AND w.env = v.env "
            "AND w.namespace = v.namespace AND w.key = v.key AND w.revision <= ?) "
            "ORDER BY env, namespace, key"
        )
        params: tuple[Any, ...]
        if namespace is None:
            sql, params = sql.format(ns=""), (self.tenant, revision, revision)
        else:
            sql = sql.format(ns="AND v.namespace = ?")
            params = (self.tenant, revision, namespace, revision)
        return [version_row(r) for r in self._conn.execute(self._store.q(sql), params)]

    def append(self, row: VersionRow) -> None:
        self.appended += 1
        self._group.touched.add((row.tenant, row.namespace))
        if self.direct:
            self._store._write_versions(self._conn, [row])
        else:
            self._mine.append(row)

    def unchanged_since(self, revision: int, namespace: str) -> bool:
        return (self._group.started.get(self.tenant) == revision
                and (self.tenant, namespace) not in self._group.touched)

    def append_audit(self, row: AuditRow) -> None:
        if self.direct:
            self._store._write_audit(self._conn, [row])
        else:
            self._mine.audit.append(row)

    def layers(self, namespace: str, key: str) -> list[VersionRow]:
        rows = self._conn.execute(self._store.q(
            f"SELECT {V_COLUMNS}, c.created_at FROM confhub_current c JOIN confhub_versions v "
            "ON v.tenant = c.tenant AND v.env = c.env AND v.namespace = c.namespace "
            "AND v.key = c.key AND v.version = c.version "
            "WHERE c.tenant = ? AND c.namespace = ? AND c.key = ? ORDER BY c.env"),
            (self.tenant, namespace, key))
        found = {r[1]: version_row(r, r[16]) for r in rows}
        if not self.direct:
            for env in (self._group.envs(self.tenant, namespace, key)
                        | self._mine.envs(self.tenant, namespace, key)):
                self._mine.remember((self.tenant, env, namespace, key), found.get(env))
                held = self.current(env, namespace, key)
                if held is not None:
                    found[env] = held
        return [found[env] for env in sorted(found)]

    def schema(self, scope: str, namespace: str) -> SchemaRow | None:
        return latest_schema(self._store, self._conn, scope, namespace)

    def schemas_in_force(self, namespace: str) -> list[SchemaRow]:
        # Schema writes take the tenant's write lock, which this commit holds until COMMIT.
        found: list[SchemaRow] | None = self._group.schemas.get((self.tenant, namespace))
        if found is None:
            found = self._group.schemas[(self.tenant, namespace)] = [
                schema_row(r) for r in self._conn.execute(self._store.q(SCHEMAS_IN_FORCE),
                                                          (namespace, self.tenant, ALL_TENANTS))]
        return found

    def index_rollout(self, rollout_id: str, state: str) -> None:
        self.go_direct()  # inside this transaction's savepoint when transactions are grouped
        index_rollout(self._store, self._conn, self.tenant, rollout_id, state, self.now)

    def commit_as(self, revision: int) -> None:
        if self.previous_revision != 0 or revision < 1:
            raise ValueError(f"cannot commit tenant {self.tenant!r} as revision {revision}: "
                             f"only a tenant never written (it is at {self.previous_revision}) "
                             "takes its revisions from an import")
        self.revision = revision

    def add_snapshot(self, label: str, revision: int, created_at: int) -> None:
        if self._one("SELECT 1 FROM confhub_snapshots WHERE tenant = ? AND label = ?",
                     (self.tenant, label)):
            raise AlreadyExists(f"snapshot {label!r} already exists in tenant {self.tenant!r}",
                                tenant=self.tenant, label=label)
        self._conn.execute(
            self._store.q("INSERT INTO confhub_snapshots (tenant, label, revision, created_at) "
                          "VALUES (?, ?, ?, ?)"), (self.tenant, label, revision, created_at))

    def changes_since(self, since: int) -> list[VersionRow]:
        self.go_direct()
        rows = self._conn.execute(
            self._store.q(f"SELECT {VERSION_COLUMNS} FROM confhub_versions "
                          f"WHERE tenant = ? AND revision > ? {FEED_ORDER}"),
            (self.tenant, since),
        )
        return [version_row(r) for r in rows]


SCHEMAS_IN_FORCE = (
    f"SELECT {SCHEMA_COLUMNS} FROM confhub_schemas s WHERE namespace = ? "
    "AND scope IN (?, ?) AND version = (SELECT MAX(version) FROM confhub_schemas w "
    "WHERE w.scope = s.scope AND w.namespace = s.namespace)")
INSERT_VERSION = (f"INSERT INTO confhub_versions ({VERSION_COLUMNS}, checksum) "
                  "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
# A key re-created after a tombstone starts a new incarnation: its created_at resets.
UPSERT_CURRENT = (
    "INSERT INTO confhub_current (tenant, env, namespace, key, version, deleted, created_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (tenant, env, namespace, key) DO UPDATE SET "
    "version = excluded.version, deleted = excluded.deleted, created_at = CASE "
    "WHEN confhub_current.deleted THEN excluded.created_at "
    "ELSE confhub_current.created_at END")


def version_values(row: VersionRow) -> tuple[Any, ...]:
    """The parameters of ``INSERT_VERSION``: the row and its checksum (issue 13)."""
    return (row.tenant, row.env, row.namespace, row.key, row.version, row.revision, row.op,
            row.deleted, row.value, row.created_at, row.author, row.reason, row.metadata,
            row.rollback_of, row.request_id, row.secret, version_checksum(row))


def current_values(row: VersionRow) -> tuple[Any, ...]:
    return (row.tenant, row.env, row.namespace, row.key, row.version, row.deleted,
            row.created_at)


class SqlSchemaTxn:
    """A :class:`~confhub.store.base.SchemaTxn` over an open SQL transaction."""

    def __init__(self, store: SqlStore, conn: Any, scope: str) -> None:
        self._store = store
        self._conn = conn
        self.scope = scope
        self.now = now_micros()

    def schema(self, scope: str, namespace: str) -> SchemaRow | None:
        return latest_schema(self._store, self._conn, scope, namespace)

    def live_rows(self, namespace: str) -> list[VersionRow]:
        if self.scope != ALL_TENANTS:
            return self._store._current_rows(self._conn, self.scope, namespace, live_only=True)
        rows = self._conn.execute(self._store.q(
            f"SELECT {V_COLUMNS}, c.created_at FROM confhub_current c "
            "JOIN confhub_versions v ON v.tenant = c.tenant AND v.env = c.env "
            "AND v.namespace = c.namespace AND v.key = c.key AND v.version = c.version "
            "JOIN confhub_tenants t ON t.id = c.tenant "
            "WHERE c.namespace = ? AND NOT c.deleted AND t.deleted_at IS NULL "
            "ORDER BY c.tenant, c.env, c.key"), (namespace,))
        return [version_row(r, r[16]) for r in rows]

    def append_schema(self, row: SchemaRow) -> None:
        self._conn.execute(
            self._store.q(f"INSERT INTO confhub_schemas ({SCHEMA_COLUMNS}) "
                          "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"),
            (row.scope, row.namespace, row.version, row.document, row.deleted, row.created_at,
             row.author, row.reason, row.rollback_of))
