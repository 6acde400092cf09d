"""Reading and rewriting the files of a config directory: YAML, JSON and TOML.

Reading (YAML through yaml12.py) turns a file into a plain JSON value or raises
:class:`LayoutError` naming the file and the line, so a typo in one of a thousand files is
found at once. Rewriting (``export --to DIR``)
keeps what a person wrote around the values: an existing YAML file is updated in place through
ruamel.yaml's round-trip mode and a TOML file through tomlkit, so comments, key order and
formatting survive; only the values that changed are touched. JSON has no comments and is
written with two-space indents.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import re
import tomllib
from collections.abc import Mapping
from typing import Any

import tomlkit
import yaml as pyyaml
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError
from ruamel.yaml.scalarstring import DoubleQuotedScalarString
from tomlkit.exceptions import TOMLKitError

from ..errors import InvalidValue, LayoutError
from ..model import encode_value, thaw
from .yaml12 import load_yaml12

__all__ = ["EXTENSIONS", "dump_value", "parse_file", "update_text"]

EXTENSIONS: tuple[str, ...] = ("yaml", "yml", "json", "toml")


def _fail(file: str, message: str, line: int | None = None) -> LayoutError:
    where = f"{file}:{line}" if line else file
    details: dict[str, Any] = {"file": file}
    if line:
        details["line"] = line
    return LayoutError(f"{where}: {message}", **details)


def _round_trip_yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 4096
    return yaml


def _plain(value: Any, file: str) -> Any:
    """YAML and TOML know dates and times; JSON does not. They become ISO 8601 strings, the way
    they would be written in JSON, and anything else that is not JSON is refused."""
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, Mapping):
        out = {}
        for name, item in value.items():
            if not isinstance(name, str):
                raise _fail(file, f"key {name!r} is not a string (JSON keys are strings)")
            out[name] = _plain(item, file)
        return out
    if isinstance(value, list | tuple):
        return [_plain(item, file) for item in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise _fail(file, f"{type(value).__name__} values are not JSON")


def parse_file(text: str, ext: str, file: str) -> Any:
    """The JSON value a file holds; LayoutError naming ``file`` and the line when it cannot
    be parsed or is not JSON."""
    try:
        if ext in ("yaml", "yml"):
            value = load_yaml12(text)
        elif ext == "json":
            value = json.loads(text)
        elif ext == "toml":
            value = tomllib.loads(text)
        else:
            raise _fail(file, f"unknown file type .{ext} (use one of "
                              + ", ".join("." + e for e in EXTENSIONS) + ")")
    except json.JSONDecodeError as exc:
        raise _fail(file, f"invalid JSON: {exc.msg} (column {exc.colno})", exc.lineno) from None
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"at line (\d+)", str(exc))
        raise _fail(file, f"invalid TOML: {exc}",
                    int(found.group(1)) if found else None) from None
    except pyyaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "cannot be parsed"
        raise _fail(file, f"invalid YAML: {problem}",
                    mark.line + 1 if mark is not None else None) from None
    except pyyaml.YAMLError as exc:
        raise _fail(file, f"invalid YAML: {exc}") from None
    value = _plain(value, file)
    try:
        encode_value(value, where=file)
    except InvalidValue as exc:
        raise _fail(file, exc.message) from None
    return value


# --------------------------------------------------------------------------- writing


_YAML11_BREAKS = re.compile("[\x85\u2028\u2029]")


def _quote_breaks(value: Any) -> Any:
    """Strings holding a character YAML 1.1 reads as a line break (NEL, U+2028, U+2029) are
    written double-quoted, where the emitter escapes it: ruamel.yaml writes YAML 1.2, which
    would leave them raw, and the reader (libyaml) speaks 1.1 there."""
    if isinstance(value, str):
        return DoubleQuotedScalarString(value) if _YAML11_BREAKS.search(value) else value
    if isinstance(value, dict):
        return {_quote_breaks(k): _quote_breaks(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_quote_breaks(v) for v in value]
    return value


def dump_value(value: Any, ext: str, file: str) -> str:
    """A new file's text for ``value``."""
    value = thaw(value)
    if ext in ("yaml", "yml"):
        value = _quote_breaks(value)
        stream = io.StringIO()
        yaml = _round_trip_yaml()
        yaml.dump(value, stream)
        return stream.getvalue()
    if ext == "json":
        return json.dumps(value, indent=2, ensure_ascii=False) + "\n"
    if ext == "toml":
        _check_toml(value, file)
        return tomlkit.dumps(value)
    raise _fail(file, f"unknown file type .{ext}")


def _check_toml(value: Any, file: str, path: str = "") -> None:
    if path == "" and not isinstance(value, Mapping):
        raise _fail(file, "a TOML file holds a table; this value is not an object "
                          "(write it as .yaml or .json)")
    if value is None:
        raise _fail(file, f"TOML has no null (at {path}); write this key as .yaml or .json")
    if isinstance(value, Mapping):
        for name, item in value.items():
            _check_toml(item, file, f"{path}.{name}" if path else name)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_toml(item, file, f"{path}[{index}]")


def update_text(old_text: str, value: Any, ext: str, file: str) -> str:
    """``old_text`` (a file's current content) rewritten to hold ``value``, keeping the
    comments, key order and layout of everything that did not change."""
    value = thaw(value)
    if ext in ("yaml", "yml"):
        yaml = _round_trip_yaml()
        try:
            document = yaml.load(old_text)
        except YAMLError:
            return dump_value(value, ext, file)
        merged = _merge(document, _quote_breaks(value))
        stream = io.StringIO()
        yaml.dump(merged, stream)
        return stream.getvalue()
    if ext == "toml":
        _check_toml(value, file)
        try:
            toml_document = tomlkit.parse(old_text)
        except TOMLKitError:
            return dump_value(value, ext, file)
        _merge(toml_document, value)
        return tomlkit.dumps(toml_document)
    return dump_value(value, ext, file)


def _merge(node: Any, value: Any) -> Any:
    """Make the round-trip ``node`` equal ``value``, in place where both are containers (so
    the comments attached to surviving keys stay), returning what should stand in its place.

    Example: node ``{a: 1  # why, b: 2}`` and value ``{"a": 1, "c": 3}`` give
    ``{a: 1  # why, c: 3}`` - ``a`` keeps its comment, ``b`` goes, ``c`` is appended.
    """
    if isinstance(node, Mapping) and isinstance(value, Mapping):
        for name in [k for k in node if k not in value]:
            del node[name]  # type: ignore[attr-defined]
        for name, item in value.items():
            if name in node:
                merged = _merge(node[name], item)
                if merged is not node[name]:
                    node[name] = merged  # type: ignore[index]
            else:
                node[name] = item  # type: ignore[index]
        return node
    if isinstance(node, list) and isinstance(value, list):
        del node[len(value):]
        for index, item in enumerate(value):
            if index < len(node):
                merged = _merge(node[index], item)
                if merged is not node[index]:
                    node[index] = merged
            else:
                node.append(item)
        return node
    if _same_scalar(node, value):
        return node  # keeps quoting style and number formatting
    return value


def _same_scalar(node: Any, value: Any) -> bool:
    if isinstance(node, Mapping | list) or isinstance(value, Mapping | list):
        return False
    plain: Any = node
    if hasattr(node, "unwrap"):  # tomlkit items
        plain = node.unwrap()
    elif isinstance(node, str):
        plain = str(node)
    elif isinstance(node, bool):
        plain = bool(node)
    elif isinstance(node, int):
        plain = int(node)
    elif isinstance(node, float):
        plain = float(node)
    return type(plain) is type(value) and plain == value
