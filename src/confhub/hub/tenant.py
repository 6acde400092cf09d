"""``Tenant``: everything one tenant offers (DESIGN.md section 2), assembled from its parts.

Each part is one concern in a module of its own, and all of them share the hub's ``Core``:

    Reads          hub/reads.py           get, list, resolve, history, diff, get_typed
    Writes         hub/txn.py             set, patch, delete, rollback, transaction
    Snapshots      hub/snapshots.py       snapshot, snapshots, restore
    Feed           hub/feed.py            changes, watch, watch_events, watch_async
    SchemaChanges  hub/schema_changes.py  validate, set/get/delete/rollback schema, ...

``live`` (a typed value kept current, ``confhub.live``) needs both reads and the feed, so it
is defined here.

May import: ``confhub.live``, ``confhub.model`` and the hub modules that define the parts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from ..live import MISSING, Live
from ..model import BASE_ENV, check_name
from .feed import Feed
from .reads import Reads
from .schema_changes import SchemaChanges
from .snapshots import Snapshots
from .txn import Writes

T = TypeVar("T")


class Tenant(Reads, Writes, Snapshots, Feed, SchemaChanges):
    """Everything one tenant offers: reads from the cache, writes through the store.

    Get one with ``hub.tenant(name)``; nothing is read until a method is called.
    """

    def __repr__(self) -> str:
        return f"<confhub.Tenant {self.name!r} on {self._core.store.backend}>"

    def live(self, namespace: str, key: str, *, model: Callable[..., T] | None = None,
             env: str = BASE_ENV, default: Any = MISSING) -> Live[T]:
        """The key's resolved value for ``env``, kept current: ``live.value`` (an instance of
        ``model`` when given, e.g. a pydantic model), ``live.on_change(cb)``; see live.py.
        Raises NotFound if the key is missing and no ``default`` is given."""
        check_name("namespace", namespace)
        check_name("key", key)
        check_name("env", env)
        return Live(self, namespace, key, env=env, model=model, default=default)
