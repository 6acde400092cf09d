"""Drift: what moved since the last apply from a directory, in the store and in the files.

Read-only. The source's ownership record (ownership.py) says at which revision it last applied,
which keys it manages and a digest of every file it applied. Drift is then two lists:

- store: managed keys with changes after that revision (from the change feed, so each says
  who changed it, when and why);
- files: files added, modified or removed since (digests compared).

A directory that never applied to the tenant is drifted by definition: all its files are new.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..errors import NotFound
from .gitinfo import git_info
from .layout import Address, Layout
from .ownership import address_text, read_inventory, source_name

__all__ = ["DriftReport", "FileDrift", "StoreDrift", "find_drift"]


@dataclass(frozen=True)
class StoreDrift:
    """The newest change to a managed key after the last apply (``changes`` counts them)."""

    address: Address
    op: str
    version: int
    revision: int
    author: str | None
    reason: str | None
    at: datetime
    changes: int = 1

    def to_dict(self) -> dict[str, Any]:
        env, namespace, key = self.address
        return {"env": env, "namespace": namespace, "key": key, "op": self.op,
                "version": self.version, "revision": self.revision, "author": self.author,
                "reason": self.reason, "at": self.at.isoformat(), "changes": self.changes}


@dataclass(frozen=True)
class FileDrift:
    file: str
    status: str  # added | modified | removed

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "status": self.status}


@dataclass(frozen=True)
class DriftReport:
    tenant: str
    source: str
    applied_revision: int | None  # None: never applied from this source
    applied_at: str | None
    store: tuple[StoreDrift, ...] = ()
    files: tuple[FileDrift, ...] = ()
    git: dict[str, Any] = field(default_factory=dict)

    @property
    def drifted(self) -> bool:
        return self.applied_revision is None or bool(self.store) or bool(self.files)

    def to_dict(self) -> dict[str, Any]:
        return {"tenant": self.tenant, "source": self.source, "drifted": self.drifted,
                "applied_revision": self.applied_revision, "applied_at": self.applied_at,
                "last_apply_git": self.git,
                "store": [s.to_dict() for s in self.store],
                "files": [f.to_dict() for f in self.files]}


def _file_drift(now: dict[str, str], then: dict[str, str]) -> tuple[FileDrift, ...]:
    found = [FileDrift(f, "added") for f in now if f not in then]
    found += [FileDrift(f, "modified") for f in now if f in then and now[f] != then[f]]
    found += [FileDrift(f, "removed") for f in then if f not in now]
    return tuple(sorted(found, key=lambda d: d.file))


def find_drift(hub: Any, tenant_name: str, layout: Layout) -> DriftReport:
    """Compare the store and the directory with the last apply from it. Reads only."""
    tenant = hub.tenant(tenant_name)
    source = source_name(layout, git_info(layout.root))
    try:
        inventory = read_inventory(tenant, source)
    except NotFound:  # no such tenant: nothing was ever applied there
        inventory = None
    if inventory is None or not inventory.version:
        return DriftReport(tenant=tenant_name, source=source, applied_revision=None,
                           applied_at=None, files=_file_drift(layout.digests, {}))
    managed = set(inventory.managed) | set(inventory.created)
    latest: dict[Address, StoreDrift] = {}
    since = inventory.applied_revision
    while True:
        page = tenant.changes(since=since, limit=1000)
        for change in page:
            address = (change.env, change.namespace, change.key)
            if address not in managed:
                continue
            count = latest[address].changes + 1 if address in latest else 1
            latest[address] = StoreDrift(address, change.op, change.version, change.revision,
                                         change.author, change.reason, change.created_at,
                                         count)
        if len(page) < 1000:
            break
        since = page[-1].revision
    store = tuple(sorted(latest.values(), key=lambda d: address_text(d.address)))
    return DriftReport(tenant=tenant_name, source=source,
                       applied_revision=inventory.applied_revision,
                       applied_at=inventory.applied_at, store=store,
                       files=_file_drift(layout.digests, inventory.files), git=inventory.git)
