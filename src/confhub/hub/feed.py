"""A tenant's change feed and the watches built on it.

Owns ``Feed`` (part of ``Tenant``): ``changes`` (a page of the feed, optionally a long poll),
``watch`` (callbacks in a thread), ``watch_events``/``watch_async`` (asyncio) and ``revision``
(``Tenant.live`` builds on them). The plumbing under them is ``confhub.watch``
(subscriptions synced or catching up) and ``Core.subscribe``: a watcher is fed live by the
cache as each revision is applied, and falls back to reading this feed (``_feed``) while it
is behind — both flag restart-required changes the same way, so a change looks identical
whichever path delivered it.

May import: ``confhub.watch``, ``confhub.asyncwatch``, ``confhub.model``, ``confhub.errors``
and the hub's ``core``, ``cache``, ``rows``.
"""

from __future__ import annotations

import builtins
import threading
from collections.abc import AsyncIterator, Callable

from ..asyncwatch import AsyncWatch
from ..errors import NotFound
from ..model import Change, check_wait
from ..watch import Subscription, WatchFilter, WatchHandle, group_by_revision
from .cache import change_from_row
from .core import TenantPart
from .rows import check_limit, check_since


class Feed(TenantPart):
    """The change feed and watches of one tenant (part of :class:`confhub.Tenant`)."""

    def changes(self, since: int = 0, limit: int = 1000, *,
                wait: float | None = None) -> builtins.list[Change]:
        """Changes after revision ``since`` in revision order; a page never splits a
        transaction. Raises Gone if retention removed revisions after ``since``.

        With ``wait`` (seconds), an empty answer is held until a change commits or the time
        is up: a long poll for clients that cannot keep a stream open.
        """
        since = check_since(since)
        limit = check_limit(limit)
        if wait is not None:
            self._wait_for_change(since, check_wait(wait))
        changes = self._raw_changes(since, limit)
        if self.identity is None:
            return changes
        # A consumer's feed: what its identity sees of each revision (hub/rollouts.py).
        self._core.consumers.seen(self.name, self.identity, since)
        lens = self._core.rollouts.lens(self.name, self.identity)
        return [c for event in group_by_revision(self.name, changes)
                for c in lens(event).changes]

    def _raw_changes(self, since: int, limit: int) -> builtins.list[Change]:
        """The feed as everyone sees it (watchers apply their identity's lens themselves)."""
        self._core.check_retained(self.name, since)
        return [change_from_row(r) for r in self._core.store.changes(self.name, since, limit)]

    def _wait_for_change(self, since: int, timeout: float) -> None:
        arrived = threading.Event()
        subscription = self._core.subscribe(self.name, WatchFilter(), since, arrived.set)
        try:
            if not subscription.catching_up:
                arrived.wait(timeout)
        finally:
            self._core.watchers.remove(subscription)

    def watch(self, callback: Callable[[Change], object], namespace: str | None = None,
              key: str | None = None, env: str | None = None,
              since: int | None = None) -> WatchHandle:
        """Call ``callback(change)`` for every change after revision ``since`` (None: from
        now on), in revision order, exactly once, in a thread of its own; ``stop()`` ends it.

        The changes of one transaction arrive consecutively and share its revision. A
        callback that raises is logged and the watch carries on.
        """
        arrived = threading.Event()
        core = self._core
        subscription = core.subscribe(self.name, WatchFilter.of(namespace, key, env), since,
                                      arrived.set, self.identity)
        return WatchHandle(subscription, self._feed, arrived, callback,
                           self._unsubscriber(subscription))

    def _unsubscriber(self, subscription: Subscription) -> Callable[[], None]:
        """Remove the watcher; a consumer's watch also counts it as connected until then."""
        core, identity = self._core, self.identity
        if identity is None:
            return lambda: core.watchers.remove(subscription)
        core.consumers.connect(self.name, identity, subscription.position)
        done: builtins.list[bool] = []

        def remove() -> None:
            core.watchers.remove(subscription)
            if not done:
                done.append(True)
                core.consumers.disconnect(self.name, identity)

        return remove

    def watch_events(self, namespace: str | None = None, key: str | None = None,
                     env: str | None = None, since: int | None = None) -> AsyncWatch:
        """``async for event in cfg.watch_events(...)``: one WatchEvent per revision (the
        form the HTTP stream sends). ``await w.start()`` subscribes and raises early."""
        watch_filter = WatchFilter.of(namespace, key, env)
        core = self._core
        removers: dict[int, Callable[[], None]] = {}

        def subscribe(wake: Callable[[], None]) -> Subscription:
            subscription = core.subscribe(self.name, watch_filter, since, wake, self.identity)
            removers[id(subscription)] = self._unsubscriber(subscription)
            return subscription

        def remove(subscription: Subscription) -> None:
            removers.pop(id(subscription), lambda: core.watchers.remove(subscription))()

        return AsyncWatch(subscribe, self._feed, remove, core.watchers.pages)

    async def watch_async(self, namespace: str | None = None, key: str | None = None,
                          env: str | None = None, since: int | None = None
                          ) -> AsyncIterator[Change]:
        """``async for change in cfg.watch_async(...)``: the changes ``watch`` would deliver."""
        async with self.watch_events(namespace, key, env, since) as events:
            async for event in events:
                for change in event.changes:
                    yield change

    def _feed(self, since: int, limit: int) -> builtins.list[Change]:
        """The feed as watchers get it: restart-required changes flagged, as when live."""
        flags, flagged = self._core.restart_flags, []
        for change in self._raw_changes(check_since(since), check_limit(limit)):
            if change.version > 1 and flags.paths(change):
                row = self._core.store.version(self.name, change.env, change.namespace,
                                               change.key, change.version - 1)
                change = flags.flag(change, change_from_row(row).value if row else None)
            elif change.version == 1:
                change = flags.flag(change, None)
            flagged.append(change)
        return flagged

    @property
    def revision(self) -> int:
        """The tenant's latest committed revision."""
        info = self._core.store.tenant(self.name)
        if info is None:
            raise NotFound(f"tenant {self.name!r} does not exist", tenant=self.name)
        return info.revision
