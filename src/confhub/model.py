"""confhub's domain values and the rules for names and values.

Every value a user gets back is a frozen dataclass: :class:`Entry` (a key's current value),
:class:`Version` (one immutable step of a key's history), :class:`Change` (a version as it appears
in the tenant's change feed), :class:`Resolved` (a value merged across env layers),
:class:`Snapshot` (a label on a revision) and :class:`ValidationReport`.

Config values themselves are returned *frozen* (:class:`FrozenDict`, :class:`FrozenList`): they
are shared with the in-memory cache, so a caller mutating ``entry.value`` would otherwise change
what every other reader sees. They are ``dict``/``list`` subclasses, so ``json.dumps``, pydantic
and ``==`` work unchanged; :func:`thaw` gives a mutable deep copy.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any, Literal

from .errors import (
    InvalidName,
    InvalidRequest,
    ValidationIssue,
    ValidationReport,
)
from .fieldpath import MISSING, lookup
from .values import (  # values.py was split off this module: its names stay importable here
    MAX_DEPTH,
    MAX_VALUE_BYTES,
    FrozenDict,
    FrozenList,
    decode_value,
    encode_value,
    freeze,
    thaw,
)

__all__ = [
    "BASE_ENV",
    "DEFAULT_TENANT",
    "MAX_DEPTH",
    "MAX_VALUE_BYTES",
    "Change",
    "Entry",
    "FrozenDict",
    "FrozenList",
    "Op",
    "Resolved",
    "RetentionPolicy",
    "Schema",
    "Snapshot",
    "TenantInfo",
    "ValidationIssue",
    "ValidationReport",
    "Version",
    "WatchEvent",
    "check_name",
    "decode_value",
    "encode_value",
    "freeze",
    "thaw",
]

BASE_ENV = "base"
DEFAULT_TENANT = "default"
MAX_WAIT = 300.0  # seconds a long poll may hold an empty answer
# Audit fields travel with every version, history page and watch event: keep them short.
MAX_REASON_CHARS = 1000
MAX_AUTHOR_CHARS = 200
MAX_METADATA_BYTES = 16 * 1024

Op = Literal["put", "patch", "delete", "rollback", "restore", "import"]
OPS: tuple[str, ...] = ("put", "patch", "delete", "rollback", "restore", "import")

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def check_wait(wait: object) -> float:
    """A long poll's ``wait`` in seconds (0 to MAX_WAIT), else InvalidRequest."""
    if isinstance(wait, bool) or not isinstance(wait, int | float) or not 0 <= wait <= MAX_WAIT:
        raise InvalidRequest(f"wait must be a number of seconds from 0 to {MAX_WAIT:g}, "
                             f"not {wait!r}")
    return float(wait)


def check_name(kind: str, name: object) -> str:
    """Return ``name`` if it is a valid tenant/env/namespace/key name, else raise InvalidName.

    ``..`` is refused even though each character is allowed: names end up in file paths
    (config-as-code, exports) and must never climb out of a directory.
    """
    if isinstance(name, str) and _NAME.fullmatch(name) and ".." not in name:
        return name
    shown = repr(name) if not isinstance(name, str) or len(name) <= 140 else repr(name[:140] + "…")
    raise InvalidName(
        f"invalid {kind} name {shown}: names are 1-128 characters of letters, digits, '.', '_' "
        "and '-', start with a letter or digit, and contain no '..'",
        kind=kind,
        name=name if isinstance(name, str) else repr(name),
    )


def now_micros() -> int:
    """Now, as stored: integer microseconds since the epoch, UTC."""
    return time.time_ns() // 1000


def utc_from_micros(micros: int) -> datetime:
    return datetime.fromtimestamp(micros / 1_000_000, tz=UTC)


# --------------------------------------------------------------------------- domain records


def _record_dict(record: Any) -> dict[str, Any]:
    """A record's fields as JSON-ready values: datetimes in RFC 3339, mappings as dicts."""
    out: dict[str, Any] = {}
    for item in fields(record):
        value = getattr(record, item.name)
        if isinstance(value, datetime):
            value = value.isoformat()
        elif isinstance(value, Mapping) and not isinstance(value, FrozenDict):
            value = dict(value)
        out[item.name] = value
    return out


@dataclass(frozen=True, slots=True)
class Entry:
    """A key's current value in one env layer.

    ``created_at`` is when the key (this incarnation, after any delete) was created,
    ``updated_at`` when ``version`` was written, by ``updated_by``.
    """

    tenant: str
    env: str
    namespace: str
    key: str
    value: Any
    version: int
    revision: int
    created_at: datetime
    updated_at: datetime
    updated_by: str | None
    secret: bool = False
    warnings: tuple[ValidationIssue, ...] = field(default=(), compare=False)
    rollout: str | None = None  # the running rollout whose staged value this is (section 8)

    def get(self, path: str, default: Any = MISSING) -> Any:
        """The field at a dotted ``path`` of the value (``"retry.tries"``, ``"tiers[0]"``;
        see :mod:`confhub.fieldpath`): ``default`` when missing, else NotFound naming it."""
        return lookup(self.value, path, default)

    def to_dict(self) -> dict[str, Any]:
        """The Entry JSON of DESIGN.md (RFC 3339 UTC timestamps); ``warnings`` (the schema
        rules of severity warning the write broke) only when there are some, ``rollout``
        only on a staged value."""
        data = _record_dict(self)
        if self.warnings:
            data["warnings"] = [w.to_dict() for w in self.warnings]
        else:
            del data["warnings"]
        if self.rollout is None:
            del data["rollout"]
        return data


@dataclass(frozen=True, slots=True)
class Version:
    """One immutable step in a key's history.

    ``deleted`` marks a tombstone (``value`` is then None). ``rollback_of`` is the version a
    rollback copied. ``revision`` is the tenant revision of the transaction that wrote it.
    """

    tenant: str
    env: str
    namespace: str
    key: str
    version: int
    revision: int
    op: str
    value: Any
    deleted: bool
    created_at: datetime
    author: str | None = None
    reason: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    rollback_of: int | None = None
    request_id: str | None = None
    secret: bool = False

    def to_dict(self) -> dict[str, Any]:
        return _record_dict(self)


@dataclass(frozen=True, slots=True)
class Change(Version):
    """A version as the change feed delivers it: ordered by ``revision``, then by key.

    All changes of one transaction share its revision and are delivered consecutively.
    ``restart_required`` is true when the change alters a field its schema marks
    ``"x-restart-required": true``: consumers must restart to apply it.
    """

    restart_required: bool = False

    def to_dict(self) -> dict[str, Any]:
        """As a Version, plus ``"restart_required": true`` on the changes that have it (so
        every other shape that lists changes stays that of a Version)."""
        out = _record_dict(self)
        if not self.restart_required:
            del out["restart_required"]
        return out


@dataclass(frozen=True, slots=True)
class WatchEvent:
    """One committed revision as a watcher sees it: the changes of that transaction (those
    matching the watcher's filter), never split across events."""

    tenant: str
    revision: int
    changes: tuple[Change, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"tenant": self.tenant, "revision": self.revision,
                "changes": [change.to_dict() for change in self.changes]}


@dataclass(frozen=True, slots=True)
class Resolved:
    """A key's value for one env: the ``base`` layer deep-merged with the env's layer.

    ``sources`` maps each top-level field to the layer it came from (``""`` stands for the
    whole value when it is not an object); ``versions`` maps each contributing layer to its
    version.
    """

    tenant: str
    env: str
    namespace: str
    key: str
    value: Any
    sources: Mapping[str, str]
    versions: Mapping[str, int]
    rollouts: tuple[str, ...] = ()  # running rollouts whose staged layers it merged

    def get(self, path: str, default: Any = MISSING) -> Any:
        """The field at a dotted ``path`` of the value (``"retry.tries"``, ``"tiers[0]"``;
        see :mod:`confhub.fieldpath`): ``default`` when missing, else NotFound naming it."""
        return lookup(self.value, path, default)

    def to_dict(self) -> dict[str, Any]:
        """``rollouts`` only when a staged value took part."""
        data = _record_dict(self)
        if self.rollouts:
            data["rollouts"] = list(self.rollouts)
        else:
            del data["rollouts"]
        return data


@dataclass(frozen=True, slots=True)
class TenantInfo:
    """A tenant as listed: its latest ``revision``; ``deleted_at`` is set while soft-deleted;
    ``compacted_revision`` is the oldest revision a watcher can resume from (retention)."""

    id: str
    revision: int
    created_at: datetime
    deleted_at: datetime | None = None
    compacted_revision: int = 0

    @property
    def deleted(self) -> bool:
        return self.deleted_at is not None

    def to_dict(self) -> dict[str, Any]:
        """``compacted_revision`` appears only once retention removed something, so the
        tenant shape is unchanged for everyone else (as ``restart_required`` in changes)."""
        data = {**_record_dict(self), "deleted": self.deleted}
        if not self.compacted_revision:
            del data["compacted_revision"]
        return data


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """How much history a tenant (``namespace`` None) or one namespace of it keeps.

    A version is kept while it is one of the last ``keep_last`` of its key *or* younger than
    ``keep_for_seconds``; None means no limit of that kind (both None: keep everything).
    Whatever the policy, compaction keeps every key's current version, the versions a
    snapshot's state needs, and the versions a kept rollback names as its ``rollback_of``.
    """

    tenant: str
    namespace: str | None
    keep_last: int | None
    keep_for_seconds: int | None

    def to_dict(self) -> dict[str, Any]:
        return _record_dict(self)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A label on a tenant revision; restoring it recreates the state at that revision."""

    tenant: str
    label: str
    revision: int
    created_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return _record_dict(self)


@dataclass(frozen=True, slots=True)
class Schema:
    """One version of a namespace's schema: a JSON Schema (draft 2020-12), CEL ``rules``
    and the ``key_pattern`` (a glob; None means every key) of the keys it governs.

    ``scope`` is the tenant it belongs to, or ``"*"`` for a schema of every tenant (a tenant's
    own schema for the namespace takes precedence). ``deleted`` marks a removal (a tombstone
    version, like a key's). ``annotations`` lists the JSON pointers marked ``x-secret`` and
    ``x-restart-required``.
    """

    scope: str
    namespace: str
    version: int
    schema: Any
    rules: tuple[Mapping[str, Any], ...]
    key_pattern: str | None
    created_at: datetime
    author: str | None = None
    reason: str | None = None
    deleted: bool = False
    rollback_of: int | None = None
    annotations: Mapping[str, Any] = field(default_factory=dict)

    @property
    def all_tenants(self) -> bool:
        return self.scope == "*"

    def to_dict(self) -> dict[str, Any]:
        data = _record_dict(self)
        data["rules"] = [dict(r) for r in self.rules]
        data["all_tenants"] = self.all_tenants
        return data
