"""A tenant's writes: set, patch, delete, rollback, and ``Transaction`` batches.

Every write goes the same way: names and values are checked here, before any lock is taken,
and become ``Op``s; ``Core.commit`` then runs them in one store transaction (``ops.apply_op``
reads the current versions, checks each ``expected_version`` — see the compare-and-set
example in ``hub/ops.py`` — and appends the new versions), validates the result against the
schemas in force, and commits all of it as one revision or nothing. A dry run takes the same
path and rolls back.

Owns ``Writes`` (the part of ``Tenant`` that writes) and ``Transaction``.
May import: ``confhub.secrets``, ``confhub.model``, ``confhub.errors`` and the hub's ``core``,
``cache``, ``rows``, ``ops``.
"""

from __future__ import annotations

import builtins
import dataclasses
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Any

import jsonpatch

from .. import secrets as _secrets
from ..errors import InvalidRequest
from ..model import BASE_ENV, Change, Entry, ValidationIssue, Version, encode_value, thaw
from ..store.base import VersionRow, WriteTxn
from ..values import NOT_PLAIN, encode_and_freeze
from .cache import change_from_row, entry_from_row
from .core import TenantPart
from .ops import Op, apply_op
from .rows import (
    Meta,
    check_address,
    check_expected,
    check_version,
    meta,
    version_from_row,
    where,
)
from .sealing import require_key


class Writes(TenantPart):
    """Writes of one tenant (part of :class:`confhub.Tenant`)."""

    def _write(self, ops: Sequence[Op], meta: Meta, dry_run: bool = False
               ) -> tuple[builtins.list[VersionRow], int, builtins.list[ValidationIssue]]:
        core = self._core
        warnings: builtins.list[ValidationIssue] = []
        vault = core.vault
        if vault.enabled:  # a write may touch a secret: have the data key before locking
            vault.ensure_tenant_key(self.name)
        elif any(op.secret_paths for op in ops):
            require_key(vault)

        def apply(txn: WriteTxn) -> None:
            for op in ops:
                apply_op(txn, op, meta, core.max_value_bytes, vault)

        _, revision, rows = core.commit(self.name, apply, dry_run=dry_run, warnings=warnings,
                                        keys=[(op.env, op.namespace, op.key) for op in ops])
        return rows, revision, warnings

    def _entry(self, row: VersionRow, warnings: Sequence[ValidationIssue] = (),
               written: Op | None = None) -> Entry:
        """The Entry of a version just written; for a put of plain JSON (``written``) its
        value is the one the op froze, unless the write sealed secrets in it (the Entry then
        shows them redacted, which only the stored text has)."""
        value = written.frozen if written is not None and not row.secret else NOT_PLAIN
        existing = self._cached_view.entry_at(row.env, row.namespace, row.key, row.version,
                                              value)
        entry = existing if existing is not None else entry_from_row(row, value=value)
        # The cached Entry is shared: warnings go on a copy (they belong to this write only).
        return dataclasses.replace(entry, warnings=tuple(warnings)) if warnings else entry

    def _put_op(self, namespace: str, key: str, value: Any, env: str,
                expected_version: int | None, secret: bool | Sequence[str] = False,
                entry: bool = False) -> Op:
        check_address(env, namespace, key)
        at = f"value of {where(env, namespace, key)}"
        max_bytes = self._core.max_value_bytes
        # A single write returns its Entry, built from the frozen value; a transaction
        # returns Changes decoded only if asked for, so its 10,000 values are not frozen.
        encoded, frozen = (encode_and_freeze(value, max_bytes=max_bytes, where=at) if entry
                           else (encode_value(value, max_bytes=max_bytes, where=at), NOT_PLAIN))
        _secrets.reject_envelopes(encoded, at)
        paths: tuple[str, ...] | None = None
        if secret is True:
            paths = ("",)
        elif secret is not False and secret is not None:
            if isinstance(secret, str):
                raise InvalidRequest("secret= takes True or a list of JSON pointers")
            paths = _secrets.check_pointers(secret) or None
        # positional (kind, env, namespace, key, value, encoded, expected_version, to_version,
        # secret_paths, frozen): one Op per key of a bulk load
        return Op("put", env, namespace, key, None, encoded, check_expected(expected_version),
                  None, paths, frozen)

    def _patch_op(self, namespace: str, key: str, patch: Any, env: str,
                  expected_version: int | None, json_patch: bool) -> Op:
        check_address(env, namespace, key)
        _secrets.reject_envelopes(
            encode_value(patch, max_bytes=self._core.max_value_bytes, where="patch"), "patch")
        if json_patch:
            if not isinstance(patch, list):
                raise InvalidRequest("a JSON Patch (RFC 6902) must be a list of operations")
            try:
                jsonpatch.JsonPatch(thaw(patch))
            except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException, TypeError,
                    KeyError) as exc:
                raise InvalidRequest(f"invalid JSON Patch: {exc}") from exc
        return Op("json_patch" if json_patch else "patch", env, namespace, key,
                  value=thaw(patch), expected_version=check_expected(expected_version))

    def set(self, namespace: str, key: str, value: Any, *, env: str = BASE_ENV,
            expected_version: int | None = None, reason: str | None = None,
            author: str | None = None, metadata: Mapping[str, Any] | None = None,
            dry_run: bool = False, request_id: str | None = None,
            secret: bool | Sequence[str] = False) -> Entry:
        """Write a new version of the key (creating it if needed) and return the new Entry.

        ``expected_version`` makes it a compare-and-set (0: must not exist); a mismatch raises
        VersionConflict and writes nothing. ``dry_run`` checks and returns, committing nothing.
        ``secret=True`` encrypts the whole value, a list of JSON pointers (``["/password"]``)
        encrypts those fields; a key that holds secrets keeps them encrypted on later writes.
        The returned entry shows secrets as ``"***"`` (see ``get(reveal=True)``).
        """
        op = self._put_op(namespace, key, value, env, expected_version, secret, entry=True)
        rows, _, warnings = self._write([op], meta(reason, author, metadata, request_id),
                                        dry_run)
        return self._entry(rows[0], warnings, op)

    def submit_set(self, namespace: str, key: str, value: Any, *,
                   done: Callable[[Entry | None, BaseException | None], object],
                   env: str = BASE_ENV, expected_version: int | None = None,
                   reason: str | None = None, author: str | None = None,
                   metadata: Mapping[str, Any] | None = None,
                   request_id: str | None = None) -> None:
        """:meth:`set` without waiting, for an event loop (the server's PUT): the value is
        checked here and now (bad input raises at once), then the write joins the next
        group commit, and ``done(entry, None)`` or ``done(None, error)`` is called on a
        store thread once it is durable or has failed. Nothing blocks, except that the first
        write of a tenant with the master key configured creates its data key."""
        op = self._put_op(namespace, key, value, env, expected_version, entry=True)
        written = meta(reason, author, metadata, request_id)
        vault = self._core.vault
        if vault.enabled:
            vault.ensure_tenant_key(self.name)
        max_bytes = self._core.max_value_bytes
        warnings: builtins.list[ValidationIssue] = []

        def apply(txn: WriteTxn) -> None:
            apply_op(txn, op, written, max_bytes, vault)

        def finished(outcome: tuple[None, int, builtins.list[VersionRow]] | None,
                     error: BaseException | None) -> None:
            if outcome is None:
                done(None, error)
                return
            try:
                entry = self._entry(outcome[2][0], warnings, op)
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                done(None, exc)
            else:
                done(entry, None)

        self._core.submit(self.name, apply, done=finished, warnings=warnings,
                          keys=[(op.env, op.namespace, op.key)])

    def patch(self, namespace: str, key: str, patch: Any, *, env: str = BASE_ENV,
              expected_version: int | None = None, reason: str | None = None,
              author: str | None = None, metadata: Mapping[str, Any] | None = None,
              json_patch: bool = False, dry_run: bool = False,
              request_id: str | None = None) -> Entry:
        """Apply an RFC 7386 merge patch (or, with ``json_patch=True``, an RFC 6902 JSON Patch
        list) to the current value, as a new version. NotFound if the key does not exist."""
        op = self._patch_op(namespace, key, patch, env, expected_version, json_patch)
        rows, _, warnings = self._write([op], meta(reason, author, metadata, request_id),
                                        dry_run)
        return self._entry(rows[0], warnings)

    def delete(self, namespace: str, key: str, *, env: str = BASE_ENV,
               expected_version: int | None = None, reason: str | None = None,
               author: str | None = None, metadata: Mapping[str, Any] | None = None,
               dry_run: bool = False, request_id: str | None = None) -> Version:
        """Write a tombstone version; the key can be re-created and its history continues.
        NotFound if it does not exist."""
        op = _delete_op(namespace, key, env, expected_version)
        rows, _, _ = self._write([op], meta(reason, author, metadata, request_id), dry_run)
        return version_from_row(rows[0])

    def rollback(self, namespace: str, key: str, to_version: int, *, env: str = BASE_ENV,
                 expected_version: int | None = None, reason: str | None = None,
                 author: str | None = None, metadata: Mapping[str, Any] | None = None,
                 dry_run: bool = False, request_id: str | None = None) -> Entry:
        """Write a new version whose value equals ``to_version``'s (``op="rollback"``,
        ``rollback_of=to_version``). History is never rewritten."""
        op = _rollback_op(namespace, key, to_version, env, expected_version)
        rows, _, warnings = self._write([op], meta(reason, author, metadata, request_id),
                                        dry_run)
        return self._entry(rows[0], warnings)

    def transaction(self, *, reason: str | None = None, author: str | None = None,
                    metadata: Mapping[str, Any] | None = None, dry_run: bool = False
                    ) -> Transaction:
        """A batch of writes committed atomically as one revision when the ``with`` block
        ends without an exception (nothing is written otherwise)."""
        return Transaction(self, meta(reason, author, metadata), dry_run)


def _delete_op(namespace: str, key: str, env: str, expected_version: int | None) -> Op:
    check_address(env, namespace, key)
    return Op("delete", env, namespace, key, expected_version=check_expected(expected_version))


def _rollback_op(namespace: str, key: str, to_version: int, env: str,
                 expected_version: int | None) -> Op:
    check_address(env, namespace, key)
    return Op("rollback", env, namespace, key, to_version=check_version("to_version", to_version),
              expected_version=check_expected(expected_version))


class Transaction:
    """Writes collected in a ``with`` block and committed as one revision at its end.

    Each key may appear once per transaction (a second op on it raises InvalidRequest at once),
    so every op's ``expected_version`` means what it says. After commit, ``revision`` and
    ``changes`` tell what was written.
    """

    def __init__(self, tenant: Writes, meta: Meta, dry_run: bool) -> None:
        self._tenant = tenant
        self._meta = meta
        self._dry_run = dry_run
        self._ops: builtins.list[Op] = []
        self._seen: set[tuple[str, str, str]] = set()
        self.revision: int | None = None
        self._rows: builtins.list[VersionRow] = []
        self._changes: builtins.list[Change] | None = None
        self.warnings: builtins.list[ValidationIssue] = []
        self._done = False

    def _add(self, op: Op) -> Transaction:
        if self._done:
            raise InvalidRequest("this transaction has already been committed or aborted")
        address = (op.env, op.namespace, op.key)
        if address in self._seen:
            raise InvalidRequest(f"{where(*address)} appears twice in one transaction; "
                                 "combine the two writes into one")
        self._seen.add(address)
        self._ops.append(op)
        return self

    def set(self, namespace: str, key: str, value: Any, *, env: str = BASE_ENV,
            expected_version: int | None = None,
            secret: bool | Sequence[str] = False) -> Transaction:
        return self._add(self._tenant._put_op(namespace, key, value, env, expected_version,
                                              secret))

    def patch(self, namespace: str, key: str, patch: Any, *, env: str = BASE_ENV,
              expected_version: int | None = None, json_patch: bool = False) -> Transaction:
        return self._add(self._tenant._patch_op(namespace, key, patch, env, expected_version,
                                                json_patch))

    def delete(self, namespace: str, key: str, *, env: str = BASE_ENV,
               expected_version: int | None = None) -> Transaction:
        return self._add(_delete_op(namespace, key, env, expected_version))

    def rollback(self, namespace: str, key: str, to_version: int, *, env: str = BASE_ENV,
                 expected_version: int | None = None) -> Transaction:
        return self._add(_rollback_op(namespace, key, to_version, env, expected_version))

    def commit(self) -> builtins.list[Change]:
        """Commit now (``with`` does this for you). An empty transaction writes nothing."""
        self._commit()
        return self.changes

    def _commit(self) -> None:
        if self._done:
            raise InvalidRequest("this transaction has already been committed or aborted")
        self._done = True
        if not self._ops:
            return
        rows, revision, warnings = self._tenant._write(self._ops, self._meta, self._dry_run)
        self.revision = revision
        self.warnings = warnings
        self._rows = rows

    @property
    def changes(self) -> builtins.list[Change]:
        """What the commit wrote, one Change per key (decoded when first asked for: a bulk
        load of 10,000 keys need not decode them all again)."""
        if self._changes is None:
            if not self._rows:
                return []
            self._changes = [change_from_row(row) for row in self._rows]
        return self._changes

    def __enter__(self) -> Transaction:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is not None:
            self._done = True  # an exception in the block aborts: nothing is written
            return
        if not self._done:
            self._commit()
