"""Who is reading: a consumer's ``client_id`` and ``labels`` (DESIGN.md section 8).

A process that reads through an identified tenant (``hub.tenant("acme", client_id="api-7",
labels={"region": "eu"})``) is a *consumer*: the hub registers it, and a rollout whose cohort
it falls in shows it the staged values. Over HTTP the identity travels in two headers, on
every read and on the watch stream::

    X-Confhub-Client: api-7
    X-Confhub-Labels: region=eu,tier=web

(or ``?client_id=`` for a plain HTTP reader that cannot set headers). Asking for labels
without a client id gives the process a generated one, kept in the confhub cache directory so
that a restart keeps its place in every cohort.
"""

from __future__ import annotations

import os
import socket
import tempfile
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from .cohort import check_client_id, parse_labels
from .errors import InvalidRequest

__all__ = ["CLIENT_HEADER", "LABELS_HEADER", "Consumer", "Identity", "cache_dir",
           "persisted_client_id", "reporter"]

CLIENT_HEADER = "x-confhub-client"
LABELS_HEADER = "x-confhub-labels"


@dataclass(frozen=True, slots=True)
class Identity:
    """A consumer: a stable client id and labels (sorted pairs, so it hashes)."""

    client_id: str
    labels: tuple[tuple[str, str], ...] = ()
    # One string for the whole identity, made once: the hot read path keys caches by it
    # (a str caches its hash; a dataclass of tuples would hash them on every read).
    token: str = field(default="", compare=False, repr=False)

    def __post_init__(self) -> None:
        labels = ",".join(f"{k}={v}" for k, v in self.labels)
        object.__setattr__(self, "token", f"{self.client_id}\x00{labels}")

    @classmethod
    def of(cls, client_id: str | None, labels: Mapping[str, str] | str | None
           ) -> Identity | None:
        """The identity asked for, or None (anonymous) when neither part is given; labels
        alone get the persisted generated client id."""
        if client_id is None and labels is None:
            return None
        cid = check_client_id(client_id) if client_id is not None else persisted_client_id()
        return cls(cid, tuple(parse_labels(labels).items()))

    @property
    def label_map(self) -> dict[str, str]:
        return dict(self.labels)

    def headers(self) -> dict[str, str]:
        out = {CLIENT_HEADER: self.client_id}
        if self.labels:
            out[LABELS_HEADER] = ",".join(f"{k}={v}" for k, v in self.labels)
        return out


def reporter(client_id: str | None, identity: Identity | None, *, doing: str = "a report"
             ) -> str:
    """The client id a rollout report is made as: ``client_id`` if given, else the id of the
    tenant's identity; an anonymous tenant is refused (InvalidRequest, 400).

    One check for the embedded ``cfg.rollouts`` and the remote one, so both refuse alike
    before anything is sent or stored. ``doing`` names what was asked in the message.
    """
    who = client_id or (identity.client_id if identity is not None else None)
    if who is None:
        raise InvalidRequest(f"{doing} needs a client id: open the tenant with "
                             "client_id=... or labels=...")
    return who


def cache_dir() -> Path:
    """``$CONFHUB_CACHE_DIR``, else ``$XDG_CACHE_HOME/confhub``, else ``~/.cache/confhub``."""
    explicit = os.environ.get("CONFHUB_CACHE_DIR")
    if explicit:
        return Path(explicit)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "confhub"


def persisted_client_id(directory: Path | None = None) -> str:
    """This machine's generated client id (``<host>-<12 hex>``), created once and kept in
    ``client_id`` under the cache directory; written atomically, so two processes starting at
    once agree on the one that landed."""
    path = (directory or cache_dir()) / "client_id"
    try:
        existing = path.read_text("utf-8").strip()
        if existing:
            return check_client_id(existing)
    except (OSError, ValueError):
        pass
    host = "".join(c for c in socket.gethostname() if c.isalnum() or c in "-.")[:40] or "host"
    fresh = f"{host}-{uuid.uuid4().hex[:12]}"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(fresh + "\n")
        if not path.exists():
            os.replace(tmp, path)
        else:
            os.unlink(tmp)
        return check_client_id(path.read_text("utf-8").strip())
    except (OSError, ValueError):
        return fresh  # a read-only home: an id for this process only


@dataclass(frozen=True, slots=True)
class Consumer:
    """A consumer as the registry lists it: identity, when it was seen, the revision it read
    last, whether it is connected now, the running rollouts it is in and its last reports
    (``{"rollout", "status", "reason", "step", "at"}``, newest first)."""

    tenant: str
    client_id: str
    labels: Mapping[str, str]
    first_seen: datetime
    last_seen: datetime
    revision: int
    connected: bool = False
    rollouts: tuple[str, ...] = ()
    reports: tuple[Mapping[str, Any], ...] = field(default=(), compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {"tenant": self.tenant, "client_id": self.client_id, "labels": dict(self.labels),
                "first_seen": self.first_seen.isoformat(),
                "last_seen": self.last_seen.isoformat(), "revision": self.revision,
                "connected": self.connected, "rollouts": list(self.rollouts),
                "reports": [dict(r) for r in self.reports]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Consumer:
        return cls(tenant=data["tenant"], client_id=data["client_id"],
                   labels=dict(data.get("labels") or {}),
                   first_seen=datetime.fromisoformat(data["first_seen"]),
                   last_seen=datetime.fromisoformat(data["last_seen"]),
                   revision=int(data.get("revision", 0)),
                   connected=bool(data.get("connected")),
                   rollouts=tuple(data.get("rollouts") or ()),
                   reports=tuple(data.get("reports") or ()))
