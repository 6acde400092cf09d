"""A fast YAML 1.2 reader: PyYAML's C parser with the YAML 1.2 core schema.

Reading a directory of a thousand files is most of a plan's time, and ruamel.yaml's loader
costs about a millisecond per small file where libyaml through PyYAML costs a fifth of that.
But PyYAML resolves plain scalars by YAML 1.1 (``yes``/``on`` are booleans, ``012`` is octal,
``1:20`` is sexagesimal, dates become dates), while the files confhub writes come from
ruamel.yaml in YAML 1.2. This loader keeps libyaml's speed and reads scalars as YAML 1.2's
core schema does, so what ruamel.yaml writes reads back unchanged:

    plain scalar        YAML 1.1 (PyYAML)     here (YAML 1.2 core)
    yes, on, y          true                   "yes", "on", "y"
    012                 10                     12
    0o17, 0x1f          error / 31             15, 31
    1:20                80                     "1:20"
    2026-01-02          date                   "2026-01-02"
    ~, null, (empty)    null                   null

A mapping with the same key twice is an error naming the line, not "last one wins".
"""

from __future__ import annotations

import re
from typing import Any

import yaml

__all__ = ["load_yaml12"]

_LOADER_BASE: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_LOADER_BASE):  # type: ignore[misc]
    """SafeLoader (C parser when available) with YAML 1.2 core scalars, no duplicate keys."""

    yaml_implicit_resolvers: dict[Any, Any] = {}

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
            except TypeError:
                continue  # unhashable: the base class reports it
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


def _int(loader: _Loader, node: Any) -> int:
    text = loader.construct_scalar(node)
    if text.startswith(("0o", "0O")):
        return int(text[2:], 8)
    if text.startswith(("0x", "0X")):
        return int(text[2:], 16)
    return int(text, 10)


def _float(loader: _Loader, node: Any) -> float:
    text = loader.construct_scalar(node).lower()
    if text in (".nan", "+.nan", "-.nan"):
        return float("nan")
    if text.endswith(".inf"):
        return float("-inf") if text.startswith("-") else float("inf")
    return float(text)


def _resolve(tag: str, pattern: str, first: str) -> None:
    _Loader.add_implicit_resolver(tag, re.compile(pattern, re.X), list(first))


_resolve("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF")
_resolve("tag:yaml.org,2002:int", r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$",
         "-+0123456789")
_resolve("tag:yaml.org,2002:float",
         r"""^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?
              |[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$""", "-+0123456789.")
_resolve("tag:yaml.org,2002:null", r"^(?:~|null|Null|NULL|)$", "~nN")
_Loader.yaml_implicit_resolvers.setdefault("", []).append(
    ("tag:yaml.org,2002:null", re.compile(r"^$")))
_Loader.add_constructor("tag:yaml.org,2002:int", _int)
_Loader.add_constructor("tag:yaml.org,2002:float", _float)


def load_yaml12(text: str) -> Any:
    """The document in ``text`` (raises ``yaml.YAMLError``, with marks, when it is bad)."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
