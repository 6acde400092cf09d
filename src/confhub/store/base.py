"""The storage seam: what the service layer (``confhub.hub``) may ask of a backend.

Modelled on etcd's mvcc ``kv.go``: reads are split from writes, and each method says what it
does to the tenant revision and what it raises.

The data model every backend keeps::

    tenants   id, created_at, deleted_at, revision, compacted_revision
    versions  (tenant, env, namespace, key, version) -> revision, op, deleted, value, author,
              reason, metadata, rollback_of, request_id, secret, created_at
    current   (tenant, env, namespace, key) -> version, deleted, created_at
              (the latest version, tombstones too)
    snapshots (tenant, label) -> revision, created_at
    tokens    id -> name, hash (SHA-256 of the secret part), tenant, role, namespaces, expiry,
              revocation (schema 3)
    data_keys id -> tenant, wrapped (AES key wrapped by a master key), master_id (schema 3)
    audit     id (grows) -> time, actor, tenant, action, target, request id, client, reason,
              details; append-only (schema 3)

    schemas   (scope, namespace, version) -> document, deleted, created_at, author, reason,
              rollback_of   (scope: a tenant id, or "*" for every tenant; latest version rules)

    rollouts  (tenant, id) -> state, updated_at: an index of rollouts (schema 5); the rollout
              itself is a versioned document in the tenant's reserved namespace ``.rollouts``
    consumers (tenant, client_id) -> labels, first_seen, last_seen, revision (schema 5)
    reports   (tenant, rollout_id, client_id) -> status, reason, step, at: the latest (schema 5)

Worked example of a key's life (tenant revision on the left)::

    rev 1  put    models/a  -> version 1            current(a) = 1
    rev 2  put    models/a  -> version 2            current(a) = 2
    rev 3  delete models/a  -> version 3 tombstone  current(a) = 3 (deleted: get raises NotFound)
    rev 4  put    models/a  -> version 4            current(a) = 4 (history continues)
    rev 5  txn: put models/b v1 + patch models/a v5 -> both carry revision 5

The change feed is ``versions`` ordered by ``(revision, env, namespace, key, version)``:
"everything after revision R" is one indexed range scan. Revisions of a tenant are committed in
order (writers of one tenant are serialised), so a reader never sees R+1 before R.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol, TypeVar

from .rows import (
    AuditRow,
    ConsumerRow,
    DataKeyRow,
    ReportRow,
    RetentionRow,
    SchemaRow,
    TenantRow,
    TokenRow,
    VersionRow,
    VersionStub,
)

__all__ = [
    "ALL_TENANTS", "AuditRow", "ConsumerRow", "DataKeyRow", "ReportRow", "RetentionRow",
    "SchemaRow", "SchemaTxn", "Store", "StoreMaintenance", "StoreReader", "StoreWriter",
    "TenantRow", "TokenRow", "VersionRow", "VersionStub", "WriteTxn",
]

T = TypeVar("T")

ALL_TENANTS = "*"  # the scope of a schema that applies to every tenant (not a valid tenant name)


class WriteTxn(Protocol):
    """One open write transaction on one tenant, holding that tenant's write lock.

    ``revision`` is the revision this transaction commits as (``previous_revision + 1``);
    nothing is visible to readers until the function given to :meth:`StoreWriter.write` returns.
    """

    tenant: str
    revision: int
    previous_revision: int
    now: int

    def current(self, env: str, namespace: str, key: str) -> VersionRow | None:
        """The key's latest version (tombstones included), None if it never existed."""

    def version(self, env: str, namespace: str, key: str, version: int) -> VersionRow | None:
        """One version of the key, None if there is no such version."""

    def current_rows(self, namespace: str | None = None) -> list[VersionRow]:
        """Latest version of every key (tombstones included), as seen inside the transaction."""

    def state_at(self, revision: int, namespace: str | None = None) -> list[VersionRow]:
        """For every key, its latest version with ``revision <= revision`` (tombstones too)."""

    def append(self, row: VersionRow) -> None:
        """Add a version; its ``version`` must be the key's current version + 1."""

    def changes_since(self, since: int) -> list[VersionRow]:
        """Committed changes after ``since`` (for keeping a cache exact while locked)."""

    def unchanged_since(self, revision: int, namespace: str) -> bool:
        """Nothing but this commit's earlier transactions moved the tenant since
        ``revision``, and none of them wrote ``namespace`` (False: cannot tell)."""

    def append_audit(self, row: AuditRow) -> None:
        """Record an audit row in this transaction (kept iff the transaction commits);
        does not move the revision."""

    def layers(self, namespace: str, key: str) -> list[VersionRow]:
        """The key's latest version in every env (tombstones included), sorted by env."""

    def schema(self, scope: str, namespace: str) -> SchemaRow | None:
        """The latest schema version of ``namespace`` in ``scope`` (a tenant or ALL_TENANTS),
        tombstones included; None if it never had one. Sees schema writes committed before this
        transaction took its lock."""

    def schemas_in_force(self, namespace: str) -> list[SchemaRow]:
        """In one query, the latest schema version of ``namespace`` in this tenant's scope and
        in ALL_TENANTS (each absent when it never had one; tombstones included)."""

    def index_rollout(self, rollout_id: str, state: str) -> None:
        """Index the rollout's state (kept iff the transaction commits); moves no revision."""

    def commit_as(self, revision: int) -> None:
        """Commit as ``revision`` instead of ``previous_revision + 1``, so the rows appended
        may carry any revision in ``1..revision``. Only for a tenant that has never been
        written (``previous_revision == 0``): an import keeping its source's revisions."""

    def add_snapshot(self, label: str, revision: int, created_at: int) -> None:
        """Label ``revision`` in this transaction (kept iff it commits); AlreadyExists if the
        label is taken. Does not move the revision."""


class SchemaTxn(Protocol):
    """One open schema write on ``scope``, holding the write lock of every tenant it governs
    (the tenant's, or all tenants' for ALL_TENANTS), so no value write interleaves with the
    check of existing values. Never moves a tenant revision."""

    scope: str
    now: int

    def schema(self, scope: str, namespace: str) -> SchemaRow | None:
        """Latest schema version of ``namespace`` in any ``scope`` (tombstones included)."""

    def live_rows(self, namespace: str) -> list[VersionRow]:
        """Latest live version of every key of ``namespace`` in every env, of the scope's
        tenant (or, for ALL_TENANTS, of every tenant not soft-deleted)."""

    def append_schema(self, row: SchemaRow) -> None:
        """Add a version; its ``version`` must be the current one + 1 (1 for the first)."""


class StoreReader(Protocol):
    backend: str

    def ping(self) -> float:
        """Round-trip to storage; returns seconds taken. Raises Unavailable."""

    def tenants(self, include_deleted: bool = False) -> list[TenantRow]:
        """All tenants sorted by id."""

    def tenant(self, tenant: str) -> TenantRow | None:
        """One tenant (soft-deleted ones too), None if absent."""

    def namespaces(self, tenant: str) -> list[str]:
        """Namespaces holding at least one key (tombstones too), sorted."""

    def current_rows(self, tenant: str, namespace: str | None = None
                     ) -> Iterator[VersionRow]:
        """Latest live (non-tombstone) version of every key (of ``namespace`` when given),
        with ``key_created_at``."""

    def version(self, tenant: str, env: str, namespace: str, key: str,
                version: int) -> VersionRow | None:
        """One version, None if absent."""

    def history(self, tenant: str, env: str, namespace: str, key: str, limit: int,
                before: int | None = None) -> list[VersionRow]:
        """Versions newest first, those below ``before`` when given."""

    def changes(self, tenant: str, since: int, limit: int) -> list[VersionRow]:
        """Changes with ``revision > since`` in feed order, never splitting a revision: the page
        ends at a revision boundary even if that means more than ``limit`` rows."""

    def snapshots(self, tenant: str) -> list[tuple[str, int, int]]:
        """``(label, revision, created_at)`` sorted by revision."""

    def snapshot(self, tenant: str, label: str) -> tuple[str, int, int] | None: ...

    def stats(self) -> dict[str, Any]:
        """total_configs, total_tenants, total_versions, storage_size_mb, configs_per_namespace."""

    def tokens(self) -> list[TokenRow]:
        """Every token (revoked and expired ones too), sorted by creation time."""

    def token(self, token_id: str) -> TokenRow | None:
        """One token by id, None if absent."""

    def data_keys(self, tenant: str | None = None) -> list[DataKeyRow]:
        """Data keys (of one tenant, or all), oldest first."""

    def data_key(self, key_id: str) -> DataKeyRow | None: ...

    def audit(self, tenant: str | None, *, after: int = 0, limit: int = 1000,
              action: str | None = None, actor: str | None = None,
              target_prefix: str | None = None, since_at: int | None = None,
              until_at: int | None = None) -> list[AuditRow]:
        """Audit rows with ``id > after`` in id order (of ``tenant``; None: every tenant)."""

    def schema(self, scope: str, namespace: str, version: int | None = None
               ) -> SchemaRow | None:
        """The latest (or a given) schema version of ``namespace`` in ``scope``, tombstones
        included; None if absent."""

    def schema_history(self, scope: str, namespace: str, limit: int) -> list[SchemaRow]:
        """Schema versions newest first."""

    def schemas(self, scope: str) -> list[SchemaRow]:
        """The latest version of every namespace's schema in ``scope`` (tombstones included),
        sorted by namespace."""

    def rollout_index(self, states: Sequence[str] | None = None
                      ) -> list[tuple[str, str, str]]:
        """``(tenant, rollout_id, state)`` of indexed rollouts (in ``states`` when given),
        sorted by tenant and id."""

    def consumers(self, tenant: str, *, seen_since: int | None = None) -> list[ConsumerRow]:
        """Consumers of ``tenant`` (last seen at or after ``seen_since``), by client id."""

    def consumer(self, tenant: str, client_id: str) -> ConsumerRow | None: ...

    def reports(self, tenant: str, *, rollout_id: str | None = None,
                client_id: str | None = None) -> list[ReportRow]:
        """Latest reports, newest first (of one rollout and/or one consumer when given)."""

    def wait_for_commit(self, timeout: float) -> bool:
        """Block up to ``timeout`` seconds for a commit by any process; True if one may have
        happened (false positives are fine, false negatives are bounded by ``timeout``)."""


class StoreWriter(Protocol):
    def write(self, tenant: str, fn: Callable[[WriteTxn], T], *, create: bool = False,
              keys: Sequence[tuple[str, str, str]] = (),
              on_commit: Callable[[T], object] | None = None) -> T:
        """Run ``fn`` in one atomic transaction on ``tenant`` and commit iff it returns.

        Moves the tenant revision by exactly one if ``fn`` appended at least one version, and not
        at all otherwise. With ``create=True`` the tenant is created in the same transaction
        (TenantExists if it exists). Raises NotFound for a missing or soft-deleted tenant,
        Unavailable when storage is unreachable, and whatever ``fn`` raises (after rolling back).

        ``keys`` (a hint) names the ``(env, namespace, key)`` whose current rows ``fn`` will read,
        so the store may read them up front. ``on_commit(result)`` runs once the commit is durable
        and before ``write`` returns; callbacks of one tenant run in revision order (a store that
        commits several callers' transactions at once runs them in order from one thread). An
        exception it raises is logged, not raised: the write is committed.
        """

    def submit(self, tenant: str, fn: Callable[[WriteTxn], T], *,
               callback: Callable[[T | None, BaseException | None], object],
               create: bool = False, keys: Sequence[tuple[str, str, str]] = (),
               on_commit: Callable[[T], object] | None = None) -> None:
        """:meth:`write` without waiting for it (for an event loop): returns at once; later,
        on a store thread, ``on_commit(result)`` and then ``callback(result, None)`` once the
        commit is durable, or ``callback(None, error)`` with what ``write`` would raise. ``fn``
        runs in the caller's ``contextvars`` context."""

    def create_tenant(self, tenant: str) -> TenantRow:
        """Create an empty tenant at revision 0. Raises TenantExists."""

    def set_tenant_deleted(self, tenant: str, deleted: bool) -> None:
        """Soft delete or restore. Raises NotFound."""

    def purge_tenant(self, tenant: str) -> None:
        """Remove the tenant, all of its history and its own schemas. Raises NotFound."""

    def add_snapshot(self, tenant: str, label: str) -> tuple[str, int, int]:
        """Label the tenant's current revision. Raises AlreadyExists, NotFound."""

    def write_schema(self, scope: str, fn: Callable[[SchemaTxn], T]) -> T:
        """Run ``fn`` in one atomic transaction holding the locks of ``scope`` (see SchemaTxn)
        and commit iff it returns. Moves no revision. Raises NotFound for a missing or
        soft-deleted tenant scope, Unavailable, and whatever ``fn`` raises (after rollback)."""


    def add_token(self, row: TokenRow) -> None:
        """Store a new token. Raises AlreadyExists if the id is taken."""

    def revoke_token(self, token_id: str, at: int) -> TokenRow:
        """Mark a token revoked (idempotent: the first time is kept). Raises NotFound."""

    def add_data_key(self, row: DataKeyRow) -> None:
        """Store a new wrapped data key."""

    def rewrap_data_keys(self, rows: Sequence[DataKeyRow]) -> int:
        """Replace ``wrapped``/``master_id`` of these keys in one transaction; returns how many
        changed. Values encrypted under them stay valid (that is the point of envelopes)."""

    def append_audit(self, rows: Sequence[AuditRow]) -> None:
        """Append audit rows outside any tenant transaction (reveals, token management,
        login failures)."""

    def touch_consumers(self, rows: Sequence[ConsumerRow]) -> None:
        """Upsert consumers in one transaction: labels replaced, ``last_seen`` and
        ``revision`` only ever move forward, ``first_seen`` kept. Moves no revision."""

    def add_report(self, row: ReportRow) -> None:
        """Replace the consumer's report on that rollout. Moves no revision."""

    def leading(self, name: str) -> AbstractContextManager[bool]:
        """``with store.leading("rollouts") as leader:`` -- True while this process holds the
        database-wide lock ``name`` (PostgreSQL: a session advisory lock), False when another
        process holds it. Never blocks."""


class StoreMaintenance(Protocol):
    """Day-two operations (schema 4): checksums, retention, compaction, checks, space."""

    def backfill_checksums(self) -> int:
        """Checksum every version that has none; returns how many. Moves no revision."""

    def checksum_mismatches(self, tenant: str) -> Iterator[tuple[VersionRow, str | None]]:
        """Versions whose stored checksum differs from their content's (with the stored one)."""

    def missing_revisions(self, tenant: str, after: int, upto: int,
                          limit: int = 100) -> list[int]:
        """Revisions in ``(after, upto]`` that no version carries."""

    def revisions_beyond(self, tenant: str, upto: int) -> int:
        """How many versions carry a revision above ``upto``."""

    def stale_current_pointers(self, tenant: str) -> list[tuple[str, str, str, int, int]]:
        """Keys whose current pointer is not their newest version."""

    def integrity_findings(self) -> list[str]:
        """The engine's own integrity check; [] when fine."""

    def retention_policies(self, tenant: str | None = None) -> list[RetentionRow]: ...

    def set_retention(self, row: RetentionRow) -> None:
        """Store (both limits None: remove) a policy. Moves no revision."""

    def version_index(self, tenant: str, page: int = 10_000) -> Iterator[VersionStub]:
        """Every version without its value, by (env, namespace, key, version)."""

    def remove_versions(self, tenant: str,
                        doomed: Sequence[tuple[str, str, str, int, int]]) -> int:
        """Remove versions under the tenant lock (never a current one, never a kept
        rollback's target); moves ``compacted_revision``, never the revision."""

    def compacted_revision(self, tenant: str) -> int: ...

    def reclaim_space(self, full: bool = False) -> dict[str, Any]:
        """Hand freed space back (SQLite vacuum); reports sizes before and after."""


class Store(StoreReader, StoreWriter, StoreMaintenance, Protocol):
    def close(self) -> None: ...

