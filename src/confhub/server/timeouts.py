"""Clients that send too slowly are cut off (DESIGN.md section 7).

A request whose body never arrives (``Content-Length: 100``, two bytes sent) would otherwise
hold its connection, and a slot of the server's connection limit, for as long as the client
likes. The ASGI server times out slow *headers* itself (granian's ``header_read_timeout``,
set by ``serve``); this layer gives the *body* a deadline: all of it must arrive within
``timeout`` seconds of the request's start, else the answer is ``408 request_timeout`` and the
connection is closed.

Only the wait for the body is timed. Once the last body message has arrived, ``receive`` is
passed through untouched (a watch stream waits on it for the client to hang up).
"""

from __future__ import annotations

import asyncio
from typing import Any

from ..errors import RequestTimeout
from .errors import confhub_error_response
from .loops import running_loop

__all__ = ["BodyDeadline", "receive_within"]


def receive_within(receive: Any, timeout: float) -> Any:
    """``receive`` for a request that must have sent its whole body ``timeout`` seconds from
    now: a later body message raises RequestTimeout. After the last body message, the
    original ``receive`` is called untouched (a stream waits on it for the client to leave).

    One timer per request, started by the first wait for the body and stopped by its last
    message — not one ``asyncio.timeout`` per ``receive`` (a PUT's body is one message, and
    the timeout's machinery cost more than the rest of reading it). When the timer fires, a
    task waiting for the body is cancelled and gets RequestTimeout instead; one that is not
    waiting gets it from its next ``receive``. Routes that never read the body start no
    timer: the deadline is the body's, not the request's. For example, with ``timeout=30``::

        t=0    receive() -> first chunk, more_body   timer set for t=30
        t=2    receive() -> last chunk               timer cancelled, body_done
        t=40   receive() -> http.disconnect          passed through, no deadline
    """
    loop = running_loop()
    deadline = loop.time() + timeout
    body_done = late = False
    waiting: asyncio.Task[Any] | None = None
    timer: asyncio.TimerHandle | None = None

    def cut_off() -> None:
        nonlocal late
        late = True
        if waiting is not None:
            waiting.cancel()

    def too_late() -> RequestTimeout:
        return RequestTimeout(f"the request body did not arrive within {timeout:g}s",
                              timeout=timeout)

    async def timed_receive() -> Any:
        nonlocal body_done, waiting, timer
        if body_done:
            return await receive()
        if late:
            raise too_late()
        if timer is None:
            timer = loop.call_at(deadline, cut_off)
        task = waiting = asyncio.current_task(loop)  # given the loop: no system call
        try:
            message = await receive()
        except asyncio.CancelledError:
            if late and task is not None and task.uncancel() == 0:
                raise too_late() from None
            raise
        finally:
            waiting = None
        if message["type"] != "http.request" or not message.get("more_body", False):
            body_done = True
            timer.cancel()
        return message

    return timed_receive


class BodyDeadline:
    """ASGI middleware: 408 when the request body is not complete ``timeout`` seconds after
    the request started (0: no deadline)."""

    def __init__(self, app: Any, timeout: float) -> None:
        self.app = app
        self.timeout = timeout

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or self.timeout <= 0:
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked_send(message: Any) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive_within(receive, self.timeout), tracked_send)
        except RequestTimeout as exc:  # raised where no handler turned it into an answer
            if started:
                return
            # the 408 every route gives: the connection closes after it (errors.py)
            await confhub_error_response(exc)(scope, receive, send)
