"""Config values as confhub keeps them: frozen, checked, and as canonical JSON text.

Values are returned *frozen* (:class:`FrozenDict`, :class:`FrozenList`): they are shared with
the in-memory cache, so a caller mutating ``entry.value`` would otherwise change what every
other reader sees. They are ``dict``/``list`` subclasses, so ``json.dumps``, pydantic and
``==`` work unchanged; :func:`thaw` gives a mutable deep copy. Every write turns its value
into one canonical text (:func:`encode_value`), which is what storage holds and hashes.

May import: ``confhub.errors`` only (``confhub.model`` re-exports the public names).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any, NoReturn

from .errors import InvalidValue, TooLarge

__all__ = [
    "MAX_DEPTH",
    "MAX_VALUE_BYTES",
    "NOT_PLAIN",
    "FrozenDict",
    "FrozenList",
    "compact_json",
    "decode_value",
    "encode_and_freeze",
    "encode_value",
    "freeze",
    "thaw",
]

MAX_VALUE_BYTES = 1024 * 1024
MAX_DEPTH = 64


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
    (then ``_check_json`` names the problem). Same depth rule as ``_is_plain_json``, which
    stays a walk of its own because it allocates nothing: a transaction of 10,000 keys, a
    patch or a staged value needs only the check."""
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
    parsing the text just made (about a tenth of the server's GIL time per PUT, by py-spy).
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


def compact_json(data: Any) -> str:
    """Compact JSON text (no ASCII escaping, no NaN) of acyclic data: a checked value, or an
    answer built of them. What ``json.dumps`` with these options gives, without building its
    encoder on every call (the server encodes every answer through here)."""
    return ("".join(_ENCODE_CHUNKS(data, 0)) if _ENCODE_CHUNKS is not None
            else _CANONICAL.encode(data))


def _canonical_text(value: Any, max_bytes: int, where: str) -> str:
    """The canonical text of a value already checked to be JSON, within ``max_bytes``."""
    text = compact_json(value)
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
