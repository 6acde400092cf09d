"""A flag source that ends a session while the read of the stream's first event is still
waiting closes that read and the stream to their end before it goes on: nothing is left for
the loop's shutdown to collect."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncGenerator

from confhub.openfeature.source import LiveFlags


def test_a_waiting_first_read_and_its_stream_are_closed_before_the_session_ends() -> None:
    closed: list[str] = []

    async def stream() -> AsyncGenerator[int, None]:
        try:
            await asyncio.sleep(3600)  # the server has not sent anything yet
            yield 1
        finally:
            await asyncio.sleep(0)  # an asynchronous close, like httpx's
            closed.append("stream")

    async def session_ends() -> tuple[bool, list[str]]:
        events = stream()
        pending = asyncio.ensure_future(events.__anext__())
        await asyncio.sleep(0)  # the read is now waiting inside the generator
        await LiveFlags._close(events, pending)
        return pending.cancelled(), list(closed)

    cancelled, closed_by_then = asyncio.run(session_ends())
    assert cancelled
    assert closed_by_then == ["stream"]


def test_a_first_read_that_failed_is_retrieved_not_reported_later() -> None:
    async def stream() -> AsyncGenerator[int, None]:
        raise ConnectionError("refused")
        yield 1  # pragma: no cover - makes this a generator

    async def session_ends() -> None:
        events = stream()
        pending = asyncio.ensure_future(events.__anext__())
        await asyncio.wait([pending])
        await LiveFlags._close(events, pending)

    loop = asyncio.new_event_loop()
    reported: list[str] = []
    loop.set_exception_handler(lambda _, context: reported.append(context["message"]))
    try:
        loop.run_until_complete(session_ends())
        gc.collect()  # the finished read is gone: unretrieved, it would be reported now
    finally:
        loop.close()
    assert reported == []
