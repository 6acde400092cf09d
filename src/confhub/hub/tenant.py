"""``Tenant``: everything one tenant offers (DESIGN.md section 2), assembled from its parts.

Each part is one concern in a module of its own, and all of them share the hub's ``Core``:

    Reads          hub/reads.py           get, list, resolve, history, diff, get_typed
    Writes         hub/txn.py             set, patch, delete, rollback, transaction
    Snapshots      hub/snapshots.py       snapshot, snapshots, restore
    Feed           hub/feed.py            changes, watch, watch_events, watch_async
    SchemaChanges  hub/schema_changes.py  validate, set/get/delete/rollback schema, ...
    rollouts       hub/staging.py         cfg.rollouts: staged rollouts (DESIGN.md section 8)

A tenant opened with an identity (``hub.tenant("acme", client_id=..., labels=...)``) reads as
that consumer: staged values of the rollouts whose cohort it is in, through every read path.

``live`` (a typed value kept current, ``confhub.live``) needs both reads and the feed, so it
is defined here.

May import: ``confhub.live``, ``confhub.model`` and the hub modules that define the parts.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable
from functools import cached_property
from typing import Any, TypeVar

from ..identity import Consumer
from ..live import MISSING, Live
from ..model import BASE_ENV, check_name
from .feed import Feed
from .reads import Reads
from .schema_changes import SchemaChanges
from .snapshots import Snapshots
from .staging import Rollouts
from .txn import Writes

T = TypeVar("T")


class Tenant(Reads, Writes, Snapshots, Feed, SchemaChanges):
    """Everything one tenant offers: reads from the cache, writes through the store.

    Get one with ``hub.tenant(name)``; nothing is read until a method is called.
    """

    def __repr__(self) -> str:
        who = f" as {self.identity.client_id!r}" if self.identity is not None else ""
        return f"<confhub.Tenant {self.name!r}{who} on {self._core.store.backend}>"

    @cached_property
    def rollouts(self) -> Rollouts:
        """Staged rollouts of this tenant: start, get, list, advance, pause, resume,
        rollback, report."""
        return Rollouts(self)

    def consumers(self, client_id: str | None = None) -> builtins.list[Consumer]:
        """The consumer registry: who read this tenant (or one consumer), with labels, when
        last seen, the revision it read, the running rollouts it is in, its last reports."""
        return self.rollouts.consumers(client_id)

    def report(self, rollout_id: str, status: str, reason: str | None = None) -> None:
        """Report on a running rollout as this consumer (see ``rollouts.report``)."""
        self.rollouts.report(rollout_id, status, reason)

    def report_health(self, ok: bool = True, reason: str | None = None) -> builtins.list[str]:
        """This consumer's health, to every running rollout whose cohort it is in (``ok=False``
        counts as a failure in their gate); returns their ids."""
        return self.rollouts.report_health(ok, reason)

    def live(self, namespace: str, key: str, *, model: Callable[..., T] | None = None,
             env: str = BASE_ENV, default: Any = MISSING) -> Live[T]:
        """The key's resolved value for ``env``, kept current: ``live.value`` (an instance of
        ``model`` when given, e.g. a pydantic model), ``live.on_change(cb)``; see live.py.
        Raises NotFound if the key is missing and no ``default`` is given."""
        check_name("namespace", namespace)
        check_name("key", key)
        check_name("env", env)
        return Live(self, namespace, key, env=env, model=model, default=default)
