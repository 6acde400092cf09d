"""``export --format``: a resolved view as json, yaml, toml, a ``.env`` file or Kubernetes
manifests.

json/yaml/toml print ``{namespace: {key: value}}`` (``{key: value}`` for one namespace).

``env`` flattens every leaf to ``NS_KEY_FIELD=value`` (upper case; any character outside
``A-Z0-9`` becomes ``_``; list items by index). Quoting is chosen so that python-dotenv and a
POSIX shell (``. ./file``) read back the same string:

- single quotes when the value has no ``'`` and no backslash before ``\\`` or ``'`` - both
  read single-quoted text literally (newlines, ``$``, ``"`` and unicode included);
- otherwise double quotes, escaping ``\\`` and ``"``, when the value has no ``$`` or backtick;
- a value with both a single quote and ``$``/backtick has no common quoting and is refused
  with an error naming the variable.

python-dotenv expands ``${VAR}`` even in single quotes (its default ``interpolate=True``) the
way confhub's consumer-side interpolation does; read with ``interpolate=False`` for raw text.

``k8s`` writes one ConfigMap per namespace (each key's JSON under ``data.<key>``) and, only
with ``include_secrets``, one Secret (``type: Opaque``, base64) for the keys holding secrets;
without it those keys are left out, never written masked.
"""

from __future__ import annotations

import base64
import io
import json
import re
from collections.abc import Mapping
from typing import Any

import tomlkit
from ruamel.yaml import YAML

from ..errors import InvalidRequest, InvalidValue
from .view import View

__all__ = ["FORMATS", "env_lines", "quote_env", "render"]

FORMATS: tuple[str, ...] = ("json", "yaml", "toml", "env", "k8s")
_ENV_NAME = re.compile(r"[^A-Z0-9]+")
_DNS = re.compile(r"[^a-z0-9-]+")


def render(view: View, fmt: str, *, namespace: str | None = None, prefix: str | None = None,
           include_secrets: bool = False) -> str:
    """The text of ``view`` in format ``fmt``."""
    nested = view.nested(include_secrets=include_secrets or fmt not in ("k8s",))
    data: Any = nested.get(namespace, {}) if namespace else nested
    if fmt == "json":
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    if fmt == "yaml":
        stream = io.StringIO()
        yaml = YAML(typ="safe", pure=True)
        yaml.default_flow_style = False
        yaml.dump(data, stream)
        return stream.getvalue()
    if fmt == "toml":
        _check_toml(data, "")
        return tomlkit.dumps(data)
    if fmt == "env":
        return "".join(f"{line}\n" for line in env_lines(nested, prefix=prefix))
    if fmt == "k8s":
        return _k8s(view, namespace, include_secrets)
    raise InvalidRequest(f"--format {fmt!r} is not one of {', '.join(FORMATS)}")


def _check_toml(value: Any, path: str) -> None:
    if value is None:
        raise InvalidValue(f"TOML has no null: {path} is null; use --format json or yaml",
                           path=path)
    if isinstance(value, Mapping):
        for name, item in value.items():
            _check_toml(item, f"{path}.{name}" if path else name)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_toml(item, f"{path}[{index}]")


# --------------------------------------------------------------------------- env


def _env_name(parts: list[str]) -> str:
    return "_".join(_ENV_NAME.sub("_", part.upper()).strip("_") or "_" for part in parts)


def _leaves(value: Any, parts: list[str]) -> list[tuple[list[str], Any]]:
    if isinstance(value, Mapping) and value:
        return [leaf for name, item in value.items() for leaf in _leaves(item, parts + [name])]
    if isinstance(value, list) and value:
        return [leaf for i, item in enumerate(value) for leaf in _leaves(item, parts + [str(i)])]
    return [(parts, value)]


def quote_env(name: str, value: str) -> str:
    """``value`` quoted for a .env line read identically by python-dotenv and sh."""
    if "\0" in value:
        raise InvalidValue(f"{name}: a NUL character cannot be in an environment variable",
                           variable=name)
    if "'" not in value and not re.search(r"\\[\\']", value):
        return f"'{value}'"
    if "$" not in value and "`" not in value:
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    raise InvalidValue(f"{name}: a value with both ' and $ (or `) cannot be quoted so that "
                       "python-dotenv and sh read it back the same; export it as json",
                       variable=name)


def env_lines(nested: Mapping[str, Mapping[str, Any]], *, prefix: str | None = None
              ) -> list[str]:
    """``NAME='value'`` lines for every leaf (strings as they are, other JSON as JSON text),
    only names starting with ``prefix`` when given. Two paths that flatten to one name are
    refused."""
    seen: dict[str, str] = {}
    lines = []
    for namespace, keys in nested.items():
        for key, value in keys.items():
            for parts, leaf in _leaves(value, [namespace, key]):
                name = _env_name(parts)
                if prefix and not name.startswith(prefix.upper()):
                    continue
                where = "/".join(parts)
                if name in seen:
                    raise InvalidValue(f"{seen[name]} and {where} both become {name}; rename "
                                       "one of them or export as json", variable=name)
                seen[name] = where
                text = leaf if isinstance(leaf, str) else json.dumps(leaf, ensure_ascii=False)
                lines.append(f"{name}={quote_env(name, text)}")
    return lines


# --------------------------------------------------------------------------- k8s


def _dns_name(*parts: str) -> str:
    """A DNS-1123 name (what metadata.name must be) built from confhub names."""
    name = _DNS.sub("-", "-".join(parts).lower().replace(".", "-")).strip("-")
    return name[:253].rstrip("-") or "confhub"


def _manifest(kind: str, name: str, view: View, namespace: str, data: dict[str, str]
              ) -> dict[str, Any]:
    manifest: dict[str, Any] = {
        "apiVersion": "v1", "kind": kind,
        "metadata": {"name": name,
                     "labels": {"app.kubernetes.io/managed-by": "confhub"},
                     "annotations": {"confhub.dev/tenant": view.tenant,
                                     "confhub.dev/env": view.env,
                                     "confhub.dev/namespace": namespace,
                                     "confhub.dev/revision": str(view.revision)}},
    }
    if kind == "Secret":
        manifest["type"] = "Opaque"
    manifest["data"] = data
    return manifest


def _k8s(view: View, only: str | None, include_secrets: bool) -> str:
    documents: list[dict[str, Any]] = []
    for namespace in view.namespaces():
        if only and namespace != only:
            continue
        items = {k: v for (ns, k), v in sorted(view.keys.items()) if ns == namespace}
        plain = {k: json.dumps(v.value, ensure_ascii=False) for k, v in items.items()
                 if not v.secret}
        base = _dns_name(view.tenant, namespace, *([] if view.env == "base" else [view.env]))
        if plain:
            documents.append(_manifest("ConfigMap", base, view, namespace, plain))
        secret = {k: base64.b64encode(json.dumps(v.value, ensure_ascii=False).encode())
                  .decode() for k, v in items.items() if v.secret}
        if secret and include_secrets:
            documents.append(_manifest("Secret", base + "-secrets", view, namespace, secret))
    stream = io.StringIO()
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    yaml.explicit_start = True
    yaml.dump_all(documents, stream)
    return stream.getvalue()
