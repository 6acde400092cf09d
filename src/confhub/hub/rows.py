"""Version rows and the argument checks every part of the hub shares.

Owns: how a write's metadata (``Meta``) becomes a stored ``VersionRow`` (new, imported, its
audit record), how a row reads back as a ``Version`` or ``TenantInfo``, and the checks of
names, versions, revisions and page sizes that run before any lock is taken.

May import: ``confhub.model``, ``confhub.errors``, ``confhub.audit``, ``confhub.store.base``
(row types only) and ``hub.cache`` (row conversions).
"""

from __future__ import annotations

import operator
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..audit import current_actor
from ..errors import InvalidRequest
from ..model import (
    BASE_ENV,
    MAX_AUTHOR_CHARS,
    MAX_METADATA_BYTES,
    MAX_REASON_CHARS,
    TenantInfo,
    Version,
    check_name,
    encode_value,
    utc_from_micros,
)
from ..store.base import AuditRow, TenantRow, VersionRow, WriteTxn
from .cache import change_from_row

MAX_PAGE = 10_000


@dataclass(frozen=True, slots=True)
class Meta:
    """Who wrote, why, and the request it came in: stored on every version a write makes."""

    reason: str | None = None
    author: str | None = None
    metadata: str | None = None
    request_id: str | None = None


def meta(reason: str | None, author: str | None, metadata: Mapping[str, Any] | None,
         request_id: str | None = None) -> Meta:
    _check_length("reason", reason, MAX_REASON_CHARS)
    _check_length("author", author, MAX_AUTHOR_CHARS)
    text = (encode_value(dict(metadata), where="metadata", max_bytes=MAX_METADATA_BYTES)
            if metadata else None)
    # Request ids need to be unique, not secret: the random module's PRNG, not a uuid4 (an
    # os.urandom system call) per write. Its own generator, which Python reseeds in every
    # forked worker (a private ``random.Random()`` made before the fork would repeat ids).
    return Meta(reason=reason, author=author, metadata=text,
                request_id=request_id or f"{random.getrandbits(128):032x}")


def _check_length(field: str, text: str | None, limit: int) -> None:
    if text is not None and len(text) > limit:
        raise InvalidRequest(f"the {field} is {len(text)} characters long; at most {limit} "
                             "are kept with each change", field=field, limit=limit)


def new_row(txn: WriteTxn, env: str, namespace: str, key: str, version: int, op: str,
            value: str | None, deleted: bool, meta: Meta, *, rollback_of: int | None = None,
            secret: bool = False, born: int | None = None) -> VersionRow:
    """A new version row; ``born`` is when the key's live incarnation began (default: now)."""
    # Positional, in VersionRow's field order (tenant, env, namespace, key, version,
    # revision, op, deleted, value, created_at, author, reason, metadata, rollback_of,
    # request_id, secret, key_created_at): keywords cost a third more, once per key written.
    now = txn.now
    return VersionRow(
        txn.tenant, env, namespace, key, version, txn.revision, op, deleted,
        None if deleted else value, now, meta.author, meta.reason, meta.metadata, rollback_of,
        meta.request_id, secret, born if born is not None else now)


def imported_row(txn: WriteTxn, env: str, namespace: str, key: str,
                 item: dict[str, Any], revision: int | None = None) -> VersionRow:
    """A historical version re-written, times and authors kept: under ``revision`` (its
    source's, renumbered) or, by default, under the import's own revision."""
    return VersionRow(
        tenant=txn.tenant, env=env, namespace=namespace, key=key, version=item["version"],
        revision=txn.revision if revision is None else revision, op=item["op"],
        deleted=item["deleted"], value=item["text"],
        created_at=item["created_at"], author=item["author"], reason=item["reason"],
        metadata=item["metadata"], rollback_of=item["rollback_of"],
        request_id=item["request_id"], secret=item["secret"],
    )


def born(cur: VersionRow | None) -> int | None:
    """When the live key ``cur`` was created; None (meaning now) if absent or deleted."""
    return cur.key_created_at if cur is not None and not cur.deleted else None


# The sort key of a commit's rows in feed order, (env, namespace, key, version): C, not a
# Python call per row (a bulk transaction sorts 10,000 of them).
feed_order: Callable[[VersionRow], tuple[str, str, str, int]] = operator.attrgetter(
    "env", "namespace", "key", "version")


def change_audit(row: VersionRow) -> AuditRow:
    """The audit record of one committed change: who, what, why; never the value."""
    who = current_actor()
    env = row.env
    # Positional, in AuditRow's field order (at, action, actor, tenant, target, request_id,
    # client, reason, details); details is json.dumps({"version": ..., "revision": ...,
    # "secret": ...}) spelled out: this runs for every change written.
    return AuditRow(
        row.created_at, _ACTIONS.get(row.op) or f"config.{row.op}",
        (who.name if who else None) or row.author, row.tenant,
        f"{row.namespace}/{row.key}" if env == BASE_ENV else f"{row.namespace}/{row.key}@{env}",
        row.request_id, who.client if who else "embedded", row.reason,
        f'{{"version": {row.version:d}, "revision": {row.revision:d}, '
        f'"secret": {"true" if row.secret else "false"}}}')


_ACTIONS = {op: f"config.{op}" for op in ("put", "patch", "delete", "rollback", "restore",
                                          "import")}


def version_from_row(row: VersionRow) -> Version:
    change = change_from_row(row)
    return Version(**{name: getattr(change, name) for name in Version.__dataclass_fields__})


def tenant_info(row: TenantRow) -> TenantInfo:
    return TenantInfo(
        id=row.id, revision=row.revision, created_at=utc_from_micros(row.created_at),
        deleted_at=utc_from_micros(row.deleted_at) if row.deleted_at is not None else None,
        compacted_revision=row.compacted_revision,
    )


def actor_name() -> str | None:
    who = current_actor()
    return who.name if who else None


def micros(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000)


# ---------------------------------------------------------------------- argument checks


def where(env: str, namespace: str, key: str) -> str:
    """How messages name a key: ``models/a``, or ``models/a (env staging)``."""
    return f"{namespace}/{key}" + ("" if env == BASE_ENV else f" (env {env})")


_known_names: set[str] = set()  # env and namespace names already checked (a few per app)


def check_address(env: str, namespace: str, key: str) -> None:
    _check_known("env", env)
    _check_known("namespace", namespace)
    check_name("key", key)


def _check_known(kind: str, name: str) -> None:
    """``check_name`` once per name: a bulk load checks the same env and namespaces for
    every key (the rules are the same for every kind, so one set serves both)."""
    if type(name) is str and name in _known_names:
        return
    check_name(kind, name)
    if len(_known_names) < 10_000:
        _known_names.add(name)


def check_expected(expected: int | None) -> int | None:
    if expected is None:
        return None
    if isinstance(expected, bool) or not isinstance(expected, int) or expected < 0:
        raise InvalidRequest(f"expected_version must be an integer >= 0, not {expected!r}")
    return expected


def check_version(name: str, version: object) -> int:
    """A version number argument (``to_version``, ``version``): an integer >= 1."""
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise InvalidRequest(f"{name} must be an integer >= 1, not {version!r}")
    return version


def check_since(since: object) -> int:
    if isinstance(since, bool) or not isinstance(since, int) or since < 0:
        raise InvalidRequest(f"since must be an integer revision >= 0, not {since!r}")
    return since


def check_limit(limit: int) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise InvalidRequest(f"limit must be an integer >= 1, not {limit!r}")
    return min(limit, MAX_PAGE)
