"""Watchers: every change after a revision, in revision order, exactly once.

A subscription is either *catching up* or *synced* (etcd's ``watchable_store`` has the same
two states):

* catching up: its ``position`` is below ``backfill_to``; it reads the change feed from
  storage, a page at a time (pages never split a revision), until it reaches ``backfill_to``;
* synced: it reads the revisions the hub publishes as they commit from its tenant's
  :class:`Recent` ring, shared by all the tenant's watchers, through its own ``cursor``.

Subscribing happens under the cache lock, which is also held while a revision is published, so
the revision the subscription starts at (the tenant view's) splits history exactly: at or
below it comes from storage, above it from the ring. A consumer that falls more than
``MAX_PENDING`` revisions behind finds its cursor overwritten and is moved back to catching up:
``backfill_to`` is set to the newest revision in the ring, so a slow consumer costs storage
reads, never memory of its own and never a lost event.

Worked example: a watcher with ``since=5`` subscribes while the tenant is at revision 8::

    subscribe            position 5, backfill_to 8, cursor at the ring's head
    commit 9 published   ring [.., 9]
    take()               storage (5, 8] -> events 6, 7, 8; position 8
    take()               ring -> event 9; position 9
    (1,100 more commits while the consumer sleeps: the ring overwrites its cursor)
    take() at 1,109      ring has lost revisions it had not read: backfill_to 1,109
    take()               storage (9, 1,109] page by page, then the ring again

``position`` is the last revision *examined*; with a filter, revisions that touch nothing
watched are passed over silently, and a resume from the last revision *delivered* re-examines
them and again finds nothing, so resuming never duplicates.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .catchup import FEED_PAGE, Feed, SharedPages, group_by_revision
from .errors import ConfhubError, InvalidRequest, Unavailable
from .model import Change, WatchEvent, check_name

__all__ = [
    "MAX_PENDING", "Broadcaster", "Recent", "SharedPages", "Subscription", "WatchFilter",
    "WatchHandle", "deliver", "group_by_revision",
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


class Recent:
    """The revisions recently published for one tenant, shared by all its watchers.

    A ring of the last ``MAX_PENDING`` events, numbered by a sequence (``head`` is the next
    number): publishing a revision stores it once, whatever the number of watchers, and each
    synced watcher only keeps a cursor into it. A watcher whose cursor the ring has left
    behind (it fell more than ``MAX_PENDING`` revisions behind) goes back to catching up.
    What a filter keeps of an event is worked out once per filter and shared too, so equal
    filters hand their streams the very same event (encoded once by the HTTP layer).
    """

    __slots__ = ("_ring", "_kept", "head", "lock", "members", "snapshot")

    def __init__(self, size: int = MAX_PENDING) -> None:
        self._ring: list[WatchEvent | None] = [None] * size
        # per slot: (the event, what each filter keeps of it), filled in by the consumers
        self._kept: list[tuple[WatchEvent, dict[WatchFilter, WatchEvent | None]] | None] = (
            [None] * size)
        self.head = 0
        self.lock = threading.Lock()
        # Who watches, in arrival order: added and removed in O(1) (under the Broadcaster's
        # lock), so ten thousand streams closing at once cost ten thousand dict deletions,
        # not ten thousand copies of a ten-thousand-long tuple. ``snapshot`` is the tuple a
        # publish iterates without that lock, rebuilt by the first publish after a change.
        self.members: dict[Subscription, None] = {}
        self.snapshot: tuple[Subscription, ...] | None = ()

    def append(self, event: WatchEvent) -> int:
        """Store ``event``; its sequence number."""
        with self.lock:
            seq = self.head
            self._ring[seq % len(self._ring)] = event
            self.head = seq + 1
            return seq

    def read(self, cursor: int) -> list[WatchEvent] | None:
        """The events from sequence ``cursor`` on (call with ``lock`` held); None if some
        of them have already been overwritten."""
        size = len(self._ring)
        if self.head - cursor > size:
            return None
        ring = self._ring
        if self.head - cursor == 1:  # the usual case: one revision since the last take
            return [ring[cursor % size]]  # type: ignore[list-item]
        return [ring[seq % size] for seq in range(cursor, self.head)]  # type: ignore[misc]

    def newest(self) -> int:
        """The revision of the newest event held (call with ``lock`` held and head > 0)."""
        event = self._ring[(self.head - 1) % len(self._ring)]
        assert event is not None
        return event.revision

    def select(self, filter: WatchFilter, event: WatchEvent, seq: int) -> WatchEvent | None:
        """``filter.select(event)`` for the event at ``seq``, computed once per filter.

        Consumers fill the memo in from their own threads; a memo is tied to its event, so
        one left over from a slot's previous event is simply replaced."""
        if filter.everything:
            return event
        slot = seq % len(self._kept)
        memo = self._kept[slot]
        if memo is None or memo[0] is not event:
            memo = self._kept[slot] = (event, {})
        kept = memo[1]
        if filter in kept:
            return kept[filter]
        selected = kept[filter] = filter.select(event)
        return selected


_UNREGISTERED = Recent(1)  # a subscription's ring until Broadcaster.add gives it its tenant's


class Subscription:
    """One watcher's place in a tenant's history; see the module docstring for the states.

    The producer side (``Broadcaster.publish``, ``fail``) runs under the cache lock and only
    wakes the consumer: the event itself is stored once, in the tenant's :class:`Recent`.
    The consumer side (``take``) runs in the watcher's own thread or task. ``wake`` tells the
    consumer there is something to take; it must not block.
    """

    __slots__ = ("tenant", "filter", "lens", "position", "backfill_to", "cursor", "recent",
                 "wake", "error")

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
        self.recent = _UNREGISTERED
        self.cursor = 0  # the next published revision to read, by its sequence in ``recent``
        self.wake = wake
        self.error: ConfhubError | None = None

    @property
    def catching_up(self) -> bool:
        return self.position < self.backfill_to

    @property
    def queued(self) -> int:
        """Revisions published and not yet taken (at most MAX_PENDING are held)."""
        return min(self.recent.head - self.cursor, MAX_PENDING)

    def fail(self, error: ConfhubError) -> None:
        """End the subscription: the consumer's next ``take`` raises ``error``."""
        self.error = error

    # ---------------------------------------------------------------- consumer side

    def take(self, feed: Feed, pages: SharedPages | None = None) -> list[WatchEvent]:
        """The next events for the consumer, oldest first; [] when there is nothing yet.

        While catching up this reads storage (call it off the event loop), through ``pages``
        when given, so watchers catching up over the same range share what they read; when
        synced it only reads the tenant's recent revisions.
        """
        if self.error is not None:
            raise self.error
        if self.position >= self.backfill_to:
            recent = self.recent
            with recent.lock:
                cursor = self.cursor
                published = recent.read(cursor)
                if published is None:
                    # Too far behind: read this stretch from storage (position, newest];
                    # the caller sees ``catching_up`` and takes again, off the event loop.
                    self.backfill_to = recent.newest()
                    self.cursor = recent.head
                    return []
                self.cursor = recent.head
            events: list[WatchEvent] = []
            for seq, event in enumerate(published, cursor):
                if event.revision <= self.position:
                    continue
                seen = event if self.lens is None else self.lens(event)
                selected = (recent.select(self.filter, event, seq) if seen is event
                            else self.filter.select(seen))
                if selected is not None:
                    events.append(selected)
                # Revisions arrive in order: everything up to here has been examined.
                self.position = event.revision
            return events
        start, stop = self.position, self.backfill_to
        page = (pages.events(self.tenant, start, feed) if pages is not None
                else group_by_revision(self.tenant, feed(start, FEED_PAGE)))
        events = []
        last = stop
        for event in page:
            if event.revision > stop:
                break  # newer revisions arrive through the recent ones
            last = event.revision
            selected = self.filter.select(event if self.lens is None else self.lens(event))
            if selected is not None:
                events.append(selected)
        self.position = last if last > self.position else self.position
        return events


class Broadcaster:
    """The subscriptions of one hub, by tenant; the hub's cache publishes to it in order.
    ``pages`` are the feed pages its catching-up watchers share."""

    def __init__(self) -> None:
        self._by_tenant: dict[str, Recent] = {}
        self._lock = threading.Lock()
        self.pages = SharedPages()

    def add(self, subscription: Subscription) -> None:
        """Register (call under the cache lock, with ``position``/``backfill_to`` set): the
        watcher reads the tenant's revisions published from now on."""
        with self._lock:
            recent = self._by_tenant.get(subscription.tenant)
            if recent is None:
                recent = self._by_tenant[subscription.tenant] = Recent()
            subscription.recent = recent
            subscription.cursor = recent.head
            recent.members[subscription] = None
            recent.snapshot = None

    def remove(self, subscription: Subscription) -> None:
        with self._lock:
            recent = self._by_tenant.get(subscription.tenant)
            if recent is None:
                return
            if subscription in recent.members:  # not removed before
                del recent.members[subscription]
                recent.snapshot = None
            if not recent.members:
                # Nobody watches: forget the tenant's recent revisions (a later watcher
                # starts from the view's revision, so it needs none of them).
                del self._by_tenant[subscription.tenant]

    def publish(self, tenant: str, revision: int,
                changes: Callable[[], Sequence[Change]]) -> None:
        """Hand revision ``revision`` to every watcher of ``tenant`` (``changes`` is only
        called when someone watches). Runs under the cache lock, so revisions arrive in
        order. The event is stored once and each watcher is only woken: no filtering and no
        encoding per watcher here, and never a wait for a consumer."""
        recent = self._by_tenant.get(tenant)
        if recent is None:
            return
        subs = recent.snapshot
        if subs is None:  # someone came or went since the last publish
            with self._lock:
                subs = recent.snapshot = tuple(recent.members)
        if not subs:
            return
        event = WatchEvent(tenant, revision, tuple(changes()))
        seq = recent.append(event)
        wanted: dict[WatchFilter, bool] = {}  # once per distinct filter, not per watcher
        for sub in subs:
            f = sub.filter
            if not f.everything and sub.lens is None:
                hit = wanted.get(f)
                if hit is None:
                    hit = wanted[f] = recent.select(f, event, seq) is not None
                # A watcher this revision does not concern is left asleep, unless it has
                # not looked for so long that the ring would soon leave it behind (it then
                # passes over what it skipped instead of re-reading it from storage).
                if not hit and seq - sub.cursor < MAX_PENDING // 2:
                    continue
            sub.wake()

    def end(self, tenant: str | None, error: ConfhubError) -> None:
        """End the subscriptions of ``tenant`` (all tenants: None) with ``error``."""
        self.pages.forget(tenant)
        with self._lock:
            if tenant is None:
                ended = [s for r in self._by_tenant.values() for s in r.members]
                self._by_tenant.clear()
            else:
                gone = self._by_tenant.pop(tenant, None)
                ended = list(gone.members) if gone is not None else []
        for sub in ended:
            sub.fail(error)
            sub.wake()


# --------------------------------------------------------------------------- consumers


def permanent(sub: Subscription, exc: ConfhubError) -> bool:
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
        """Revisions published and not yet taken by the callback, never more than
        ``MAX_PENDING``: a watcher further behind reads that stretch from the change feed."""
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
                if permanent(self._sub, exc):
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
                if not self._sub.catching_up:  # (it may have just fallen behind: read on)
                    self._flag.wait()
                continue
            for event in events:
                if not deliver(self._callback, event, self._stopped):
                    return
