"""Who owns which keys: one record per config source, like kubectl's ApplySet.

kubectl marks the objects an apply created as part of an "apply set" and, with ``--prune``,
deletes only members of that set. confhub keeps the equivalent record as a document in the
tenant itself - namespace ``confhub.applysets``, key ``src-<hash of the source name>`` -
written in the same transaction as the apply it describes, so the record and the keys can never
disagree::

    {"source": "git@github.com:acme/config.git:config",
     "git": {"git_commit": "9f1c...", "git_branch": "main", "git_dirty": false},
     "files": {"models/claude-opus.yaml": "<sha256>", ...},
     "managed": ["models/claude-opus", "models/claude-opus@production", ...],
     "created": {"models/claude-opus": 17, "models/gpt": null, ...}}

``created`` lists the keys an apply from this source *created*, with the revision that created
them (``null``: the revision of this very record, since a transaction cannot know its own
revision before it commits; the next apply writes the number in). ``--prune`` deletes a key
only if it is listed there and its current incarnation was created at that revision (a key
deleted and re-made by hand is not ours any more). Keys that existed before (made by hand)
and were merely updated are never listed, so they are never pruned. The record is an
ordinary document: it travels with exports and backups, and its history shows every apply.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from ..errors import NotFound
from ..model import BASE_ENV, thaw
from .gitinfo import GitInfo
from .layout import INVENTORY_NAMESPACE, Address, Layout

__all__ = ["Inventory", "address_text", "parse_address", "read_inventory", "source_name"]


def address_text(address: Address) -> str:
    env, namespace, key = address
    return f"{namespace}/{key}" + ("" if env == BASE_ENV else f"@{env}")


def parse_address(text: str) -> Address:
    where, _, env = text.partition("@")
    namespace, _, key = where.partition("/")
    return (env or BASE_ENV, namespace, key)


def source_name(layout: Layout, git: GitInfo | None) -> str:
    """The name that identifies a directory across machines and checkouts: ``source`` from
    confhub.toml, else the git remote (or repository folder name) plus the path inside the
    repository, else the absolute path."""
    if layout.config.source:
        return layout.config.source
    root = layout.root.resolve()
    if git is not None:
        inside = root.relative_to(git.toplevel.resolve()).as_posix()
        return f"{git.remote or git.toplevel.name}:{inside}"
    return str(root)


@dataclass(frozen=True)
class Inventory:
    """A source's ownership record as read from the tenant (``version`` 0: none yet)."""

    source: str
    version: int = 0
    applied_revision: int = 0
    applied_at: str | None = None
    git: dict[str, Any] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    managed: tuple[Address, ...] = ()
    created: dict[Address, int | None] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return "src-" + hashlib.sha256(self.source.encode()).hexdigest()[:20]

    def document(self) -> dict[str, Any]:
        return {
            "source": self.source, "git": self.git, "files": dict(self.files),
            "managed": sorted(address_text(a) for a in self.managed),
            "created": {address_text(a): t for a, t in sorted(self.created.items())},
        }

    @classmethod
    def from_entry(cls, entry: Any) -> Inventory:
        """The record as stored in ``entry``: its own revision is the apply's revision."""
        data = entry.value
        created = {parse_address(a): (int(r) if r is not None else entry.revision)
                   for a, r in (data.get("created") or {}).items()}
        return cls(source=str(data.get("source", "")), version=entry.version,
                   applied_revision=entry.revision, applied_at=entry.updated_at.isoformat(),
                   git=thaw(data.get("git") or {}), files=dict(data.get("files") or {}),
                   managed=tuple(parse_address(a) for a in data.get("managed") or ()),
                   created=created)


def read_inventory(tenant: Any, source: str) -> Inventory:
    """The source's record in ``tenant`` (an empty one when it never applied there)."""
    empty = Inventory(source=source)
    try:
        entry = tenant.get(INVENTORY_NAMESPACE, empty.key)
    except NotFound:
        return empty
    return Inventory.from_entry(entry)
