"""Reading values and documents from an argument, a file (``-f``) or stdin (``-``).

Values are JSON; YAML is accepted too because people keep configuration in YAML. Text that is
neither (``confhub set app/motd hello``) would parse as a YAML string, which is what a user
means; ``--string`` stores the text verbatim without any parsing at all.

YAML is read with timestamps switched off: ``2024-01-01`` stays a string, because a config value
must be plain JSON and a silent ``date`` object would be refused later with a worse message.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Any

from ..errors import InvalidRequest, InvalidValue

__all__ = ["load_document", "parse", "read_text", "read_value"]

# PyYAML ships no type information; holding the module as Any keeps mypy --strict honest about
# that instead of sprinkling ignores (and needs no stub package).
yaml: Any = importlib.import_module("yaml")

# SafeLoader without implicit timestamps, so every scalar maps to a JSON scalar.
_JsonishLoader: Any = type("_JsonishLoader", (yaml.SafeLoader,), {})
_JsonishLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def read_text(source: str) -> str:
    """The text of a file path, or of stdin for ``-``; a missing file is a usage error."""
    if source == "-":
        return sys.stdin.read()
    path = Path(source)
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidRequest(f"file not found: {source}", path=source) from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as error:
        raise InvalidRequest(f"cannot read {source}: {error}", path=source) from None


def parse(text: str, *, origin: str, prefer_yaml: bool = False) -> Any:
    """Parse JSON (or YAML) text into a JSON value; ``origin`` names the source in errors."""
    json_error: json.JSONDecodeError | None = None
    if not prefer_yaml:
        try:
            return json.loads(text)
        except json.JSONDecodeError as error:
            json_error = error
    try:
        value = yaml.load(text, Loader=_JsonishLoader)  # a SafeLoader subclass: no objects
    except yaml.YAMLError as error:
        if json_error is not None and text.lstrip()[:1] in ("{", "[", '"'):
            # It was meant as JSON: the JSON parser's message is the one that helps.
            raise InvalidValue(f"{origin} is not valid JSON: {json_error}",
                               origin=origin) from None
        raise InvalidValue(f"{origin} is neither JSON nor YAML: {error}", origin=origin) from None
    _check_json_keys(value, origin)
    return value


def _check_json_keys(value: Any, origin: str) -> None:
    # YAML allows keys such as 1 or true; JSON does not, and the store would refuse them later.
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidValue(f"{origin}: object key {key!r} is not a string", origin=origin)
            _check_json_keys(item, origin)
    elif isinstance(value, list):
        for item in value:
            _check_json_keys(item, origin)


def read_value(value: str | None, file: str | None, *, string: bool = False) -> Any:
    """The value of ``set``/``patch``: from the argument, ``-f FILE`` or stdin (``-``).

    Exactly one source must be given; ``--string`` keeps the text as a JSON string.
    """
    if value is not None and file is not None:
        raise InvalidRequest("give the value as an argument or with -f/--file, not both")
    if value is None and file is None:
        raise InvalidRequest("no value: pass it as an argument, with -f FILE, or '-' for stdin")
    if file is not None:
        source = file
    elif value == "-":
        source = "-"
    else:
        source = None
    if source is None:
        assert value is not None
        return value if string else parse(value, origin="the value argument")
    text = read_text(source)
    if string:
        return text[:-1] if text.endswith("\n") else text
    origin = "stdin" if source == "-" else source
    return parse(text, origin=origin, prefer_yaml=source.endswith((".yaml", ".yml")))


def load_document(source: str) -> Any:
    """A whole JSON/YAML document from a file or stdin (``txn`` ops, ``import``, overrides)."""
    text = read_text(source)
    origin = "stdin" if source == "-" else source
    return parse(text, origin=origin, prefer_yaml=source.endswith((".yaml", ".yml")))
