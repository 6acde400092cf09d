"""``GET /v1/tenants/{t}/watch``: the tenant's changes as server-sent events.

The stream, in order::

    event: ready       id: R   data: {"revision": R}       where the watch starts
    id: R+k            data: {"revision", "changes": [...]}  one per committed revision
    event: progress    id: P   data: {"revision": P}        when idle and revisions passed by
    : ping                                                   keep-alive comment for proxies
    event: error       data: {"error": {...}}               the stream ends (tenant deleted...)

Every ``id`` is a revision the client has fully seen, so reconnecting with ``Last-Event-ID``
(browsers do it by themselves) resumes exactly after it: nothing lost, nothing twice. A start
revision older than retention keeps answers ``410 Gone`` before the stream opens.
"""

from __future__ import annotations

import weakref
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query
from starlette.requests import Request
from starlette.responses import Response

from ...errors import ConfhubError, InvalidRequest
from ...model import WatchEvent
from ...watch import AsyncWatch
from ..auth import watch_slot
from ..deps import hub_of, state_of
from ..responses import dumps
from ..schemas import MAX_INT, errors
from .configs import Name

router = APIRouter(tags=["watch"])

OptName = Annotated[str | None, Query(max_length=128)]
SSE_HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
PING = b": ping\n\n"  # a comment: keeps proxies from closing an idle stream


@router.get(
    "/v1/tenants/{tenant}/watch", response_model=None,
    responses={200: {"content": {"text/event-stream": {}},
                     "description": "server-sent events, one per committed revision"},
               **errors(400, 404, 410)},
    summary="Stream changes as server-sent events; resume with Last-Event-ID")
async def watch(request: Request, tenant: Name,
                since: Annotated[int | None, Query(ge=0, le=MAX_INT)] = None,
                namespace: OptName = None, key: OptName = None, env: OptName = None,
                last_event_id: Annotated[str | None, Header(max_length=32)] = None
                ) -> Response:
    start = _resume_point(last_event_id, since)
    slot = watch_slot(request)  # TooManyRequests past the token's watcher limit
    slot.__enter__()
    try:
        stream = hub_of(request).tenant(tenant).watch_events(namespace, key, env, since=start)
        await stream.start()  # a missing tenant or removed history: an error, not a stream
    except BaseException:
        slot.__exit__(None, None, None)
        raise
    heartbeat = state_of(request).heartbeat
    metrics = request.app.state.metrics
    metrics.watch_streams.inc()
    release = _Release(stream, slot, metrics)
    events = _events(stream, heartbeat, metrics, release)
    # A client gone before the stream starts leaves the generator unstarted, and an unstarted
    # generator runs no ``finally``: release when it is collected too.
    weakref.finalize(events, release)
    return EventStream(events)


def _resume_point(last_event_id: str | None, since: int | None) -> int | None:
    """``Last-Event-ID`` (set by reconnecting clients) wins over ``?since=``."""
    if last_event_id is None or not last_event_id.strip():
        return since
    text = last_event_id.strip()
    if not text.isdigit() or int(text) > MAX_INT:
        raise InvalidRequest(f"Last-Event-ID must be a revision number, not {last_event_id!r}")
    return int(text)


SLOW_BATCH = 100  # revisions waiting at once: the stream had fallen behind


class EventStream(Response):
    """A server-sent event stream in one task per connection.

    Starlette's StreamingResponse (and sse-starlette's on top of it) runs a second task per
    connection to notice a client that hangs up; here the stream itself notices, when a write
    fails — at the latest at the next keep-alive — which halves the tasks and memory a thousand
    idle watchers cost.
    """

    media_type = "text/event-stream"

    def __init__(self, chunks: AsyncIterator[bytes]) -> None:
        # Not Response.__init__: that would declare a Content-Length of 0 for a missing body.
        self.status_code = 200
        self.background = None
        self.init_headers(SSE_HEADERS)
        self._chunks = chunks

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200,
                    "headers": self.raw_headers})
        chunks = self._chunks
        try:
            async for chunk in chunks:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except Exception:  # noqa: BLE001 - the client is gone (each server words it its way)
            pass
        finally:
            await chunks.aclose()  # type: ignore[attr-defined]


class _Release:
    """Unsubscribe, free the watcher slot, count the stream closed: exactly once."""

    def __init__(self, stream: AsyncWatch, slot: Any, metrics: Any) -> None:
        self._parts: tuple[AsyncWatch, Any, Any] | None = (stream, slot, metrics)

    def __call__(self) -> None:
        parts, self._parts = self._parts, None
        if parts is not None:
            stream, slot, metrics = parts
            stream.close()
            metrics.watch_streams.dec()
            slot.__exit__(None, None, None)


async def _events(stream: AsyncWatch, heartbeat: float, metrics: Any,
                  release: _Release) -> AsyncIterator[bytes]:
    """The stream's bytes. Events that are already waiting go out in one chunk (a watcher
    that fell behind catches up in few writes); an idle stream pings every ``heartbeat``."""
    sent = stream.revision
    try:
        yield _marker("ready", sent)
        while True:
            event = await stream.get(timeout=heartbeat)
            if event is not None:
                batch = [event, *stream.ready()]
                yield b"".join(map(_encoded, batch))
                metrics.watch_events.inc(len(batch))
                if len(batch) > SLOW_BATCH:
                    metrics.slow_watchers.inc()
                sent = batch[-1].revision
            elif stream.revision > sent:  # filtered-out revisions passed: move the resume point
                sent = stream.revision
                yield _marker("progress", sent)
            else:
                yield PING
    except ConfhubError as exc:
        yield sse_event(dumps(exc.to_dict()), event="error")
    finally:
        release()


def sse_event(data: bytes, *, event: str | None = None, id: int | None = None) -> bytes:
    """One server-sent event (``id:``, ``event:``, then ``data:`` lines, a blank line)::

        sse_event(b'{"a": 1}', event="error")  ->  b'event: error\\r\\ndata: {"a": 1}\\r\\n\\r\\n'

    ``data`` is compact JSON, so it never holds a line break that would need a second
    ``data:`` line."""
    head = (b"id: %d\r\n" % id if id is not None else b"") + (
        b"event: " + event.encode() + b"\r\n" if event is not None else b"")
    return head + b"data: " + data + b"\r\n\r\n"


def _marker(kind: str, revision: int) -> bytes:
    return sse_event(b'{"revision": %d}' % revision, event=kind, id=revision)


class _EncodedEvents:
    """The SSE bytes of the last few events, so a thousand streams encode a revision once
    (a filter that keeps every change hands all of them the very same event object)."""

    def __init__(self, size: int = 64) -> None:
        self._size = size
        self._items: dict[int, tuple[WatchEvent, bytes]] = {}

    def __call__(self, event: WatchEvent) -> bytes:
        hit = self._items.get(id(event))
        if hit is not None and hit[0] is event:  # holding the event keeps its id unique
            return hit[1]
        data = {"revision": event.revision,
                "changes": [change.to_dict() for change in event.changes]}
        encoded = sse_event(dumps(data), id=event.revision)
        if len(self._items) >= self._size:
            self._items.pop(next(iter(self._items)))
        self._items[id(event)] = (event, encoded)
        return encoded


_encoded = _EncodedEvents()
