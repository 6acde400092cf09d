"""Field paths: ``kgot.reasoning_depth``, ``tiers[0].model`` - one field inside a value.

The dotted form people type (and the seed deployment's ``config.get("a.b", default)``) parsed
into segments, shown back the same way, and turned into the JSON Pointer the API speaks::

    parse_path("routing.tiers[1].model")   -> ("routing", "tiers", 1, "model")
    parse_path('labels["app.kubernetes.io/name"]') -> ("labels", "app.kubernetes.io/name")
    format_path(("routing", "tiers", 1))   -> "routing.tiers[1]"
    to_pointer(("a/b", 0))                 -> "/a~1b/0"

A bare number after a dot (``tiers.0``) also indexes a list. A key that is not a plain word is
written in brackets with double quotes, as above.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from .errors import InvalidRequest, NotFound

__all__ = ["MISSING", "Segment", "format_path", "lookup", "parse_path", "set_patch",
           "to_pointer"]

Segment = str | int
MISSING: Any = object()
_WORD = re.compile(r"[A-Za-z0-9_-]+")
_TOKEN = re.compile(r'\.?([^.\[\]"]+)|\[(\d+)\]|\[("(?:[^"\\]|\\.)*")\]')


def parse_path(path: str) -> tuple[Segment, ...]:
    """Segments of a dotted path; InvalidRequest for an empty or malformed path."""
    if not isinstance(path, str) or not path or path.startswith("."):
        raise InvalidRequest(f"field path {path!r} is empty or malformed (example: a.b[0].c)")
    segments: list[Segment] = []
    position = 0
    while position < len(path):
        found = _TOKEN.match(path, position)
        if found is None or (position > 0 and found.group(1) is not None
                             and path[position] != "."):
            raise InvalidRequest(f"field path {path!r} is malformed at character "
                                 f"{position + 1} (example: a.b[0].c)", path=path)
        word, index, quoted = found.groups()
        if word is not None:
            segments.append(word)
        elif index is not None:
            segments.append(int(index))
        else:
            segments.append(json.loads(quoted))
        position = found.end()
    return tuple(segments)


def format_path(segments: Sequence[Segment]) -> str:
    """The dotted form of ``segments`` (``""`` for the whole value)."""
    out = ""
    for segment in segments:
        if isinstance(segment, int):
            out += f"[{segment}]"
        elif _WORD.fullmatch(segment) and not segment.isdigit():
            out += f".{segment}" if out else segment
        else:
            out += f"[{json.dumps(segment, ensure_ascii=False)}]"
    return out


def to_pointer(segments: Sequence[Segment]) -> str:
    """The RFC 6901 JSON Pointer of ``segments``."""
    return "".join("/" + str(s).replace("~", "~0").replace("/", "~1") for s in segments)


def lookup(value: Any, path: str | Sequence[Segment], default: Any = MISSING) -> Any:
    """The field at ``path`` inside ``value``; ``default`` when it is missing, or NotFound
    naming the path (and how far it got) when no default is given."""
    segments = parse_path(path) if isinstance(path, str) else tuple(path)
    current = value
    for depth, segment in enumerate(segments):
        if isinstance(current, Mapping) and not isinstance(segment, int):
            if segment in current:
                current = current[segment]
                continue
        elif isinstance(current, list):
            index = segment if isinstance(segment, int) else (
                int(segment) if segment.isdigit() else None)
            if index is not None and index < len(current):
                current = current[index]
                continue
        if default is not MISSING:
            return default
        shown = format_path(segments)
        reached = format_path(segments[:depth]) or "the value"
        raise NotFound(f"field {shown!r} not found: {reached} has no "
                       f"{format_path(segments[depth:depth + 1])!r}", path=shown)
    return current


def set_patch(value: Any, path: str | Sequence[Segment], new: Any) -> list[dict[str, Any]]:
    """The RFC 6902 JSON Patch that sets the field at ``path`` of ``value`` to ``new``,
    creating missing objects on the way::

        set_patch({"a": {"b": 1}}, "a.b", 5)   -> [{"op": "replace", "path": "/a/b", "value": 5}]
        set_patch({"a": {}}, "a.x.y", 5)       -> [{"op": "add", "path": "/a/x", "value": {"y": 5}}]
        set_patch({"l": [1]}, "l[1]", 2)       -> [{"op": "add", "path": "/l/1", "value": 2}]
    """
    segments = parse_path(path) if isinstance(path, str) else tuple(path)
    current = value
    for depth, segment in enumerate(segments):
        here = segments[:depth + 1]
        last = depth == len(segments) - 1
        if isinstance(current, Mapping) and not isinstance(segment, int):
            if segment in current and not last:
                current = current[segment]
                continue
            if segment in current:
                return [{"op": "replace", "path": to_pointer(here), "value": new}]
            nested = new
            for name in reversed(segments[depth + 1:]):
                if isinstance(name, int):
                    raise NotFound(f"field {format_path(segments)!r}: cannot create list "
                                   f"index [{name}] in a missing list", path=format_path(
                                       segments))
                nested = {name: nested}
            return [{"op": "add", "path": to_pointer(here), "value": nested}]
        if isinstance(current, list):
            index = segment if isinstance(segment, int) else (
                int(segment) if segment.isdigit() else None)
            if index is not None and index < len(current):
                if last:
                    return [{"op": "replace", "path": to_pointer(here), "value": new}]
                current = current[index]
                continue
            if index == len(current) and last:
                return [{"op": "add", "path": to_pointer(here), "value": new}]
        shown = format_path(segments)
        reached = format_path(segments[:depth]) or "the value"
        raise NotFound(f"field {shown!r} cannot be set: {reached} has no "
                       f"{format_path(here[-1:])!r} and is not an object", path=shown)
    return [{"op": "replace", "path": "", "value": new}]
