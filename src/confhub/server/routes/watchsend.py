"""Writing a watch stream's new revision from the bell, without waking the stream's task.

A thousand open streams of one tenant each get every revision. Woken one by one, each stream
resumes its task through five frames (the response, the event generator, ``AsyncWatch.get``,
its wait, the flag) to take one event and write it: 70 % of the event loop's samples went
there and 17 % to the server's ``send`` (py-spy, 1,000 watchers).
While a stream's task is parked, :class:`DirectSend` takes the revision for it in the bell's
flush (``AsyncWatch.deliver_directly``) and hands it to the server's ``send`` at once.

``send`` is awaitable, and most calls finish without suspending: granian queues the bytes
for its writer, uvicorn writes them to the transport. :class:`DirectSend` drives the
awaitable by hand, as a task would: if it finishes on its first step, the revision is
written; if it suspends (the client reads slowly and the server's queue is full), the rest
is driven from the done-callbacks of what it waits on, and until it ends every new revision
wakes the stream's task instead, which first waits for that write (:meth:`idle`). So the
writes of one stream never overlap and stay in revision order. For example, with revisions
7 and 8 arriving while the client is slow::

    7: the task is parked -> DirectSend writes it; send suspends -> in flight
    8: DirectSend is busy -> returns False -> AsyncWatch keeps 8, wakes the task
       the task's generator yields 8 -> the response waits for idle() -> 7 is written -> 8
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Generator
from typing import Any

from ...model import WatchEvent

__all__ = ["DirectSend"]


class DirectSend:
    """The direct writer of one SSE stream (module docstring). ``encode`` gives an event's
    SSE bytes; ``limit`` is the most one write carries (a bigger burst goes through the
    task, which writes it in pieces); ``count`` is told how many events went out;
    ``hang_up`` ends the stream when a write fails (the client is gone)."""

    __slots__ = ("_busy", "_count", "_encode", "_hang_up", "_idle", "_limit", "gone", "send",
                 "sent", "written_at")

    def __init__(self, sent: int, encode: Callable[[WatchEvent], bytes], limit: int,
                 count: Callable[[int], None], hang_up: Callable[[], None]) -> None:
        self.sent = sent  # the last revision written (the stream's resume point)
        self.written_at = 0.0  # time.monotonic() of the last direct write
        self.send: Callable[[dict[str, Any]], Any] | None = None  # set once the head is out
        self.gone = False
        self._encode = encode
        self._limit = limit
        self._count = count
        self._hang_up = hang_up
        self._busy: Generator[Any, None, Any] | None = None  # a suspended write
        self._idle: asyncio.Future[None] | None = None  # the task waiting for it to end

    def __call__(self, events: list[WatchEvent]) -> bool:
        """Write ``events`` now; False (nothing written) when this must be left to the task."""
        send = self.send
        if send is None or self.gone or self._busy is not None:
            return False
        if len(events) == 1:  # the usual case: one revision since the last
            body = self._encode(events[0])
        else:
            body = b"".join([self._encode(event) for event in events])
            if len(body) > self._limit:
                return False
        try:
            step = send({"type": "http.response.body", "body": body,
                         "more_body": True}).__await__()
            self._wait_on(step, next(step))
        except StopIteration:
            pass  # written without suspending: the usual case
        except Exception:  # noqa: BLE001 - the client is gone (each server words it its way)
            self._fail()
            return True
        self.sent = events[-1].revision
        self.written_at = time.monotonic()
        self._count(len(events))
        return True

    async def idle(self) -> None:
        """Return once no direct write is under way (the task writes only after it)."""
        while self._busy is not None:
            if self._idle is None:
                self._idle = asyncio.get_running_loop().create_future()
            await self._idle

    def _wait_on(self, step: Generator[Any, None, Any], awaited: Any) -> None:
        """``step`` suspended on ``awaited`` (a future, or None for a bare yield): resume it
        when that is done, as a task would."""
        self._busy = step
        if awaited is None:
            asyncio.get_running_loop().call_soon(self._resume)
            return
        awaited._asyncio_future_blocking = False  # what a task does before it waits
        awaited.add_done_callback(self._resume)

    def _resume(self, _done: object = None) -> None:
        step = self._busy
        assert step is not None
        try:
            awaited = next(step)
        except StopIteration:
            self._finish()
        except Exception:  # noqa: BLE001 - the client is gone
            self._fail()
        else:
            self._wait_on(step, awaited)

    def _fail(self) -> None:
        self.gone = True
        self._finish()
        self._hang_up()

    def _finish(self) -> None:
        self._busy = None
        idle, self._idle = self._idle, None
        if idle is not None and not idle.done():
            idle.set_result(None)
