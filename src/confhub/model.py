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

import json
import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any, Literal, NoReturn

from .errors import (
    InvalidName,
    InvalidRequest,
    InvalidValue,
    TooLarge,
    ValidationIssue,
    ValidationReport,
)
from .fieldpath import MISSING, lookup

__all__ = [
    "BASE_ENV",
    "DEFAULT_TENANT",
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
    "encode_value",
    "freeze",
    "thaw",
]

BASE_ENV = "base"
DEFAULT_TENANT = "default"
MAX_VALUE_BYTES = 1024 * 1024
MAX_DEPTH = 64
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


# --------------------------------------------------------------------------- frozen JSON values


def _readonly(self: object, *args: object, **kwargs: object) -> NoReturn:
    raise TypeError(
        "confhub values are read-only (they are shared with the cache); "
        "use confhub.thaw(value) for a mutable copy"
    )


class FrozenDict(dict[str, Any]):
    """A JSON object that refuses mutation; equal to, and serialises like, a plain dict."""

    __slots__ = ()
    __setitem__ = __delitem__ = __ior__ = _readonly
    clear = pop = popitem = setdefault = update = _readonly

    def __reduce__(self) -> tuple[Any, ...]:
        return (FrozenDict, (dict(self),))

    def __copy__(self) -> FrozenDict:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> dict[str, Any]:
        return thaw(self)  # type: ignore[no-any-return]


class FrozenList(list[Any]):
    """A JSON array that refuses mutation; equal to, and serialises like, a plain list."""

    __slots__ = ()
    __setitem__ = __delitem__ = __iadd__ = __imul__ = _readonly
    append = clear = extend = insert = pop = remove = reverse = sort = _readonly

    def __reduce__(self) -> tuple[Any, ...]:
        return (FrozenList, (list(self),))

    def __copy__(self) -> FrozenList:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> list[Any]:
        return thaw(self)  # type: ignore[no-any-return]


def freeze(value: Any) -> Any:
    """Deep-freeze a JSON value (already checked by :func:`encode_value`)."""
    if isinstance(value, dict):
        return FrozenDict({k: freeze(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return FrozenList(freeze(v) for v in value)
    return value


def thaw(value: Any) -> Any:
    """A mutable deep copy of a (possibly frozen) JSON value."""
    if isinstance(value, dict):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [thaw(v) for v in value]
    return value


def _check_json(value: Any, path: str, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise InvalidValue(f"value nests deeper than {MAX_DEPTH} levels at {path or '/'}",
                           path=path)
    if value is None or isinstance(value, bool | str | int):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidValue(f"{value!r} at {path or '/'} is not a JSON number", path=path)
        return
    if isinstance(value, Mapping):
        for k, v in value.items():
            if not isinstance(k, str):
                raise InvalidValue(
                    f"object key {k!r} at {path or '/'} is not a string (JSON keys are strings)",
                    path=path,
                )
            _check_json(v, f"{path}/{k.replace('~', '~0').replace('/', '~1')}", depth + 1)
        return
    if isinstance(value, list | tuple):
        for i, v in enumerate(value):
            _check_json(v, f"{path}/{i}", depth + 1)
        return
    raise InvalidValue(
        f"{type(value).__name__} at {path or '/'} is not a JSON value", path=path,
        type=type(value).__name__,
    )


_SCALARS = frozenset({str, int, bool, type(None)})
# A value's canonical text is made for every write. ``_ENCODE_CHUNKS`` is what
# ``_CANONICAL.encode`` builds on every call, built once (half its time on a small value); no
# circular-reference markers, as ``_is_plain_json``/``_check_json`` bound the depth first.
_CANONICAL = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)
_c_encoder = getattr(json.encoder, "c_make_encoder", None)
_ENCODE_CHUNKS = (_c_encoder(None, _CANONICAL.default, json.encoder.encode_basestring, None,
                             ":", ",", False, False, False) if _c_encoder is not None else None)


def _is_plain_json(value: Any, depth: int) -> bool:
    """The common case of :func:`_check_json` without building a path per value (a write's
    hot path): True when ``value`` is built of plain dicts, lists and JSON scalars. False
    sends the value to ``_check_json``, which names the first problem."""
    if depth > MAX_DEPTH:
        return False
    kind = type(value)
    if kind in _SCALARS:
        return True
    if kind is float:
        return math.isfinite(value)
    if kind is dict or kind is FrozenDict:
        for k, v in value.items():
            if type(k) is not str or (type(v) not in _SCALARS and not _is_plain_json(v, depth + 1)):
                return False
        return True
    if kind is list or kind is FrozenList or kind is tuple:
        for v in value:
            if type(v) not in _SCALARS and not _is_plain_json(v, depth + 1):
                return False
        return True
    return False


class _NotPlain:
    """What :func:`_frozen_plain` answers for a value that is not plain JSON."""

    __slots__ = ()


NOT_PLAIN: Any = _NotPlain()


def _frozen_plain(value: Any, depth: int) -> Any:
    """:func:`_is_plain_json` and :func:`freeze` in one walk: ``value`` frozen, or NOT_PLAIN
    (then ``_check_json`` names the problem). Same depth rule as ``_is_plain_json``."""
    if depth > MAX_DEPTH:
        return NOT_PLAIN
    kind = type(value)
    if kind in _SCALARS:
        return value
    if kind is float:
        return value if math.isfinite(value) else NOT_PLAIN
    if kind is dict or kind is FrozenDict:
        out = {}
        for k, v in value.items():
            if type(k) is not str:
                return NOT_PLAIN
            if type(v) not in _SCALARS:
                v = _frozen_plain(v, depth + 1)
                if v is NOT_PLAIN:
                    return NOT_PLAIN
            out[k] = v
        return FrozenDict(out)
    if kind is list or kind is FrozenList or kind is tuple:
        items = []
        for v in value:
            if type(v) not in _SCALARS:
                v = _frozen_plain(v, depth + 1)
                if v is NOT_PLAIN:
                    return NOT_PLAIN
            items.append(v)
        return FrozenList(items)
    return NOT_PLAIN


def encode_and_freeze(value: Any, *, max_bytes: int = MAX_VALUE_BYTES,
                      where: str = "value") -> tuple[str, Any]:
    """:func:`encode_value`, and ``value`` frozen as :func:`decode_value` would give it back
    from that text — or NOT_PLAIN for a value that is JSON only after conversion (an IntEnum,
    a str subclass), whose decoded form differs from what was passed.

    A write returns the Entry of what it wrote; building it from this frozen value spares
    parsing the text just made (a third of a small PUT's work in the hub).
    """
    frozen = _frozen_plain(value, 0)
    if frozen is NOT_PLAIN:
        return encode_value(value, max_bytes=max_bytes, where=where), NOT_PLAIN
    return _canonical_text(frozen, max_bytes, where), frozen


def encode_value(value: Any, *, max_bytes: int = MAX_VALUE_BYTES, where: str = "value") -> str:
    """Check that ``value`` is plain JSON within the size limit and return its canonical text."""
    if not _is_plain_json(value, 0):
        _check_json(value, "", 0)
    return _canonical_text(value, max_bytes, where)


def _canonical_text(value: Any, max_bytes: int, where: str) -> str:
    """The canonical text of a value already checked to be JSON, within ``max_bytes``."""
    text = ("".join(_ENCODE_CHUNKS(value, 0)) if _ENCODE_CHUNKS is not None
            else _CANONICAL.encode(value))
    size = len(text.encode("utf-8"))
    if size > max_bytes:
        raise TooLarge(
            f"{where} is {size} bytes encoded; the limit is {max_bytes} bytes",
            size=size,
            limit=max_bytes,
        )
    return text


def decode_value(text: str | None) -> Any:
    """Parse stored JSON text into a frozen value."""
    if text is None:
        return None
    return freeze(json.loads(text))


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
