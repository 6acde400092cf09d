"""Writes held back until the end of a commit, so they reach the database in a few batches.

A write transaction used to send every row the moment it was appended: on SQLite about ten
statements per ``set``, on PostgreSQL as many network round trips. :class:`Pending` keeps the
rows of one commit (SQLite: of every transaction of a group commit) in memory instead and
writes them with one ``executemany`` per table just before ``COMMIT``. Reads inside the
transaction still see them: :meth:`Pending.current` and friends answer from the held rows
first and from the database below them.

Worked example (a group of three transactions on one tenant, database at revision 7)::

    txn A  put models/a            -> held: a v3 (rev 8)      database unchanged
    txn B  put models/a (CAS v3)   -> current(a) = v3 from the held rows; held: a v4 (rev 9)
    txn C  raises VersionConflict  -> its own rows are dropped; nothing reached the database
    flush                          -> INSERT versions (a v3, a v4), upsert current twice,
                                      INSERT audit, UPDATE tenants SET revision = 9; COMMIT

A key's ``key_created_at`` (when its live incarnation began) is worked out from the database
row the transaction read first and the held rows after it: a tombstone ends an incarnation,
the next put starts one.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from .base import AuditRow, VersionRow

__all__ = ["KeyAddress", "Pending"]

KeyAddress = tuple[str, str, str, str]  # (tenant, env, namespace, key)
_UNREAD = object()


class Pending:
    """Version and audit rows not yet written, in the order they were appended."""

    __slots__ = ("versions", "audit", "revisions", "notify", "tenants", "schemas", "_by_key",
                 "_base", "_layers", "started", "touched", "implicit")

    def __init__(self) -> None:
        self.versions: list[VersionRow] = []
        self.audit: list[AuditRow] = []
        self.revisions: dict[str, int] = {}  # tenant -> revision its last transaction took
        self.notify: dict[str, int] = {}  # tenant -> revision to announce (created or written)
        # What the commit's write lock keeps true until COMMIT: each tenant's row as read
        # (revision, deleted_at) and the schemas in force per (tenant, namespace).
        self.tenants: dict[str, tuple[int, Any]] = {}
        self.schemas: dict[tuple[str, str], Any] = {}
        self._by_key: dict[KeyAddress, list[VersionRow]] = {}
        self._base: dict[KeyAddress, VersionRow | None] = {}  # database rows read before
        # (tenant, ns, key) -> envs held, built when first asked for (validation of a key
        # with a schema); None until then, so appending a row costs one dict entry.
        self._layers: dict[tuple[str, str, str], set[str]] | None = None
        # Each tenant's revision when the commit locked it, and the (tenant, namespace)s any
        # of its transactions wrote since (held or direct, even if rolled back): what lets a
        # transaction tell that nothing changed a namespace since a cached revision.
        self.started: dict[str, int] = {}
        self.touched: set[tuple[str, str]] = set()
        # The commit runs in PostgreSQL's implicit transaction of a pipeline (no BEGIN sent):
        # a SAVEPOINT first turns it into a transaction block, which then needs a COMMIT.
        self.implicit = False

    def __bool__(self) -> bool:
        return bool(self.versions or self.audit or self.revisions or self.notify)

    def add(self, rows: list[VersionRow], audit: list[AuditRow]) -> None:
        """Take over the rows of a transaction that succeeded."""
        for row in rows:
            self.append(row)
        self.audit += audit

    def append(self, row: VersionRow) -> None:
        address = (row.tenant, row.env, row.namespace, row.key)
        held = self._by_key.get(address)
        if held is None:
            self._by_key[address] = [row]
        else:
            held.append(row)
        if self._layers is not None:
            self._layers.setdefault((row.tenant, row.namespace, row.key), set()).add(row.env)
        self.versions.append(row)

    def merge(self, other: Pending) -> None:
        """Take over everything a transaction that succeeded held."""
        if not self.versions and not self.audit and not self._base:
            # the first transaction of a commit: adopt its rows as they are
            self.versions, self.audit = other.versions, other.audit
            self._by_key, self._base, self._layers = other._by_key, other._base, other._layers
            return
        self.add(other.versions, other.audit)
        for address, row in other._base.items():
            self._base.setdefault(address, row)

    def remember(self, address: KeyAddress, row: VersionRow | None) -> None:
        """Note what the database held for a key before this commit (nothing is written
        before the flush, so any read of the database until then gives that)."""
        self._base.setdefault(address, row)

    def held(self, address: KeyAddress) -> list[VersionRow]:
        return self._by_key.get(address, [])

    def base(self, address: KeyAddress) -> Any:
        """The database row read for ``address`` (None: absent), or ``UNREAD``."""
        return self._base.get(address, _UNREAD)

    def envs(self, tenant: str, namespace: str, key: str) -> set[str]:
        if self._layers is None:
            self._layers = {}
            for tenant_, env, namespace_, key_ in self._by_key:
                self._layers.setdefault((tenant_, namespace_, key_), set()).add(env)
        return self._layers.get((tenant, namespace, key), set())

    def version(self, address: KeyAddress, version: int) -> VersionRow | None:
        for row in self._by_key.get(address, ()):
            if row.version == version:
                return row
        return None

    def written(self) -> None:
        """The held rows reached the database: forget them (revisions still to be set)."""
        self.versions = []
        self.audit = []
        self._by_key.clear()
        self._base.clear()
        self._layers = None


UNREAD = _UNREAD


def latest(base: VersionRow | None, held: list[VersionRow]) -> VersionRow | None:
    """The key's current row after ``held`` (in order) on top of ``base``, with the
    ``key_created_at`` of its live incarnation."""
    row = base
    live = base is not None and not base.deleted
    born = base.key_created_at if base is not None and live else None
    for row in held:
        if row.deleted:
            live, born = False, None
        elif not live:
            live, born = True, row.created_at
    if row is None or not held:
        return row
    return dataclasses.replace(row, key_created_at=born if live else row.created_at)
