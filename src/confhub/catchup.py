"""Watchers catching up: reading the change feed in bounded, shared pages.

A watcher that is behind (it resumed from an old revision, or fell more than MAX_PENDING
revisions behind and was sent back) reads the feed from storage a page at a time. Three
bounds keep many of them from costing the server its memory or its storage threads:

* a page holds at most FEED_PAGE changes, so one watcher holds at most that much;
* :class:`SharedPages`: watchers reading the same range share one copy (and, through the
  HTTP layer's encoding cache, one encoding);
* :func:`catchup_slots`: at most CATCHUP_READS catch-up reads run at once per event loop.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Callable, Iterable, Sequence

from .model import Change, WatchEvent

__all__ = ["CATCHUP_READS", "FEED_PAGE", "Feed", "SharedPages", "catchup_slots",
           "group_by_revision"]

FEED_PAGE = 256  # changes per storage read while catching up: what one watcher holds at most
CATCHUP_READS = 4  # storage reads for catching-up async watchers at once, per event loop

Feed = Callable[[int, int], Sequence[Change]]
"""``feed(since, limit)``: the tenant's changes after ``since`` (raises Gone/NotFound)."""


def group_by_revision(tenant: str, changes: Iterable[Change]) -> list[WatchEvent]:
    """Feed rows (in revision order) as one event per revision."""
    events: list[WatchEvent] = []
    batch: list[Change] = []
    for change in changes:
        if batch and change.revision != batch[0].revision:
            events.append(WatchEvent(tenant, batch[0].revision, tuple(batch)))
            batch = []
        batch.append(change)
    if batch:
        events.append(WatchEvent(tenant, batch[0].revision, tuple(batch)))
    return events



class SharedPages:
    """Feed pages recently read by catching-up watchers, shared by every watcher that reads
    the same range.

    Five hundred streams resuming from one revision would otherwise each read (and hold,
    and encode) their own copy of the same history. Only *full* pages are kept: a full page
    is a fixed piece of committed history, while a short one ends at the head and would grow.
    A page holds the events themselves, so the HTTP layer's encoding cache (keyed by event)
    encodes each revision once for all of them. Bounded: the ``size`` most recent pages.

    Worked example (FEED_PAGE 256): streams A and B both resume from revision 100 while the
    tenant is at 2,000. A reads (100, +256 changes] from storage and keeps the page; B finds
    it and reads nothing; both then ask for the page after its last revision, and so on.
    """

    def __init__(self, size: int = 32) -> None:
        self._size = size
        self._pages: dict[tuple[str, int], list[WatchEvent]] = {}
        self._lock = threading.Lock()

    def events(self, tenant: str, since: int, feed: Feed) -> list[WatchEvent]:
        key = (tenant, since)
        with self._lock:
            page = self._pages.pop(key, None)
            if page is not None:
                self._pages[key] = page  # most recently used last
                return page
        changes = feed(since, FEED_PAGE)
        page = group_by_revision(tenant, changes)
        if len(changes) >= FEED_PAGE:
            with self._lock:
                self._pages[key] = page
                while len(self._pages) > self._size:
                    self._pages.pop(next(iter(self._pages)))
        return page

    def forget(self, tenant: str | None) -> None:
        """Drop a tenant's pages (all: None): its history was deleted or rewritten."""
        with self._lock:
            if tenant is None:
                self._pages.clear()
            else:
                for key in [k for k in self._pages if k[0] == tenant]:
                    del self._pages[key]


_CATCHUP: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary())


def catchup_slots(loop: asyncio.AbstractEventLoop) -> asyncio.Semaphore:
    """The loop's limit of concurrent catch-up reads (CATCHUP_READS)."""
    slots = _CATCHUP.get(loop)
    if slots is None:
        slots = _CATCHUP[loop] = asyncio.Semaphore(CATCHUP_READS)
    return slots
