"""One write op inside a store transaction: its compare-and-set check and its new version.

Every write (set, patch, delete, rollback, and each op of a batch) is an ``Op``, checked for
names and sizes before any lock is taken; ``apply_op`` then runs inside the store
transaction: it reads the key's current version, checks ``expected_version``, computes the
new value (patch and rollback need the stored one; secret fields are opened and sealed again)
and appends the new version. If any op of a batch raises, the store rolls the whole batch back.

Compare-and-set, worked through (``expected_version``; a key that does not exist, or whose
latest version is a tombstone, has current version 0)::

    set(a, 1, expected_version=0)   -> version 1           (must not exist: ok)
    set(a, 2, expected_version=0)   -> VersionConflict(current_version=1), nothing written
    set(a, 2, expected_version=1)   -> version 2
    delete(a, expected_version=2)   -> version 3, a tombstone
    set(a, 4, expected_version=0)   -> version 4           (deleted counts as absent)

May import: ``confhub.layering``, ``confhub.secrets``, ``confhub.model``, ``confhub.errors``,
``confhub.store.base`` (the WriteTxn Protocol) and the hub's ``rows``, ``sealing``, ``schemas``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

import jsonpatch

from .. import secrets as _secrets
from ..errors import InvalidRequest, NotFound, VersionConflict
from ..layering import merge_patch, patch_failure
from ..model import encode_value
from ..secrets import Vault
from ..store.base import VersionRow, WriteTxn
from ..values import NOT_PLAIN
from .rows import Meta, born, new_row, where
from .schemas import schema_in_txn, schema_secrets
from .sealing import require_key, seal


@dataclass(frozen=True, slots=True)
class Op:
    """One write of a batch, checked before the transaction starts."""

    kind: Literal["put", "patch", "json_patch", "delete", "rollback"]
    env: str
    namespace: str
    key: str
    value: Any = None
    encoded: str | None = None
    expected_version: int | None = None
    to_version: int | None = None
    secret_paths: tuple[str, ...] | None = None  # JSON pointers to encrypt ("" = all)
    # a put's value frozen as reading ``encoded`` back would give it (NOT_PLAIN: not known)
    frozen: Any = NOT_PLAIN


def apply_op(txn: WriteTxn, op: Op, meta: Meta, max_bytes: int, vault: Vault) -> None:
    """Check one op's precondition against storage and append its new version."""
    at = where(op.env, op.namespace, op.key)
    cur = txn.current(op.env, op.namespace, op.key)
    live = cur is not None and not cur.deleted
    current_version = cur.version if cur is not None and live else 0
    if op.expected_version is not None and op.expected_version != current_version:
        raise VersionConflict(
            f"{at} in tenant {txn.tenant!r} is at version {current_version}"
            + (" (does not exist)" if current_version == 0 else "")
            + f", not the expected {op.expected_version}; nothing was written",
            tenant=txn.tenant, env=op.env, namespace=op.namespace, key=op.key,
            current_version=current_version, expected_version=op.expected_version,
        )
    next_version = cur.version + 1 if cur is not None else 1
    if op.kind == "put":
        _append_put(txn, op, meta, next_version, cur, max_bytes, vault)
        return
    if op.kind == "rollback":  # allowed on a deleted key: it brings the key back
        if cur is None:
            raise _key_not_found(txn.tenant, op)
        _append_rollback(txn, op, meta, next_version, cur)
        return
    if not live or cur is None:
        raise _key_not_found(txn.tenant, op)
    if op.kind == "delete":
        txn.append(new_row(txn, op.env, op.namespace, op.key, next_version, "delete", None,
                           True, meta, secret=cur.secret))
        return
    _append_patch(txn, op, meta, next_version, cur, max_bytes, vault)


def _append_put(txn: WriteTxn, op: Op, meta: Meta, next_version: int,
                cur: VersionRow | None, max_bytes: int, vault: Vault) -> None:
    """A put keeps the secret fields the key already had, plus those asked for and those
    its schema marks ``x-secret``."""
    paths = op.secret_paths
    if paths is None and cur is not None and not cur.deleted and cur.secret:
        paths = tuple(_secrets.secret_pointers(json.loads(cur.value or "null")))
    text = op.encoded
    plain = None
    if schema_in_txn(txn, op.namespace) is not None:  # it may mark x-secret fields
        plain = json.loads(op.encoded or "null")
        paths = (*(paths or ()), *schema_secrets(txn, op.namespace, op.key, plain))
    if paths:
        if plain is None:
            plain = json.loads(op.encoded or "null")
        text = seal(txn.tenant, vault, plain, paths, max_bytes,
                    where(op.env, op.namespace, op.key))
    txn.append(new_row(txn, op.env, op.namespace, op.key, next_version, "put", text,
                       False, meta, secret=_secrets.has_envelope(text), born=born(cur)))


def _append_patch(txn: WriteTxn, op: Op, meta: Meta, next_version: int, cur: VersionRow,
                  max_bytes: int, vault: Vault) -> None:
    """A merge patch or JSON Patch applies to the plain value (secrets opened), and the
    result is sealed again."""
    at = where(op.env, op.namespace, op.key)
    current = json.loads(cur.value) if cur.value is not None else None
    paths: tuple[str, ...] = ()
    if cur.secret:
        paths = tuple(_secrets.secret_pointers(current))
        if paths:
            require_key(vault, at)
        current = vault.open(current) if paths else current
    if op.kind == "patch":
        new = merge_patch(current, op.value)
    else:
        try:
            new = jsonpatch.apply_patch(current, op.value)
        except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as exc:
            if paths:  # the library's message may quote the (decrypted) value
                raise InvalidRequest(f"JSON Patch does not apply to {at} (a value with "
                                     "secrets; details withheld)", tenant=txn.tenant,
                                     namespace=op.namespace, key=op.key) from None
            raise InvalidRequest(f"JSON Patch does not apply to {at}: "
                                 f"{patch_failure(current, op.value, exc)}",
                                 tenant=txn.tenant, namespace=op.namespace, key=op.key) from exc
    text = encode_value(new, max_bytes=max_bytes, where=f"patched value of {at}")
    paths = (*paths, *schema_secrets(txn, op.namespace, op.key, new))
    if paths:
        text = seal(txn.tenant, vault, new, paths, max_bytes, f"patched value of {at}")
    txn.append(new_row(txn, op.env, op.namespace, op.key, next_version, "patch", text, False,
                       meta, secret=_secrets.has_envelope(text), born=born(cur)))


def _append_rollback(txn: WriteTxn, op: Op, meta: Meta, next_version: int,
                     cur: VersionRow) -> None:
    at = where(op.env, op.namespace, op.key)
    assert op.to_version is not None
    target = txn.version(op.env, op.namespace, op.key, op.to_version)
    if target is None:
        raise NotFound(f"version {op.to_version} of {at} does not exist in tenant "
                       f"{txn.tenant!r} (latest is {cur.version})", tenant=txn.tenant,
                       namespace=op.namespace, key=op.key, version=op.to_version)
    if target.deleted:
        raise InvalidRequest(f"version {op.to_version} of {at} is a deletion, and a rollback "
                             "writes a value; to remove the key, delete it",
                             version=op.to_version)
    txn.append(new_row(txn, op.env, op.namespace, op.key, next_version, "rollback",
                       target.value, False, meta, rollback_of=op.to_version,
                       secret=target.secret, born=born(cur)))


def _key_not_found(tenant: str, op: Op) -> NotFound:
    return NotFound(f"{where(op.env, op.namespace, op.key)} not found in tenant {tenant!r}",
                    tenant=tenant, env=op.env, namespace=op.namespace, key=op.key)

