"""The running event loop, found without a system call.

On Python 3.11, ``asyncio.get_running_loop()`` — and so ``asyncio.current_task()`` without a
loop — calls ``getpid()`` every time (strace shows one per call), to notice a loop inherited
across ``fork``; a PUT asked for the loop three times (the body deadline, its task, the
completions), and py-spy put those lines at several percent of the event loop's samples.
:func:`running_loop` asks once per loop instead, as later Pythons do (they forget the running
loop in a forked child, CPython gh-66285): each thread remembers the loop it last found
running and trusts it while that loop still runs. A thread runs one loop at a time, so a loop
that stopped (``asyncio.run`` returned, a test's portal closed) is asked for again, and a
forked child starts with nothing remembered.
"""

from __future__ import annotations

import asyncio
import os
import threading

__all__ = ["running_loop"]


class _Seen(threading.local):
    loop: asyncio.AbstractEventLoop | None = None


_seen = _Seen()


def running_loop() -> asyncio.AbstractEventLoop:
    """``asyncio.get_running_loop()``, remembered per thread (call it where that would work:
    in a coroutine or a callback of the loop)."""
    loop = _seen.loop
    if loop is None or not loop.is_running():
        loop = _seen.loop = asyncio.get_running_loop()
    return loop


def _forget() -> None:
    _seen.loop = None


os.register_at_fork(after_in_child=_forget)
