"""Stopping well: the server's open watch streams end when it is told to stop.

DESIGN.md section 6: on SIGTERM the server stops accepting, ends every watch stream with
``event: error`` (``unavailable``, so clients reconnect elsewhere), finishes the requests in
flight and exits within a few seconds. The ASGI servers do the first and third part on their
own, but they only tell the app (the lifespan ``shutdown``) *after* every connection has
closed — and a watch stream never closes by itself, so without help a stopping server waits
for its watchers forever (granian) or until its graceful timeout (uvicorn).

So the app hears the signal itself: :func:`on_stop_signal` chains a callback in front of the
handler the server installed, and :class:`Lifecycle` runs it — it marks the app as stopping
(new watch streams answer 503) and interrupts every open stream, which then sends its last
event and ends. The server's own handler still runs, unchanged, right after.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["Lifecycle", "on_stop_signal"]

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Lifecycle:
    """Whether the app is stopping, and how to interrupt each open watch stream.

    Lives on the event loop's thread: streams register an ``interrupt`` callable when they
    open and remove it when they end; :meth:`stop` calls every one of them once.
    """

    def __init__(self, capacity: int = 0) -> None:
        self.stopping = False
        self.capacity = capacity  # most open watch streams (0: no cap)
        self._streams: set[Callable[[], None]] = set()
        self._opening = 0  # streams admitted that have not registered yet

    @property
    def full(self) -> bool:
        return 0 < self.capacity <= len(self._streams) + self._opening

    @contextlib.contextmanager
    def opening(self) -> Iterator[None]:
        """Count a stream being opened against the capacity until it registers (``add``) or
        fails. Admission and counting happen together, with no ``await`` between: a burst
        of clients arriving at once would otherwise all pass ``full`` while the first ones
        are still starting, and take the reserve the capacity keeps for other requests."""
        self._opening += 1
        try:
            yield
        finally:
            self._opening -= 1

    def add(self, interrupt: Callable[[], None]) -> None:
        self._streams.add(interrupt)

    def discard(self, interrupt: Callable[[], None]) -> None:
        self._streams.discard(interrupt)

    @property
    def open_streams(self) -> int:
        return len(self._streams)

    def stop(self) -> None:
        """End every open stream (each sends ``event: error`` ``unavailable``); refuse new
        ones from now on."""
        self.stopping = True
        streams, self._streams = self._streams, set()
        for interrupt in streams:
            interrupt()


def on_stop_signal(callback: Callable[[], None]) -> Callable[[], None]:
    """Run ``callback`` on the running loop when the process gets SIGINT or SIGTERM, before
    the handler the ASGI server installed (which still runs). Returns an undo function.

    Two kinds of handler are chained:

    - a loop handler (``loop.add_signal_handler``, granian's workers): asyncio keeps them in
      the loop's ``_signal_handlers`` table, the only place the previous one can be found;
      ours replaces it and calls it.
    - a process handler (``signal.signal``, uvicorn): ours wraps it. Only the main thread
      may install one; elsewhere (a server in a test thread) nothing is chained.
    """
    loop = asyncio.get_running_loop()
    undo: list[Callable[[], None]] = []
    table: Any = getattr(loop, "_signal_handlers", None)
    for sig in STOP_SIGNALS:
        previous_loop = table.get(sig) if isinstance(table, dict) else None
        if previous_loop is not None:
            def chained(previous: Any = previous_loop) -> None:
                callback()
                previous._run()  # the server's own handler (an asyncio.Handle)

            loop.add_signal_handler(sig, chained)
            undo.append(functools.partial(_restore_loop, loop, sig, previous_loop))
            continue
        if threading.current_thread() is not threading.main_thread():
            continue
        previous_process = signal.getsignal(sig)
        if not callable(previous_process):
            continue

        def wrapper(signum: int, frame: Any, previous: Any = previous_process) -> None:
            loop.call_soon_threadsafe(callback)
            previous(signum, frame)

        signal.signal(sig, wrapper)
        undo.append(functools.partial(_restore, sig, previous_process))

    def undo_all() -> None:
        for step in undo:
            with contextlib.suppress(ValueError, RuntimeError):  # the loop is already gone
                step()

    return undo_all


def _restore_loop(loop: asyncio.AbstractEventLoop, sig: int, previous: Any) -> None:
    loop.add_signal_handler(sig, previous._callback, *previous._args)


def _restore(sig: int, previous: Any) -> None:
    if threading.current_thread() is threading.main_thread():
        signal.signal(sig, previous)
