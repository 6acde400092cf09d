"""The config directory: desired state as files, read into one :class:`Layout`.

The layout (DESIGN.md section 5)::

    config/
      confhub.toml                      optional: tenant, owned envs, options
      models/claude-opus.yaml           base layer: <namespace>/<key>.<ext>
      routing/tiers.json
      env/production/models/claude-opus.yaml   overlay: env/<env>/<namespace>/<key>.<ext>

Extensions are ``.yaml``, ``.yml``, ``.json`` and ``.toml``; the key is the file name without
it (``a.b.yaml`` is key ``a.b``). Hidden files and folders (``.git``, ``.github``) and Markdown
notes are ignored; anything else outside the layout is an error naming the file, as are a bad
name, an unparseable file and two files for one key. ``env`` at the top is the overlay folder,
so no base namespace can be called ``env``.
"""

from __future__ import annotations

import fnmatch
import hashlib
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InvalidName, LayoutError
from ..model import BASE_ENV, check_name
from .formats import EXTENSIONS, parse_file

__all__ = [
    "CONFIG_FILE",
    "INVENTORY_NAMESPACE",
    "Address",
    "DesiredKey",
    "Layout",
    "SourceConfig",
    "file_for",
    "is_ignored",
    "load_directory",
    "split_path",
]

CONFIG_FILE = "confhub.toml"
ENV_FOLDER = "env"
# The namespace that holds each source's ownership record (see ownership.py). It is never
# read from or written to a directory.
INVENTORY_NAMESPACE = "confhub.applysets"
PRODUCTION_ENVS: tuple[str, ...] = ("production", "prod", "prd", "live")
_IGNORED = ("*.md", "*.txt", "*.rst", "LICENSE*")

Address = tuple[str, str, str]  # (env, namespace, key)


@dataclass(frozen=True)
class SourceConfig:
    """What ``confhub.toml`` says (every field optional)::

        tenant = "acme"                 # default tenant for plan/apply/drift
        envs = ["staging", "production"]  # overlay envs this directory owns
        source = "acme-config"          # ownership id; default: derived from git or the path
        max_risk = "HIGH"               # default --max-risk
        production_envs = ["production"]  # envs the MEDIUM "production-like" rule means
        format = "yaml"                 # file type export writes for new keys
        ignore = ["drafts/*"]           # extra globs (relative paths) to skip
    """

    tenant: str | None = None
    envs: tuple[str, ...] | None = None
    source: str | None = None
    max_risk: str | None = None
    production_envs: tuple[str, ...] = PRODUCTION_ENVS
    format: str = "yaml"
    ignore: tuple[str, ...] = ()

    @classmethod
    def read(cls, root: Path) -> SourceConfig:
        path = root / CONFIG_FILE
        if not path.is_file():
            return cls()
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise LayoutError(f"{CONFIG_FILE}: invalid TOML: {exc}", file=CONFIG_FILE) from None
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SourceConfig:
        known = {"tenant", "envs", "source", "max_risk", "production_envs", "format", "ignore"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise LayoutError(f"{CONFIG_FILE}: unknown option {unknown[0]!r} (known: "
                              + ", ".join(sorted(known)) + ")", file=CONFIG_FILE)

        def names(option: str, kind: str) -> tuple[str, ...] | None:
            value = data.get(option)
            if value is None:
                return None
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise LayoutError(f"{CONFIG_FILE}: {option} must be a list of names",
                                  file=CONFIG_FILE)
            return tuple(_checked(kind, v, CONFIG_FILE) for v in value)

        tenant = data.get("tenant")
        if tenant is not None:
            tenant = _checked("tenant", tenant, CONFIG_FILE)
        fmt = data.get("format", "yaml")
        if fmt not in EXTENSIONS:
            raise LayoutError(f"{CONFIG_FILE}: format must be one of {', '.join(EXTENSIONS)}",
                              file=CONFIG_FILE)
        ignore = data.get("ignore", [])
        if not isinstance(ignore, list) or not all(isinstance(v, str) for v in ignore):
            raise LayoutError(f"{CONFIG_FILE}: ignore must be a list of globs", file=CONFIG_FILE)
        source = data.get("source")
        if source is not None and not isinstance(source, str):
            raise LayoutError(f"{CONFIG_FILE}: source must be a string", file=CONFIG_FILE)
        max_risk = data.get("max_risk")
        if max_risk is not None:
            from .risk import parse_level  # risk imports nothing of the layout

            parse_level(str(max_risk), where=f"{CONFIG_FILE}: max_risk")
        return cls(tenant=tenant, envs=names("envs", "env"), source=source,
                   max_risk=max_risk,
                   production_envs=names("production_envs", "env") or PRODUCTION_ENVS,
                   format=fmt, ignore=tuple(ignore))


@dataclass(frozen=True)
class DesiredKey:
    """One key as a file wants it: ``value`` is the layer's document (an overlay for envs)."""

    env: str
    namespace: str
    key: str
    value: Any
    file: str  # relative to the directory, with forward slashes

    @property
    def address(self) -> Address:
        return (self.env, self.namespace, self.key)


@dataclass(frozen=True)
class Layout:
    """A directory read whole: its options, its keys by address and a digest per file."""

    root: Path
    config: SourceConfig
    keys: dict[Address, DesiredKey] = field(default_factory=dict)
    digests: dict[str, str] = field(default_factory=dict)

    @property
    def envs(self) -> list[str]:
        """Env layers present in the directory, ``base`` first."""
        found = {address[0] for address in self.keys}
        return [BASE_ENV] * (BASE_ENV in found) + sorted(found - {BASE_ENV})

    def namespaces(self, env: str) -> list[str]:
        return sorted({ns for (e, ns, _) in self.keys if e == env})


def _checked(kind: str, name: object, file: str) -> str:
    try:
        return check_name(kind, name)
    except InvalidName as exc:
        raise LayoutError(f"{file}: {exc.message}", file=file, kind=kind) from None


def file_for(address: Address, ext: str) -> str:
    """The relative path a key's file has in the layout."""
    env, namespace, key = address
    head = "" if env == BASE_ENV else f"{ENV_FOLDER}/{env}/"
    return f"{head}{namespace}/{key}.{ext}"


def split_path(relative: str) -> Address | None:
    """The address a relative file path stands for, or None when it is outside the layout."""
    parts = relative.split("/")
    if len(parts) == 2 and parts[0] != ENV_FOLDER:
        env, namespace, name = BASE_ENV, parts[0], parts[1]
    elif len(parts) == 4 and parts[0] == ENV_FOLDER:
        env, namespace, name = parts[1], parts[2], parts[3]
    else:
        return None
    stem, dot, ext = name.rpartition(".")
    if not dot or ext not in EXTENSIONS or not stem:
        return None
    return (env, namespace, stem)


def _outside(relative: str) -> LayoutError:
    return LayoutError(
        f"{relative}: outside the layout: files are <namespace>/<key>.yaml|yml|json|toml or "
        f"env/<env>/<namespace>/<key>.yaml|yml|json|toml", file=relative)


def load_directory(root: str | Path, *, env: str | None = None) -> Layout:
    """Read every file of the directory into a :class:`Layout` (only ``env``'s layer when
    given). Raises LayoutError naming the first bad file."""
    base = Path(root)
    if not base.is_dir():
        raise LayoutError(f"{root}: not a directory", file=str(root))
    config = SourceConfig.read(base)
    keys: dict[Address, DesiredKey] = {}
    digests: dict[str, str] = {}
    for path in sorted(base.rglob("*")):
        relative = path.relative_to(base).as_posix()
        if path.is_dir() or is_ignored(relative, config) or relative == CONFIG_FILE:
            continue
        address = split_path(relative)
        if address is None:
            raise _outside(relative)
        layer, namespace, key = address
        if layer != BASE_ENV:
            _checked("env", layer, relative)
            if config.envs is not None and layer not in config.envs:
                raise LayoutError(f"{relative}: env {layer!r} is not one of the envs "
                                  f"{CONFIG_FILE} owns ({', '.join(config.envs)})",
                                  file=relative)
        _checked("namespace", namespace, relative)
        _checked("key", key, relative)
        if namespace == INVENTORY_NAMESPACE:
            raise LayoutError(f"{relative}: namespace {INVENTORY_NAMESPACE!r} is confhub's "
                              "own (ownership records) and cannot come from files",
                              file=relative)
        if env is not None and layer != env:
            continue
        data = path.read_bytes()
        digests[relative] = hashlib.sha256(data).hexdigest()[:20]  # 80 bits tell edits apart
        if address in keys:
            raise LayoutError(f"{relative}: {namespace}/{key} is already defined by "
                              f"{keys[address].file}; keep one file per key",
                              file=relative, other=keys[address].file)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise LayoutError(f"{relative}: not UTF-8 text", file=relative) from None
        value = parse_file(text, relative.rpartition(".")[2], relative)
        keys[address] = DesiredKey(layer, namespace, key, value, relative)
    return Layout(root=base, config=config, keys=keys, digests=digests)


def is_ignored(relative: str, config: SourceConfig) -> bool:
    if any(part.startswith(".") for part in relative.split("/")):
        return True
    name = relative.rsplit("/", 1)[-1]
    if any(fnmatch.fnmatch(name, pattern) for pattern in _IGNORED):
        return True
    return any(fnmatch.fnmatch(relative, pattern) for pattern in config.ignore)
