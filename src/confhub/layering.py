"""Env layering, merge patch and diff: the pure functions behind resolve, patch and diff.

Layering and RFC 7386 merge patch are the same operation, which is why confhub has one
function for both. Worked example, ``base`` then ``production``::

    base        {"max_tokens": 8192, "retry": {"tries": 3, "backoff": 0.5}, "beta": true}
    production  {"retry": {"tries": 5}, "beta": null, "region": "eu"}
    resolved    {"max_tokens": 8192, "retry": {"tries": 5, "backoff": 0.5}, "region": "eu"}
    sources     {"max_tokens": "base", "retry": "production", "region": "production"}

Objects merge key by key (recursively), everything else (arrays, strings, numbers) is
replaced, and a ``null`` in the overlay removes the field. A top-level field counts as coming
from the last layer that touched it. When the resolved value is not an object, ``sources``
has the single entry ``""`` (the JSON Pointer of the whole document).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import jsonpatch

from .model import thaw

__all__ = ["diff", "merge_patch", "patch_failure", "resolve_layers"]


def merge_patch(target: Any, patch: Any) -> Any:
    """Apply an RFC 7386 JSON merge patch; returns a new value and never mutates its inputs."""
    if not isinstance(patch, Mapping):
        return thaw(patch)
    result: dict[str, Any] = dict(target) if isinstance(target, Mapping) else {}
    for name, value in patch.items():
        if value is None:
            result.pop(name, None)
        else:
            result[name] = merge_patch(result.get(name), value)
    return {k: thaw(v) for k, v in result.items()}


def resolve_layers(layers: Sequence[tuple[str, Any]]) -> tuple[Any, dict[str, str]]:
    """Merge ``(layer_name, value)`` pairs in precedence order (lowest first).

    Returns the merged value and the layer each top-level field came from.
    """
    value: Any = None
    sources: dict[str, str] = {}
    for index, (layer, overlay) in enumerate(layers):
        if index == 0:
            value = thaw(overlay)
            sources = _fields(value, layer)
            continue
        if not isinstance(overlay, Mapping):
            value = thaw(overlay)
            sources = _fields(value, layer)
            continue
        if not isinstance(value, Mapping):
            sources = {}
        value = merge_patch(value, overlay)
        for name, field in overlay.items():
            if field is None:
                sources.pop(name, None)
            else:
                sources[name] = layer
    return value, sources


def _fields(value: Any, layer: str) -> dict[str, str]:
    if isinstance(value, Mapping):
        return {name: layer for name in value}
    return {"": layer}


def diff(old: Any, new: Any) -> list[dict[str, Any]]:
    """The RFC 6902 JSON Patch that turns ``old`` into ``new``."""
    ops: list[dict[str, Any]] = jsonpatch.make_patch(thaw(old), thaw(new)).patch
    return ops


_PYTHON_TYPES = {"int": "number", "float": "number", "str": "string", "dict": "object",
                 "list": "array", "bool": "boolean", "NoneType": "null"}


def patch_failure(document: Any, patch: Sequence[Any], error: Exception) -> str:
    """Why a JSON Patch (RFC 6902) did not apply, in JSON's words: the jsonpatch library's
    messages speak Python (``1 (<class 'int'>) is not equal to tested value x``).

    Worked example: ``[{"op": "test", "path": "/a", "value": "x"}]`` on ``{"a": 1}`` gives
    ``op 0 (test /a) failed: the value there is 1, not "x"``.
    """
    import json

    import jsonpointer

    current = thaw(document)
    for index, op in enumerate(patch):
        try:
            current = jsonpatch.apply_patch(current, [op])
        except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException) as exc:
            kind = op.get("op") if isinstance(op, dict) else None
            path = op.get("path") if isinstance(op, dict) else None
            label = f"op {index} ({kind} {path})"
            if isinstance(exc, jsonpatch.JsonPatchTestFailed):
                try:
                    actual = jsonpointer.resolve_pointer(current, str(path))
                except jsonpointer.JsonPointerException:
                    return f"{label} failed: nothing is at {path}"
                return (f"{label} failed: the value there is "
                        f"{json.dumps(actual, ensure_ascii=False)[:200]}, not "
                        f"{json.dumps(op.get('value'), ensure_ascii=False)[:200]}")
            return f"{label} failed: {_json_words(str(exc))}"
    return _json_words(str(error))


def _json_words(message: str) -> str:
    import re

    return re.sub(r"<class '(\w+)'>",
                  lambda m: _PYTHON_TYPES.get(m.group(1), m.group(1)), message)
