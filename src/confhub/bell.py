"""Waking asyncio watchers from the publishing thread, cheaply.

A commit is published under the cache lock in whatever thread committed it; asyncio watchers
wait on their own event loop. :class:`LoopBell` batches the wake-ups of one loop into a single
``call_soon_threadsafe`` per burst, and :class:`Flag` is what each watcher waits on.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Callable

__all__ = ["Flag", "LoopBell"]


class Flag:
    """An ``asyncio.Event`` for one waiter, rung from any thread through its loop's bell.

    A thousand open watch streams each hold one, so it is small: no waiter deque (an
    ``asyncio.Event`` has one) and no closure per watcher; ``ring`` is a bound method.

    ``direct``, when set, handles a ring on the loop's thread while the waiter is parked,
    without waking it: it returns False to wake the waiter after all. An SSE stream uses it
    to write a new revision straight from the bell's flush instead of resuming its task
    through five frames, which halved the event loop's CPU per delivered event
    (``server/routes/watchsend.py``).
    """

    __slots__ = ("_bell", "_set", "_waiter", "direct")

    def __init__(self, bell: LoopBell) -> None:
        self._bell = bell
        self._set = False
        self._waiter: asyncio.Future[None] | None = None
        self.direct: Callable[[], bool] | None = None

    def ring(self) -> None:
        """Set the flag from any thread (through the loop's bell)."""
        self._bell.ring(self)

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The loop the flag belongs to. Cheaper than ``asyncio.get_running_loop()``, which
        on Python 3.11 makes a ``getpid`` system call each time (docs/decisions.md, "The
        running loop without a system call"), once per event of every watch stream."""
        return self._bell.loop

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        """Set the flag (on the loop's thread) and wake its waiter."""
        self._set = True
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def rung(self) -> None:
        """The bell rang (on the loop's thread): ``direct`` handles it if the waiter is
        parked and it can, else the flag is set."""
        direct, waiter = self.direct, self._waiter
        if direct is not None and waiter is not None and not waiter.done():
            try:
                if direct():
                    return
            except Exception:  # noqa: BLE001 - the waiter then takes it (and meets the error)
                pass
        self.set()

    def clear(self) -> None:
        self._set = False

    async def wait(self) -> None:
        if self._set:
            return
        waiter = self._waiter = self._bell.loop.create_future()
        try:
            await waiter
        finally:
            self._waiter = None


class LoopBell:
    """Wakes asyncio consumers from the publishing thread with one call per loop and burst.

    A thousand watchers on one server would otherwise cost a thousand
    ``call_soon_threadsafe`` calls (each a write to the loop's self-pipe) per revision.
    """

    _bells: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LoopBell] = (
        weakref.WeakKeyDictionary())
    _bells_lock = threading.Lock()

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._ringing: list[Flag] = []
        self._lock = threading.Lock()

    @classmethod
    def of(cls, loop: asyncio.AbstractEventLoop) -> LoopBell:
        with cls._bells_lock:
            bell = cls._bells.get(loop)
            if bell is None:
                bell = cls._bells[loop] = LoopBell(loop)
            return bell

    def flag(self) -> Flag:
        """A new flag rung through this bell."""
        return Flag(self)

    def ring(self, flag: Flag) -> None:
        with self._lock:
            first = not self._ringing
            self._ringing.append(flag)
        if first:
            try:
                self.loop.call_soon_threadsafe(self._flush)
            except RuntimeError:  # the loop is closed: nobody is listening any more
                with self._lock:
                    self._ringing.clear()

    def _flush(self) -> None:
        with self._lock:
            flags, self._ringing = self._ringing, []
        for flag in flags:
            flag.rung()
