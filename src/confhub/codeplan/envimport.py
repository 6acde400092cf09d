"""``import-env``: environment variables into a document, the way off env-var configuration.

With prefix ``APP_``: the prefix is cut, ``__`` nests, names are lower-cased, and each value
is a JSON scalar when it reads as one (``8080``, ``0.5``, ``true``, ``null``) and a string
otherwise::

    APP_DB__HOST=db.internal   APP_DB__PORT=5432   APP_DEBUG=true   APP_NAME=shop
    -> {"db": {"host": "db.internal", "port": 5432}, "debug": true, "name": "shop"}

A variable that is both a value and a parent (``APP_DB=x`` and ``APP_DB__HOST=y``) is refused,
naming both.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ..errors import InvalidRequest

__all__ = ["document_from_env", "scalar"]


def scalar(text: str) -> Any:
    """``text`` as a JSON scalar when it is one, else the text itself."""
    if text.strip() != text:
        return text  # " 1" was written as text on purpose
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return text if isinstance(value, dict | list) else value


def document_from_env(environ: Mapping[str, str], prefix: str) -> dict[str, Any]:
    """The document the variables starting with ``prefix`` describe (see the module doc)."""
    if not prefix:
        raise InvalidRequest("--prefix is required (for example APP_): importing the whole "
                             "environment would copy secrets and noise")
    document: dict[str, Any] = {}
    origin: dict[tuple[str, ...], str] = {}
    for name in sorted(environ):
        if not name.startswith(prefix) or name == prefix:
            continue
        parts = tuple(p.lower() for p in name[len(prefix):].split("__"))
        if any(not p for p in parts):
            raise InvalidRequest(f"{name}: empty name part (three underscores, or a trailing "
                                 "__?)", variable=name)
        node = document
        for depth, part in enumerate(parts[:-1]):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise InvalidRequest(f"{name} nests under {origin[parts[:depth + 1]]}, which "
                                     "is a value", variable=name)
            node = child
        if parts[-1] in node:
            other = origin.get(parts) or next(v for k, v in origin.items()
                                              if k[:len(parts)] == parts)
            raise InvalidRequest(f"{name} and {other} both define {'.'.join(parts)}",
                                 variable=name)
        node[parts[-1]] = scalar(environ[name])
        origin[parts] = name
    return document
