"""``async for event in watch``: a watcher on an event loop (the HTTP stream, the web UI,
``watch_async``).

One of these per open watch stream, so it is kept small and its waits cheap: a :class:`Flag`
(no waiter deque, no closure) rung through the loop's bell, a list of ready events, and one
heartbeat timer that is re-armed only when it fires — not a timer made and cancelled around
every wait, which a thousand streams would pay on every revision.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from .bell import Flag, LoopBell
from .catchup import Feed, SharedPages, catchup_slots
from .errors import ConfhubError
from .model import WatchEvent
from .watch import Subscription, permanent

__all__ = ["AsyncWatch"]


class AsyncWatch:
    """``async for event in watch``: one :class:`WatchEvent` per revision, in order.

    Call ``await start()`` first: it subscribes, so a missing tenant or removed history raises
    there, before anything is consumed. Storage is only read (in a worker thread) while the
    watch is catching up; a synced watch only reads its tenant's recent revisions.
    """

    __slots__ = (
        "_subscribe",
        "_feed",
        "_remove",
        "_pages",
        "_sub",
        "_flag",
        "_ready",
        "_interrupted",
        "_deadline",
        "_timer",
        "_deliver",
        "__weakref__",
    )

    def __init__(
        self,
        subscribe: Callable[[Callable[[], None]], Subscription],
        feed: Feed,
        remove: Callable[[Subscription], None],
        pages: SharedPages | None = None,
    ) -> None:
        self._subscribe = subscribe
        self._feed = feed
        self._remove = remove
        self._pages = pages
        self._sub: Subscription | None = None
        self._flag: Flag | None = None
        self._ready: list[WatchEvent] = []
        self._interrupted = False
        self._deadline: float | None = None  # when a timed get gives up (loop time)
        self._timer: asyncio.TimerHandle | None = None
        self._deliver: Callable[[list[WatchEvent]], bool] | None = None

    @property
    def revision(self) -> int:
        """The last revision examined (events up to it have been handed out or passed over)."""
        return self._sub.position if self._sub is not None else 0

    async def start(self) -> AsyncWatch:
        if self._sub is None:
            flag = self._flag = LoopBell.of(asyncio.get_running_loop()).flag()
            self._sub = await asyncio.to_thread(self._subscribe, flag.ring)
        return self

    def __aiter__(self) -> AsyncWatch:
        return self

    @property
    def interrupted(self) -> bool:
        """Whoever reads this watch is ending it (:meth:`interrupt`)."""
        return self._interrupted

    @property
    def waiting(self) -> int:
        """How many events are already waiting to be taken."""
        return len(self._ready)

    def deliver_directly(self, deliver: Callable[[list[WatchEvent]], bool]) -> None:
        """Hand each new revision to ``deliver`` on the loop's thread, from the bell, while
        the consumer is parked in :meth:`get`, instead of waking it. ``deliver`` returns
        False when it cannot take the events now (a write of its own is still under way, a
        burst too big for one write): they are then left for ``get``, in order, and the
        consumer wakes. Only a synced watch delivers so; catching up, a failure and an
        interruption always wake the consumer, which reads storage or ends."""
        assert self._flag is not None, "start() first"
        self._flag.direct = self._ring_direct
        self._deliver = deliver

    def _ring_direct(self) -> bool:
        sub, deliver = self._sub, self._deliver
        if (sub is None or deliver is None or self._ready or self._interrupted
                or sub.catching_up or sub.error is not None):
            return False
        try:
            events = sub.take(self._feed)  # synced: recent revisions in memory, no storage
        except ConfhubError:
            return False  # failed meanwhile: get takes again and raises it
        if not events:
            return not sub.catching_up  # filtered out; or fallen behind: get reads storage
        if deliver(events):
            return True
        self._ready = events
        return False

    def ready(self, limit: int | None = None) -> list[WatchEvent]:
        """The events already waiting (at most ``limit``), without waiting for more."""
        events = self._ready
        if limit is None or limit >= len(events):
            self._ready = []
            return events
        taken = events[:limit]
        del events[:limit]
        return taken

    async def __anext__(self) -> WatchEvent:
        event = await self.get()
        assert event is not None
        return event

    async def get(self, timeout: float | None = None) -> WatchEvent | None:
        """The next event, or None if none arrives within ``timeout`` seconds.

        Only the wait is timed: a storage read in progress is never abandoned (its events
        would be lost, since the position has moved).
        """
        sub = self._sub if self._sub is not None else await self._started()
        flag = self._flag
        assert flag is not None
        loop = flag.loop  # the loop the stream started on, found without a system call
        deadline = None if timeout is None else loop.time() + timeout
        delay = 0.05
        while not self._ready:
            if self._interrupted:
                return None
            if not (
                flag.is_set()
                or sub.catching_up
                or sub.error is not None
                or (deadline is not None and deadline <= loop.time())
            ):
                # Nothing rang since the last take (the flag is cleared before each): wait
                # at once instead of taking again to find nothing, as would happen after
                # every event.
                if not await self._wait(loop, deadline):
                    return None
                continue
            flag.clear()
            try:
                if sub.catching_up or sub.error is not None:
                    # Few storage reads at once, whatever the number of watchers catching
                    # up: the storage threads stay free for other requests.
                    async with catchup_slots(loop):
                        events = await asyncio.to_thread(sub.take, self._feed, self._pages)
                else:
                    events = sub.take(self._feed)
            except ConfhubError as exc:
                if permanent(sub, exc):
                    self.close()
                    raise
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
                continue
            if events:
                self._ready = events
            elif not sub.catching_up and not await self._wait(loop, deadline):
                return None  # (catching up: it has just fallen behind; read storage)
        return self._ready.pop(0)

    async def _wait(self, loop: asyncio.AbstractEventLoop, deadline: float | None) -> bool:
        """Wait for the flag; False if ``deadline`` has passed."""
        flag = self._flag
        assert flag is not None
        if deadline is None:
            await flag.wait()
            return True
        if deadline <= loop.time():
            return False
        self._arm(loop, deadline)
        try:
            await flag.wait()
        finally:
            self._deadline = None
        return True

    def _arm(self, loop: asyncio.AbstractEventLoop, deadline: float) -> None:
        """Make the flag be set at ``deadline``. The timer already pending is kept when it
        fires no later (it re-arms itself for the rest), so a stream that gets an event
        every few milliseconds makes one timer per heartbeat, not one per event."""
        self._deadline = deadline
        timer = self._timer
        if timer is not None and timer.when() > deadline:
            timer.cancel()
            timer = None
        if timer is None:
            self._timer = loop.call_at(deadline, self._ring_at_deadline)

    def _ring_at_deadline(self) -> None:
        self._timer = None
        deadline, flag = self._deadline, self._flag
        if deadline is None or flag is None:
            return  # nobody waits with a deadline now; the next timed wait arms again
        loop = flag.loop
        if loop.time() >= deadline:
            flag.set()
        else:
            self._timer = loop.call_at(deadline, self._ring_at_deadline)

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
        self._deliver = None
        if self._flag is not None:
            self._flag.direct = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._sub is not None:
            self._remove(self._sub)

    async def aclose(self) -> None:
        self.close()

    async def __aenter__(self) -> AsyncWatch:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        self.close()
