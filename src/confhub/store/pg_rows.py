"""How PostgreSQL writes a commit's held rows: one statement per table, whatever their number.

``executemany`` in psycopg's pipeline mode still sends one ``INSERT`` per row, and the server
parses, plans and executes each on its own: a transaction of 10 puts was ~30 statements
(version, current pointer and audit row per put), which took longer than the two network
round trips it travelled in. Here each table gets one statement whose parameters are one
typed array per column, expanded by ``unnest``::

    INSERT INTO confhub_versions (tenant, env, ...) SELECT * FROM unnest(
        %b::text[], %b::text[], ...)          -- ['acme', 'acme'], ['base', 'base'], ...

The current pointers are an upsert, and ``ON CONFLICT DO UPDATE`` may not touch one row twice
in a statement, so a commit's rows are first folded into one pointer per key, exactly as
applying them one by one would leave it (``fold_current``). Worked example, one key whose
stored pointer is live, created at t0; a group commit holds three of its rows::

    v4 put    at t1   -> pointer v4, live,    created t0  (live before: kept)
    v5 delete at t2   -> pointer v5, deleted, created t0
    v6 put    at t3   -> pointer v6, live,    created t3  (after a tombstone: a new life)

    folded: v6, live, created t3, *reborn* (the stored created_at must be replaced, whatever
    it was); without the delete it would be v6, live, created t1, not reborn (the stored
    created_at stays if the stored pointer is live, else t1).

Reborn keys are rare (a delete and a re-create of one key in one group commit); they go in
a second statement that overwrites ``created_at``.

One row per table (a ``set``: ``SMALL_BATCH``) goes as ``VALUES`` with one scalar parameter
per field instead: psycopg dumps a scalar in C, but for each array it infers the element
type in Python (5–10 µs a column: the 33 arrays of one ``set`` cost more client CPU than the
rest of the commit). Two rows or more go as arrays, for two reasons. psycopg turns ``%s``
into ``$n`` by parsing the statement, and caches that parse only for statements of at most
50 parameters: ``VALUES`` of a few rows is past that, and the parse costs 1.5–3 µs a
parameter every time (a group of ten puts: 1.8 ms of client CPU per commit with ``VALUES``,
0.28 ms with arrays, whose statement text — one parameter per column — is the same for
every group and cached). And a statement takes at most 65,535 parameters, while one array
per column stays one statement.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .base import AuditRow, VersionRow
from .pending import Pending
from .sql_txn import AUDIT_COLUMNS, VERSION_COLUMNS, audit_values, version_values

__all__ = [
    "finish_statement",
    "fold_current",
    "insert_audits",
    "insert_versions",
    "rows_source",
    "upsert_currents",
    "write_audit",
    "write_versions",
]


SMALL_BATCH = 1  # rows of one table sent as VALUES (scalars) rather than arrays


def _arrays(types: Sequence[str]) -> str:
    # %b: psycopg sends the arrays in binary; its text form quotes every element in Python
    # (~0.3 ms for the arrays of 10 rows, against ~15 µs).
    return ", ".join(f"%b::{kind}[]" for kind in types)


def rows_source(rows: Sequence[Sequence[Any]], types: Sequence[str],
                ordinal: str | None = None) -> tuple[str, list[Any]]:
    """The rows as what an INSERT reads: ``VALUES`` of scalars for one row, ``unnest`` of one
    typed array per column for more (see the module docstring). ``ordinal`` names a
    last column numbering the rows from 1, for an ``ORDER BY``."""
    width = len(types)
    if len(rows) <= SMALL_BATCH:
        fields = ", ".join(f"%s::{kind}" for kind in types)
        tuples = ", ".join(f"({fields}, {n})" if ordinal else f"({fields})"
                           for n in range(1, len(rows) + 1))
        return f"VALUES {tuples}", [value for row in rows for value in row[:width]]
    source = f"SELECT * FROM unnest({_arrays(types)})"
    if ordinal:
        source += " WITH ORDINALITY"
    return source, _columns(rows, width)


VERSION_TYPES = (
    "text",
    "text",
    "text",
    "text",
    "bigint",
    "bigint",
    "text",
    "boolean",
    "text",
    "bigint",
    "text",
    "text",
    "text",
    "bigint",
    "text",
    "boolean",
    "text",
)
_CURRENT_TYPES = ("text", "text", "text", "text", "bigint", "boolean", "bigint")
_UPSERT_CONFLICT = (
    " ON CONFLICT (tenant, env, namespace, key) DO UPDATE SET "
    "version = excluded.version, deleted = excluded.deleted, created_at = "
)
# A key re-created after a tombstone starts a new incarnation: its created_at resets.
_KEEP_CREATED = ("CASE WHEN confhub_current.deleted THEN excluded.created_at "
                 "ELSE confhub_current.created_at END")
_AUDIT_TYPES = ("bigint", "text", "text", "text", "text", "text", "text", "text", "text")


def insert_versions(rows: Sequence[VersionRow]) -> tuple[str, list[Any]]:
    source, params = rows_source([version_values(r) for r in rows], VERSION_TYPES)
    return f"INSERT INTO confhub_versions ({VERSION_COLUMNS}, checksum) {source}", params


def upsert_currents(pointers: Sequence[Pointer], reborn: bool) -> tuple[str, list[Any]]:
    source, params = rows_source(pointers, _CURRENT_TYPES)
    return ("INSERT INTO confhub_current (tenant, env, namespace, key, version, deleted, "
            f"created_at) {source}{_UPSERT_CONFLICT}"
            f"{'excluded.created_at' if reborn else _KEEP_CREATED}"), params


def insert_audits(rows: Sequence[AuditRow]) -> tuple[str, list[Any]]:
    # ORDER BY n: ids (BIGSERIAL) are drawn in the order the rows were appended.
    source, params = rows_source([audit_values(r) for r in rows], _AUDIT_TYPES, ordinal="n")
    return (f"INSERT INTO confhub_audit ({AUDIT_COLUMNS}) SELECT {AUDIT_COLUMNS} "
            f"FROM ({source}) AS a ({AUDIT_COLUMNS}, n) ORDER BY n"), params


Pointer = list[Any]  # [tenant, env, namespace, key, version, deleted, created_at, reborn]


def fold_current(rows: Sequence[VersionRow]) -> list[Pointer]:
    """One current pointer per key: what upserting ``rows`` in order would leave (see the
    module's worked example); ``reborn`` marks a key whose created_at must be overwritten."""
    folded: dict[tuple[str, str, str, str], Pointer] = {}
    for row in rows:
        address = (row.tenant, row.env, row.namespace, row.key)
        pointer = folded.get(address)
        if pointer is None:
            folded[address] = [*address, row.version, row.deleted, row.created_at, False]
            continue
        if pointer[5]:  # after a tombstone: a new incarnation begins with this row
            pointer[6], pointer[7] = row.created_at, True
        pointer[4], pointer[5] = row.version, row.deleted
    return list(folded.values())


def _columns(rows: Sequence[Sequence[Any]], width: int) -> list[list[Any]]:
    """Rows to one list per column (the arrays ``unnest`` takes)."""
    return [list(column) for column in zip(*rows, strict=True)][:width]


def _version_statements(rows: Sequence[VersionRow]) -> list[tuple[str, list[Any]]]:
    """Insert the version rows and move their keys' current pointers: two statements (three
    when a key was deleted and re-created within the rows)."""
    statements = [insert_versions(rows)]
    pointers = fold_current(rows)
    plain = [p for p in pointers if not p[7]]
    if plain:
        statements.append(upsert_currents(plain, reborn=False))
    reborn = [p for p in pointers if p[7]]
    if reborn:
        statements.append(upsert_currents(reborn, reborn=True))
    return statements


def write_versions(conn: Any, rows: Sequence[VersionRow]) -> None:
    for statement in _version_statements(rows):
        conn.execute(*statement)


def write_audit(conn: Any, rows: Sequence[AuditRow]) -> None:
    """Append the audit rows, in order, in one statement."""
    conn.execute(*insert_audits(rows))


def finish_statement(group: Pending, channel: str) -> tuple[str, list[Any]]:
    """Everything a group commit writes before COMMIT as one statement: the held rows (one
    data-modifying ``WITH`` per table), each tenant's new revision and its NOTIFY.

    One statement instead of five or six: each costs the client a dump, a send and a
    result to read (~0.1 ms on a busy machine) and the server a round of its executor.
    The parts touch different rows (a key's pointer is in one of the two upserts, never
    both), so running them under one snapshot changes nothing.
    """
    parts: list[str] = []
    params: list[Any] = []

    def add(sql: str, values: list[Any]) -> None:
        parts.append(f"w{len(parts)} AS ({sql})")
        params.extend(values)

    if group.versions:
        for statement in _version_statements(group.versions):
            add(*statement)
    if group.audit:
        add(*insert_audits(group.audit))
    for tenant, revision in group.revisions.items():
        add("UPDATE confhub_tenants SET revision = %s WHERE id = %s", [revision, tenant])
    notify = ["pg_notify(%s, %s)" for _ in group.notify] or ["1"]
    for tenant, revision in group.notify.items():
        params.extend([channel, f"{tenant}:{revision}"])
    group.written()
    head = f"WITH {', '.join(parts)} " if parts else ""
    return f"{head}SELECT {', '.join(notify)}", params
