"""``${VAR}`` and ``${VAR:-default}`` in string values, resolved by consumers that ask.

The store keeps the raw text; ``resolve(..., interpolate=True)``, ``live(...,
interpolate=True)`` and ``confhub get --interpolate`` substitute from the environment of the
process that reads. Worked example, with ``REGION=eu`` set and ``TIER`` unset::

    "https://${REGION}.api.example.com"   -> "https://eu.api.example.com"
    "${TIER:-standard}"                   -> "standard"   (unset or empty: the default)
    "${TIER}"                             -> error: variable TIER is not set (at /url)
    "cost: $$5 and $${NOT_A_VAR}"         -> "cost: $5 and ${NOT_A_VAR}"   ($$ is a literal $)
    "$HOME and ${ unclosed"               -> unchanged (only ${NAME...} is special)

Only string values (not object keys) are interpolated; the result is always a string. A
default is literal text: ``${A:-${B}}`` does not nest.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from typing import Any

from .errors import MissingVariable
from .model import Resolved, freeze

__all__ = ["interpolate", "interpolate_text", "interpolated"]

_PATTERN = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def interpolate_text(text: str, environ: Mapping[str, str] | None = None, *,
                     where: str = "") -> str:
    """``text`` with every ``${VAR}`` / ``${VAR:-default}`` substituted (``$$`` -> ``$``)."""
    env = os.environ if environ is None else environ

    def substitute(found: re.Match[str]) -> str:
        if found.group(0) == "$$":
            return "$"
        name, default = found.group(1), found.group(2)
        value = env.get(name)
        if default is not None:
            return value if value else default
        if value is None:
            raise MissingVariable(f"variable {name} is not set" + (f" (at {where})" if where
                                                                   else "")
                                  + f"; set it or write ${{{name}:-default}}",
                                  variable=name, path=where)
        return value

    return _PATTERN.sub(substitute, text)


def interpolate(value: Any, environ: Mapping[str, str] | None = None, *, _path: str = ""
                ) -> Any:
    """A copy of the JSON ``value`` with every string interpolated."""
    if isinstance(value, str):
        return interpolate_text(value, environ, where=_path or "/")
    if isinstance(value, Mapping):
        return {k: interpolate(v, environ,
                               _path=f"{_path}/{k.replace('~', '~0').replace('/', '~1')}")
                for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [interpolate(v, environ, _path=f"{_path}/{i}") for i, v in enumerate(value)]
    return value


def interpolated(resolved: Resolved) -> Resolved:
    """``resolved`` with its value interpolated (what ``resolve(..., interpolate=True)``
    returns)."""
    return dataclasses.replace(resolved, value=freeze(interpolate(resolved.value)))
