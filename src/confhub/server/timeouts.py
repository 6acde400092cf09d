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
from .errors import error_body

__all__ = ["BodyDeadline"]


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
        deadline = asyncio.get_running_loop().time() + self.timeout
        body_done = False
        started = False
        timeout = self.timeout

        async def timed_receive() -> Any:
            nonlocal body_done
            if body_done:
                return await receive()
            try:
                async with asyncio.timeout_at(deadline):  # no task per call (unlike wait_for)
                    message = await receive()
            except TimeoutError:
                raise RequestTimeout(f"the request body did not arrive within {timeout:g}s",
                                     timeout=timeout) from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_done = True
            return message

        async def tracked_send(message: Any) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, timed_receive, tracked_send)
        except RequestTimeout as exc:  # raised where no handler turned it into an answer
            if started:
                return
            body = error_body(exc.code, exc.message, exc.details)
            await send({"type": "http.response.start", "status": 408,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(body)).encode()),
                                    (b"connection", b"close")]})
            await send({"type": "http.response.body", "body": body})
