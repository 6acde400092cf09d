"""Watchers: every change after a revision, in revision order, exactly once.

A subscription is either *catching up* or *synced* (etcd's ``watchable_store`` has the same
two states):

* catching up: its ``position`` is below ``backfill_to``; it reads the change feed from
  storage, a page at a time (pages never split a revision), until it reaches ``backfill_to``;
* synced: it takes the revisions the hub publishes as they commit, from its pending queue.

Subscribing happens under the cache lock, which is also held while a revision is published, so
the revision the subscription starts at (the tenant view's) splits history exactly: at or
below it comes from storage, above it from the queue. A consumer that falls more than
``MAX_PENDING`` revisions behind is moved back to catching up: its queue is dropped and
``backfill_to`` is set to the newest published revision, so a slow consumer costs storage
reads, never unbounded memory and never a lost event.

Worked example: a watcher with ``since=5`` subscribes while the tenant is at revision 8::

    subscribe            position 5, backfill_to 8, pending []
    commit 9 published   pending [9]
    take()               storage (5, 8] -> events 6, 7, 8; position 8
    take()               pending -> event 9; position 9
    (1,000 more commits while the consumer sleeps: pending overflows)
    overflow at 1,009    pending [], backfill_to 1,009
    take()               storage (9, 1,009] page by page, then the queue again

``position`` is the last revision *examined*; with a filter, revisions that touch nothing
watched are passed over silently, and a resume from the last revision *delivered* re-examines
them and again finds nothing, so resuming never duplicates.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .bell import LoopBell
from .catchup import FEED_PAGE, Feed, SharedPages, catchup_slots, group_by_revision
from .errors import ConfhubError, InvalidRequest, Unavailable
from .model import Change, WatchEvent, check_name

__all__ = [
    "AsyncWatch", "Broadcaster", "SharedPages", "Subscription", "WatchFilter", "WatchHandle",
    "deliver", "group_by_revision",
]

logger = logging.getLogger("confhub.watch")

MAX_PENDING = 1024



@dataclass(frozen=True, slots=True)
class WatchFilter:
    """Which changes a watcher wants: a namespace, a key in it, and/or an env (None: all)."""

    namespace: str | None = None
    key: str | None = None
    env: str | None = None

    @classmethod
    def of(cls, namespace: str | None, key: str | None, env: str | None) -> WatchFilter:
        if key is not None and namespace is None:
            raise InvalidRequest("a watch on a key needs its namespace too")
        for kind, name in (("namespace", namespace), ("key", key), ("env", env)):
            if name is not None:
                check_name(kind, name)
        return cls(namespace, key, env)

    @property
    def everything(self) -> bool:
        return self.namespace is None and self.env is None

    def matches(self, change: Change) -> bool:
        return ((self.namespace is None or change.namespace == self.namespace)
                and (self.key is None or change.key == self.key)
                and (self.env is None or change.env == self.env))

    def select(self, event: WatchEvent) -> WatchEvent | None:
        """The part of ``event`` this filter wants (None when nothing matches)."""
        if self.everything:
            return event
        wanted = tuple(c for c in event.changes if self.matches(c))
        if not wanted:
            return None
        if len(wanted) == len(event.changes):
            return event
        return WatchEvent(event.tenant, event.revision, wanted)


class Subscription:
    """One watcher's place in a tenant's history; see the module docstring for the states.

    The producer side (``offer``, ``fail``) runs under the cache lock; the consumer side
    (``take``) runs in the watcher's own thread or task. ``wake`` tells the consumer there is
    something to take; it must not block.
    """

    __slots__ = ("tenant", "filter", "position", "backfill_to", "_pending", "_passed", "_lock",
                 "wake", "error", "lens")

    def __init__(self, tenant: str, filter: WatchFilter, position: int, backfill_to: int,
                 wake: Callable[[], None],
                 lens: Callable[[WatchEvent], WatchEvent] | None = None) -> None:
        self.tenant = tenant
        self.filter = filter
        # What this watcher's identity sees of a revision (staged rollout values), applied
        # before the filter, the same way live and from storage: see hub/rollouts.py.
        self.lens = lens
        self.position = position
        self.backfill_to = backfill_to
        self._pending: deque[WatchEvent] = deque()
        self._passed = 0  # newest published revision the filter passed over
        self._lock = threading.Lock()
        self.wake = wake
        self.error: ConfhubError | None = None

    @property
    def catching_up(self) -> bool:
        return self.position < self.backfill_to

    @property
    def queued(self) -> int:
        """Revisions waiting in memory for the consumer (at most MAX_PENDING)."""
        return len(self._pending)

    # ---------------------------------------------------------------- producer side

    def offer(self, event: WatchEvent) -> bool:
        """Queue a published revision; True if the consumer should be woken."""
        selected = self.filter.select(event if self.lens is None else self.lens(event))
        with self._lock:
            if len(self._pending) >= MAX_PENDING:
                # Too far behind: forget the queue and read this stretch from storage.
                self._pending.clear()
                self.backfill_to = event.revision
                return True
            if selected is None:
                self._passed = event.revision
                return False
            self._pending.append(selected)
            return True

    def fail(self, error: ConfhubError) -> None:
        """End the subscription: the consumer's next ``take`` raises ``error``."""
        with self._lock:
            self.error = error
            self._pending.clear()

    # ---------------------------------------------------------------- consumer side

    def take(self, feed: Feed, pages: SharedPages | None = None) -> list[WatchEvent]:
        """The next events for the consumer, oldest first; [] when there is nothing yet.

        While catching up this reads storage (call it off the event loop), through ``pages``
        when given, so watchers catching up over the same range share what they read; when
        synced it only pops the queue.
        """
        with self._lock:
            if self.error is not None:
                raise self.error
            if self.position >= self.backfill_to:
                queued = [e for e in self._pending if e.revision > self.position]
                self._pending.clear()
                # Revisions arrive in order, so everything up to the newer of the last queued
                # and the last passed-over revision has now been examined.
                self.position = max(self.position, self._passed,
                                    queued[-1].revision if queued else 0)
                return queued
            start, stop = self.position, self.backfill_to
        page = (pages.events(self.tenant, start, feed) if pages is not None
                else group_by_revision(self.tenant, feed(start, FEED_PAGE)))
        events: list[WatchEvent] = []
        last = stop
        for event in page:
            if event.revision > stop:
                break  # newer revisions arrive through the queue
            last = event.revision
            selected = self.filter.select(event if self.lens is None else self.lens(event))
            if selected is not None:
                events.append(selected)
        with self._lock:
            self.position = last if last > self.position else self.position
        return events


class Broadcaster:
    """The subscriptions of one hub, by tenant; the hub's cache publishes to it in order.
    ``pages`` are the feed pages its catching-up watchers share."""

    def __init__(self) -> None:
        self._by_tenant: dict[str, list[Subscription]] = {}
        self._lock = threading.Lock()
        self.pages = SharedPages()

    def add(self, subscription: Subscription) -> None:
        """Register (call under the cache lock, with ``position``/``backfill_to`` set)."""
        with self._lock:
            subs = self._by_tenant.get(subscription.tenant, [])
            self._by_tenant[subscription.tenant] = [*subs, subscription]

    def remove(self, subscription: Subscription) -> None:
        with self._lock:
            subs = [s for s in self._by_tenant.get(subscription.tenant, ())
                    if s is not subscription]
            if subs:
                self._by_tenant[subscription.tenant] = subs
            else:
                self._by_tenant.pop(subscription.tenant, None)

    def publish(self, tenant: str, revision: int,
                changes: Callable[[], Sequence[Change]]) -> None:
        """Hand revision ``revision`` to every watcher of ``tenant`` (``changes`` is only
        called when someone watches). Runs under the cache lock, so revisions arrive in
        order; it only queues and wakes, never waits for a consumer."""
        subs = self._by_tenant.get(tenant)
        if not subs:
            return
        event = WatchEvent(tenant, revision, tuple(changes()))
        for sub in subs:
            if sub.offer(event):
                sub.wake()

    def end(self, tenant: str | None, error: ConfhubError) -> None:
        """End the subscriptions of ``tenant`` (all tenants: None) with ``error``."""
        self.pages.forget(tenant)
        with self._lock:
            if tenant is None:
                ended = [s for subs in self._by_tenant.values() for s in subs]
                self._by_tenant.clear()
            else:
                ended = self._by_tenant.pop(tenant, [])
        for sub in ended:
            sub.fail(error)
            sub.wake()


# --------------------------------------------------------------------------- consumers


def _permanent(sub: Subscription, exc: ConfhubError) -> bool:
    """Whether a watcher must end: its subscription was ended, or history/tenant is gone.
    Anything else (storage unreachable while catching up) is retried."""
    return sub.error is not None or not isinstance(exc, Unavailable)


def deliver(callback: Callable[[Change], object], event: WatchEvent,
            stopped: threading.Event) -> bool:
    """Hand each change of ``event`` to ``callback`` in order; a callback's exception is
    logged and delivery goes on. False if the watch was stopped meanwhile."""
    for change in event.changes:
        if stopped.is_set():
            return False
        try:
            callback(change)
        except Exception:
            logger.exception("watch callback %r failed on %s/%s revision %d", callback,
                             change.namespace, change.key, change.revision)
    return True


class WatchHandle:
    """A watch running in its own thread: ``callback(change)`` for every change, in order.

    One thread per watch, so a slow callback delays only its own watcher and never the writer.
    An exception raised by the callback is logged and the watch goes on with the next change.
    """

    def __init__(self, subscription: Subscription, feed: Feed, flag: threading.Event,
                 callback: Callable[[Change], object], remove: Callable[[], None]) -> None:
        self._sub = subscription
        self._feed = feed
        self._flag = flag
        self._callback = callback
        self._remove = remove
        self._stopped = threading.Event()
        self.error: ConfhubError | None = None
        # Called with the error when the watch ends by itself (history gone, tenant
        # deleted); live values re-list on Gone. Set it right after creating the handle.
        self.on_end: Callable[[ConfhubError], object] | None = None
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name=f"confhub-watch-{subscription.tenant}")
        self._thread.start()

    @property
    def revision(self) -> int:
        """The last revision this watcher has examined."""
        return self._sub.position

    @property
    def queued(self) -> int:
        """Revisions waiting in memory for the callback. Never more than ``MAX_PENDING``: a
        watcher further behind drops its queue and reads that stretch from the change feed."""
        return self._sub.queued

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout: float | None = 5.0) -> None:
        """Stop delivering (a callback already running finishes first)."""
        self._stopped.set()
        self._flag.set()
        self._remove()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def __enter__(self) -> WatchHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        delay = 0.05
        while not self._stopped.is_set():
            self._flag.clear()
            try:
                events = self._sub.take(self._feed)
            except ConfhubError as exc:
                if _permanent(self._sub, exc):
                    self.error = exc
                    level = logging.INFO if self._sub.error is not None else logging.WARNING
                    logger.log(level, "watch on tenant %r ended: %s", self._sub.tenant, exc)
                    self._remove()
                    if self.on_end is not None and not self._stopped.is_set():
                        self.on_end(exc)
                    return
                self._stopped.wait(delay)
                delay = min(delay * 2, 2.0)
                continue
            delay = 0.05
            if not events:
                self._flag.wait()
                continue
            for event in events:
                if not deliver(self._callback, event, self._stopped):
                    return


class AsyncWatch:
    """``async for event in watch``: one :class:`WatchEvent` per revision, in order.

    Call ``await start()`` first: it subscribes, so a missing tenant or removed history raises
    there, before anything is consumed. Storage is only read (in a worker thread) while the
    watch is catching up; a synced watch just awaits its queue.
    """

    def __init__(self, subscribe: Callable[[Callable[[], None]], Subscription], feed: Feed,
                 remove: Callable[[Subscription], None],
                 pages: SharedPages | None = None) -> None:
        self._subscribe = subscribe
        self._feed = feed
        self._remove = remove
        self._pages = pages
        self._sub: Subscription | None = None
        self._flag: asyncio.Event | None = None
        self._ready: deque[WatchEvent] = deque()
        self._interrupted = False

    @property
    def revision(self) -> int:
        """The last revision examined (events up to it have been handed out or passed over)."""
        return self._sub.position if self._sub is not None else 0

    async def start(self) -> AsyncWatch:
        if self._sub is None:
            flag = self._flag = asyncio.Event()
            wake = LoopBell.of(asyncio.get_running_loop()).waker(flag)
            self._sub = await asyncio.to_thread(self._subscribe, wake)
        return self

    def __aiter__(self) -> AsyncWatch:
        return self

    @property
    def waiting(self) -> int:
        """How many events are already waiting to be taken."""
        return len(self._ready)

    def ready(self, limit: int | None = None) -> list[WatchEvent]:
        """The events already waiting (at most ``limit``), without waiting for more."""
        if limit is None or limit >= len(self._ready):
            events = list(self._ready)
            self._ready.clear()
            return events
        return [self._ready.popleft() for _ in range(limit)]

    async def __anext__(self) -> WatchEvent:
        event = await self.get()
        assert event is not None
        return event

    async def get(self, timeout: float | None = None) -> WatchEvent | None:
        """The next event, or None if none arrives within ``timeout`` seconds.

        Only the wait is timed: a storage read in progress is never abandoned (its events
        would be lost, since the position has moved).
        """
        sub = await self._started()
        assert self._flag is not None
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        delay = 0.05
        while not self._ready:
            if self._interrupted:
                return None
            self._flag.clear()
            try:
                if sub.catching_up or sub.error is not None:
                    # Few storage reads at once, whatever the number of watchers catching
                    # up: the storage threads stay free for other requests.
                    async with catchup_slots(loop):
                        events = await asyncio.to_thread(sub.take, self._feed, self._pages)
                else:
                    events = sub.take(self._feed)
            except ConfhubError as exc:
                if _permanent(sub, exc):
                    self.close()
                    raise
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
                continue
            if events:
                self._ready.extend(events)
            elif deadline is None:
                await self._flag.wait()
            else:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return None
                # A timer setting the flag, not asyncio.wait_for: that makes a task per wait,
                # which a thousand streams would pay on every revision.
                timer = loop.call_later(remaining, self._flag.set)
                try:
                    await self._flag.wait()
                finally:
                    timer.cancel()
        return self._ready.popleft()

    async def _started(self) -> Subscription:
        await self.start()
        assert self._sub is not None
        return self._sub

    def interrupt(self) -> None:
        """Make a waiting ``get`` (and every later one) return None at once: whoever reads
        this watch is ending it (the server stops, the client hung up)."""
        self._interrupted = True
        if self._flag is not None:
            self._flag.set()

    def close(self) -> None:
        if self._sub is not None:
            self._remove(self._sub)

    async def aclose(self) -> None:
        self.close()

    async def __aenter__(self) -> AsyncWatch:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        self.close()
