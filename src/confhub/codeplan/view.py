"""A tenant's resolved view for one env, read in one call: what exporters and mirrors write.

``hub.export`` returns every layer of every key at one revision; each key's value for env E is
then ``base`` deep-merged with E's layer (layering.py, the rule ``resolve`` uses), so the view
is consistent - never half of a transaction - and costs one request against a server.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..layering import merge_patch, resolve_layers
from ..model import BASE_ENV, check_name
from .layout import INVENTORY_NAMESPACE

__all__ = ["ResolvedKey", "View", "read_view", "resolve_pair"]


@dataclass(frozen=True)
class ResolvedKey:
    namespace: str
    key: str
    value: Any
    versions: dict[str, int]  # layer -> version
    revision: int  # the newest revision among the contributing layers
    secret: bool

    @property
    def version(self) -> int:
        """The version of the top layer that contributes (the env's, else base's)."""
        return list(self.versions.values())[-1]


@dataclass(frozen=True)
class View:
    tenant: str
    env: str
    revision: int
    keys: dict[tuple[str, str], ResolvedKey] = field(default_factory=dict)

    def namespaces(self) -> list[str]:
        return sorted({ns for ns, _ in self.keys})

    def nested(self, *, include_secrets: bool = True) -> dict[str, dict[str, Any]]:
        """``{namespace: {key: value}}``, sorted."""
        out: dict[str, dict[str, Any]] = {}
        for (namespace, key), item in sorted(self.keys.items()):
            if include_secrets or not item.secret:
                out.setdefault(namespace, {})[key] = item.value
        return out


def resolve_pair(base: Any, overlay: Any, env: str) -> Any:
    """The value of a key for ``env`` from its base and overlay layers (either may be
    missing: None)."""
    if overlay is None:
        return base
    if base is None:
        return merge_patch(None, overlay)
    return resolve_layers([(BASE_ENV, base), (env, overlay)])[0]


def read_view(hub: Any, tenant: str, env: str = BASE_ENV, *, namespace: str | None = None,
              include_secrets: bool = False) -> View:
    """The resolved view of ``tenant`` for ``env`` (optionally one ``namespace``). Secrets
    are ``"***"`` unless ``include_secrets`` (the store checks the caller may, and audits)."""
    check_name("env", env)
    document = hub.export(tenant, include_secrets=include_secrets) if include_secrets \
        else hub.export(tenant)
    layers: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
    for item in document.get("entries", []):
        if item["env"] not in (BASE_ENV, env) or item["namespace"] == INVENTORY_NAMESPACE:
            continue
        if namespace is not None and item["namespace"] != namespace:
            continue
        layers.setdefault((item["namespace"], item["key"]), {})[item["env"]] = item
    keys: dict[tuple[str, str], ResolvedKey] = {}
    for (ns, key), found in layers.items():
        base, top = found.get(BASE_ENV), found.get(env) if env != BASE_ENV else None
        value = resolve_pair(base["value"] if base else None, top["value"] if top else None,
                             env)
        present = [layer for layer in (base, top) if layer is not None]
        keys[(ns, key)] = ResolvedKey(
            namespace=ns, key=key, value=value,
            versions={layer["env"]: int(layer["version"]) for layer in present},
            revision=max(int(layer["revision"]) for layer in present),
            secret=any(bool(layer.get("secret")) for layer in present))
    return View(tenant=tenant, env=env, revision=int(document.get("revision", 0)), keys=keys)
