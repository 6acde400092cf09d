"""Fields a schema marks ``x-secret`` or ``x-restart-required``, as JSON pointers into values.

``annotations_of(schema)`` finds the marks (``/*`` standing for every item or map value);
``expand`` turns those pointers into the concrete ones of a given value (which fields to seal),
``touches`` tells whether a change alters a marked field (which changes need a restart)::

    schema = {"properties": {"db": {"properties": {"password": {"x-secret": True}}},
                             "hosts": {"items": {"x-restart-required": True}}}}
    annotations_of(schema)  -> {"secret": ["/db/password"], "restart_required": ["/hosts/*"]}
    expand({"hosts": ["a", "b"]}, ["/hosts/*"])        -> ["/hosts/0", "/hosts/1"]
    touches(["/hosts/*"], {"hosts": ["a"]}, {"hosts": ["a", "b"]})  -> True

Split from ``validation.py``, which compiles schemas and records their annotations.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["annotations_of", "escape", "expand", "resolve_pointer", "touches"]


def touches(paths: Sequence[str], old: Any, new: Any) -> bool:
    """Whether going from ``old`` to ``new`` changes anything at one of ``paths`` (JSON
    pointers from ``annotations_of``, ``/*`` matching every item or map value; ``""`` is the
    whole value)."""
    return any(_values_at(old, path) != _values_at(new, path) for path in paths)


def expand(value: Any, paths: Sequence[str]) -> list[str]:
    """The concrete JSON pointers of ``value`` that ``paths`` (with ``/*``) designate."""
    found: list[str] = []
    for path in paths:
        places = [("", value)]
        for raw in path.split("/")[1:]:
            step: list[tuple[str, Any]] = []
            for where, node in places:
                if raw == "*" and isinstance(node, Mapping):
                    step += [(f"{where}/{escape(k)}", node[k]) for k in node]
                elif raw == "*" and isinstance(node, list | tuple):
                    step += [(f"{where}/{i}", item) for i, item in enumerate(node)]
                else:
                    name = raw.replace("~1", "/").replace("~0", "~")
                    if isinstance(node, Mapping) and name in node:
                        step.append((f"{where}/{raw}", node[name]))
            places = step
        found += [where for where, _ in places]
    return sorted(set(found))


def _values_at(value: Any, path: str) -> list[Any]:
    found = [value]
    for raw in path.split("/")[1:]:
        name = raw.replace("~1", "/").replace("~0", "~")
        step: list[Any] = []
        for node in found:
            if raw == "*":
                if isinstance(node, Mapping):
                    step.extend(node[k] for k in sorted(node))
                elif isinstance(node, list | tuple):
                    step.extend(node)
            elif isinstance(node, Mapping) and name in node:
                step.append(node[name])
            elif isinstance(node, list | tuple) and name.isdigit() and int(name) < len(node):
                step.append(node[int(name)])
        found = step
    return found


def annotations_of(schema: Any) -> dict[str, list[str]]:
    """JSON pointers (into the value) of fields marked ``x-secret`` / ``x-restart-required``.

    ``/*`` stands for "every item" of an array or "every value" of a map
    (``additionalProperties``). Local ``$ref`` are followed once per path, so recursive schemas
    terminate.
    """
    found: dict[str, list[str]] = {"secret": [], "restart_required": []}
    _walk(schema, schema, "", found, frozenset(), 0)
    return {name: sorted(set(paths)) for name, paths in found.items()}


def _walk(node: Any, root: Any, path: str, found: dict[str, list[str]],
          refs: frozenset[str], depth: int) -> None:
    if not isinstance(node, Mapping) or depth > 64:
        return
    if node.get("x-secret") is True:
        found["secret"].append(path)
    if node.get("x-restart-required") is True:
        found["restart_required"].append(path)
    for name, sub in (node.get("properties") or {}).items():
        _walk(sub, root, f"{path}/{escape(name)}", found, refs, depth + 1)
    for keyword in ("items", "additionalProperties"):
        _walk(node.get(keyword), root, f"{path}/*", found, refs, depth + 1)
    for sub in node.get("prefixItems") or []:
        _walk(sub, root, f"{path}/*", found, refs, depth + 1)
    for keyword in ("allOf", "anyOf", "oneOf"):
        for sub in node.get(keyword) or []:
            _walk(sub, root, path, found, refs, depth + 1)
    for keyword in ("then", "else"):
        _walk(node.get(keyword), root, path, found, refs, depth + 1)
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#") and ref not in refs:
        _walk(resolve_pointer(root, ref[1:]), root, path, found, refs | {ref}, depth + 1)


def escape(name: str) -> str:
    return name.replace("~", "~0").replace("/", "~1")


def resolve_pointer(root: Any, pointer: str) -> Any:
    node = root
    for part in pointer.split("/")[1:] if pointer else []:
        part = part.replace("~1", "/").replace("~0", "~")
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return node
