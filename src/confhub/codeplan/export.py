"""``export --to DIR``: the store written out as the config layout, ready for ``plan``.

Export then plan is empty: each key becomes the file plan reads back to the same value
(secrets stay ``"***"``, which plan reads as "keep the stored secret"). A key whose file
already exists is rewritten in place in that file's format, through the round-trip writers
of formats.py, so comments, key order and formatting survive; a file whose value did not
change is not touched at all. New keys get ``confhub.toml``'s ``format`` (YAML by default);
a value TOML cannot hold (null, or not an object) is written as YAML instead.

Files of the layout whose key is not in the store are reported as stale and removed only
with ``prune``: export never deletes a file a person may still want.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import LayoutError
from ..model import BASE_ENV
from .diffs import same_json
from .formats import EXTENSIONS, dump_value, parse_file, update_text
from .layout import (
    CONFIG_FILE,
    INVENTORY_NAMESPACE,
    Address,
    SourceConfig,
    file_for,
    is_ignored,
    split_path,
)

__all__ = ["ExportResult", "export_to_directory", "write_atomically"]


@dataclass(frozen=True)
class ExportResult:
    root: str
    written: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()
    stale: tuple[str, ...] = ()  # layout files with no key in the store
    removed: tuple[str, ...] = ()
    fallbacks: tuple[str, ...] = field(default=())  # written as YAML: TOML could not hold them

    def to_dict(self) -> dict[str, Any]:
        return {"to": self.root, "written": list(self.written),
                "unchanged": len(self.unchanged), "stale": list(self.stale),
                "removed": list(self.removed), "fallbacks": list(self.fallbacks)}


def write_atomically(path: Path, text: str) -> None:
    """Write via a temporary file and a rename: an interrupted export leaves no half file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _existing(root: Path, config: SourceConfig) -> dict[Address, str]:
    found: dict[Address, str] = {}
    if not root.is_dir():
        return found
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if path.is_file() and not is_ignored(relative, config) and relative != CONFIG_FILE:
            address = split_path(relative)
            if address is not None:
                found.setdefault(address, relative)
    return found


def _live(hub: Any, tenant: str, envs: list[str] | None, namespaces: list[str] | None
          ) -> dict[Address, Any]:
    """Current values (secrets masked) from one export call: every layer at one revision."""
    values: dict[Address, Any] = {}
    for item in hub.export(tenant).get("entries", []):
        address = (item["env"], item["namespace"], item["key"])
        if address[1] != INVENTORY_NAMESPACE and _in_scope(address, envs, namespaces):
            values[address] = item["value"]
    return values


def export_to_directory(hub: Any, tenant_name: str, root: str | Path, *,
                        envs: list[str] | None = None, namespaces: list[str] | None = None,
                        file_format: str | None = None, prune: bool = False) -> ExportResult:
    """Write tenant ``tenant_name`` (its ``envs`` layers and ``namespaces``, default all) into
    ``root`` as the config layout."""
    base = Path(root)
    config = SourceConfig.read(base) if base.is_dir() else SourceConfig()
    fmt = file_format or config.format
    if envs is None and config.envs is not None:  # only the layers the directory owns
        envs = [BASE_ENV, *config.envs]
    if fmt not in EXTENSIONS:
        raise LayoutError(f"--format {fmt!r}: files are one of {', '.join(EXTENSIONS)}",
                          file=str(base))
    live = _live(hub, tenant_name, envs, namespaces)
    existing = _existing(base, config)
    written: list[str] = []
    unchanged: list[str] = []
    fallbacks: list[str] = []
    for address, value in sorted(live.items()):
        relative = existing.get(address)
        if relative is not None:
            path = base / relative
            ext = relative.rpartition(".")[2]
            old_text = path.read_text(encoding="utf-8")
            try:
                if same_json(parse_file(old_text, ext, relative), value):
                    unchanged.append(relative)
                    continue
            except LayoutError:
                pass  # unreadable: rewrite it whole
            try:
                text = update_text(old_text, value, ext, relative)
            except LayoutError:
                path.unlink()
                relative = file_for(address, "yaml")
                text = dump_value(value, "yaml", relative)
                fallbacks.append(relative)
        else:
            relative = file_for(address, fmt)
            try:
                text = dump_value(value, fmt, relative)
            except LayoutError:
                relative = file_for(address, "yaml")
                text = dump_value(value, "yaml", relative)
                fallbacks.append(relative)
        write_atomically(base / relative, text)
        written.append(relative)
    stale = sorted(existing[a] for a in existing if a not in live and _in_scope(a, envs,
                                                                                 namespaces))
    removed: list[str] = []
    if prune:
        for relative in stale:
            (base / relative).unlink()
            removed.append(relative)
    if not (base / CONFIG_FILE).exists():
        write_atomically(base / CONFIG_FILE, f'tenant = "{tenant_name}"\n')
        written.append(CONFIG_FILE)
    return ExportResult(root=str(base), written=tuple(written), unchanged=tuple(unchanged),
                        stale=tuple(s for s in stale if s not in removed),
                        removed=tuple(removed), fallbacks=tuple(fallbacks))


def _in_scope(address: Address, envs: list[str] | None, namespaces: list[str] | None) -> bool:
    return (envs is None or address[0] in envs) and (not namespaces or address[1] in namespaces)
