"""Waking asyncio watchers from the publishing thread, cheaply.

A commit is published under the cache lock in whatever thread committed it; asyncio watchers
wait on their own event loop. :class:`LoopBell` batches the wake-ups of one loop into a single
``call_soon_threadsafe`` per burst.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Callable

__all__ = ["LoopBell"]


class LoopBell:
    """Wakes asyncio consumers from the publishing thread with one call per loop and burst.

    A thousand watchers on one server would otherwise cost a thousand
    ``call_soon_threadsafe`` calls (each a write to the loop's self-pipe) per revision.
    """

    _bells: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LoopBell] = (
        weakref.WeakKeyDictionary())
    _bells_lock = threading.Lock()

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._ringing: list[asyncio.Event] = []
        self._lock = threading.Lock()

    @classmethod
    def of(cls, loop: asyncio.AbstractEventLoop) -> LoopBell:
        with cls._bells_lock:
            bell = cls._bells.get(loop)
            if bell is None:
                bell = cls._bells[loop] = LoopBell(loop)
            return bell

    def waker(self, flag: asyncio.Event) -> Callable[[], None]:
        def ring() -> None:
            with self._lock:
                first = not self._ringing
                self._ringing.append(flag)
            if first:
                try:
                    self._loop.call_soon_threadsafe(self._flush)
                except RuntimeError:  # the loop is closed: nobody is listening any more
                    with self._lock:
                        self._ringing.clear()

        return ring

    def _flush(self) -> None:
        with self._lock:
            flags, self._ringing = self._ringing, []
        for flag in flags:
            flag.set()
