"""``GET /v1/tenants/{t}/watch``: the tenant's changes as server-sent events.

The stream, in order::

    event: ready       id: R   data: {"revision": R}       where the watch starts
    id: R+k            data: {"revision", "changes": [...]}  one per committed revision
    event: progress    id: P   data: {"revision": P}        when idle and revisions passed by
    : ping                                                   keep-alive comment for proxies
    event: error       data: {"error": {...}}               the stream ends (tenant deleted,
                                                             server stopping: unavailable)

Every ``id`` is a revision the client has fully seen, so reconnecting with ``Last-Event-ID``
(browsers do it by themselves) resumes exactly after it: nothing lost, nothing twice. A start
revision older than retention keeps answers ``410 Gone`` before the stream opens.
"""

from __future__ import annotations

import asyncio
import re
import time
import weakref
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Header, Query
from starlette.requests import Request
from starlette.responses import Response

from ...asyncwatch import AsyncWatch
from ...errors import ConfhubError, InvalidRequest, Unavailable
from ...model import WatchEvent
from ..auth import watch_slot
from ..deps import state_of, tenant_of
from ..errors import response_for
from ..lifecycle import Lifecycle
from ..responses import dumps
from ..schemas import MAX_INT, NAME_PATTERN, errors
from .configs import Name
from .watchsend import DirectSend

router = APIRouter(tags=["watch"])

OptName = Annotated[str | None, Query(max_length=128, pattern=NAME_PATTERN)]
SSE_HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
PING = b": ping\n\n"  # a comment: keeps proxies from closing an idle stream
CHUNK_BYTES = 64 * 1024  # what one write of a stream carries at most (plus one event)
RAW_SEND = "confhub.raw_send"
"""Scope key of the server's own ``send``, set by the app's outermost layer for watch
streams: an event's bytes go straight to it instead of through every middleware's send
wrapper (they only look at the response start, which still goes through them all)."""


@router.get(
    "/v1/tenants/{tenant}/watch", response_model=None,
    responses={200: {"content": {"text/event-stream": {}},
                     "description": "server-sent events, one per committed revision"},
               **errors(400, 404, 410, 429, 503)},
    summary="Stream changes as server-sent events; resume with Last-Event-ID")
async def watch(request: Request, tenant: Name,
                since: Annotated[int | None, Query(ge=0, le=MAX_INT)] = None,
                namespace: OptName = None, key: OptName = None, env: OptName = None,
                last_event_id: Annotated[str | None, Header(max_length=32)] = None
                ) -> Response:
    start = _resume_point(last_event_id, since)
    lifecycle = state_of(request).lifecycle
    if lifecycle.stopping:
        raise Unavailable("the server is shutting down; connect to another instance",
                          retry_after=1)
    if lifecycle.full:  # the rest of the connection limit stays free for other requests
        raise Unavailable(f"this server holds its maximum of {lifecycle.capacity} watch "
                          "streams (serve --max-connections); retry later or elsewhere",
                          retry_after=5, limit=lifecycle.capacity)
    with lifecycle.opening():  # counts against the capacity from here, burst or not
        slot = watch_slot(request)  # TooManyRequests past the token's watcher limit
        slot.__enter__()
        try:
            stream = tenant_of(request, tenant).watch_events(namespace, key, env, since=start)
            await stream.start()  # a missing tenant or removed history: an error
        except BaseException:
            slot.__exit__(None, None, None)
            raise
        heartbeat = state_of(request).heartbeat
        metrics = request.app.state.metrics
        metrics.watch_streams.inc()
        lifecycle.add(stream.interrupt)
    release = _Release(stream, slot, metrics, lifecycle)
    direct = DirectSend(stream.revision, _encoded, CHUNK_BYTES, metrics.count_watch_events,
                        stream.interrupt)
    stream.deliver_directly(direct)  # from once the response has its ``send`` (EventStream)
    events = _events(stream, heartbeat, metrics, release, lifecycle, direct)
    # A client gone before the stream starts leaves the generator unstarted, and an unstarted
    # generator runs no ``finally``: release when it is collected too.
    weakref.finalize(events, release)
    return EventStream(events, stream.interrupt, direct)


class LeanWatch:
    """ASGI layer sending ``GET /v1/tenants/{t}/watch`` straight to :func:`watch`.

    A stream lives for hours, and everything between the server and the handler stays alive
    with it: FastAPI's routing, exception and exit-stack middlewares hold a dozen coroutine
    frames and exit stacks per stream (about half of a stream's Python memory), and every
    event resumes through all of them. A request this layer is sure of — known query
    parameters with valid values, a valid ``Last-Event-ID`` — calls the very handler the
    FastAPI route calls; anything else falls through to the route, which answers the errors
    (422 and the rest) and stays the documented description of the path. It sits inside the
    auth layer, so the token's rules apply alike.
    """

    def __init__(self, app: Any, fastapi_app: Any) -> None:
        self.app = app
        self.fastapi_app = fastapi_app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        call = lean_call(scope) if scope["type"] == "http" else None
        if call is None:
            await self.app(scope, receive, send)
            return
        response = await lean_response(scope, receive, self.fastapi_app, call)
        await response(scope, receive, send)


async def lean_response(scope: dict[str, Any], receive: Any, fastapi_app: Any,
                        call: dict[str, Any]) -> Response:
    """What :func:`watch` answers a request ``lean_call`` read (``call``): the stream, or the
    error answer the FastAPI route would give. Shared by :class:`LeanWatch` and the lean
    paths at the top of the app (``fastpath.LeanPaths.watch``)."""
    scope["app"] = fastapi_app  # what Request.app (and so state_of) reads
    try:
        return await watch(Request(scope, receive), **call)
    except Exception as exc:  # the same answers the FastAPI route gives
        return response_for(exc, "GET", scope["path"])


_NAME = re.compile(NAME_PATTERN.strip("^$"))
_QUERY_NAMES = ("namespace", "key", "env")


def lean_call(scope: dict[str, Any]) -> dict[str, Any] | None:
    """The handler's arguments if the request is a valid watch request; None if in doubt."""
    if scope["method"] != "GET":
        return None
    parts = scope["path"].split("/")
    if (len(parts) != 5 or parts[1] != "v1" or parts[2] != "tenants" or parts[4] != "watch"
            or not _NAME.fullmatch(parts[3])):
        return None
    call: dict[str, Any] = {"tenant": parts[3], "since": None, "namespace": None, "key": None,
                            "env": None, "last_event_id": None}
    raw = scope.get("query_string")
    if raw:
        try:
            pairs = parse_qsl(raw.decode("ascii"), keep_blank_values=True,
                              strict_parsing=True)
        except (UnicodeDecodeError, ValueError):
            return None
        for name, value in pairs:
            if name not in call or name == "tenant" or call[name] is not None:
                return None
            if name == "since":
                if not (value.isascii() and value.isdigit()) or int(value) > MAX_INT:
                    return None
                call["since"] = int(value)
            elif name in _QUERY_NAMES and _NAME.fullmatch(value):
                call[name] = value
            else:
                return None
    for header, value in scope["headers"]:
        if header == b"last-event-id":
            if call["last_event_id"] is not None or len(value) > 32:
                return None
            call["last_event_id"] = value.decode("latin-1")
    return call


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
    """A server-sent event stream, and a listener for the client hanging up.

    Neither granian nor uvicorn fails a write to a client that has gone (they drop it), so a
    stream cannot learn it from its keep-alives: it listens for the ASGI ``http.disconnect``
    message instead, and then interrupts the watch, which ends the stream and frees its slot
    and its subscription at once.
    """

    media_type = "text/event-stream"

    def __init__(self, chunks: AsyncIterator[bytes], interrupt: Callable[[], None],
                 direct: DirectSend | None = None) -> None:
        # Not Response.__init__: that would declare a Content-Length of 0 for a missing body.
        self.status_code = 200
        self.background = None
        self.init_headers(SSE_HEADERS)
        self._chunks = chunks
        self._interrupt = interrupt
        # New revisions written from the bell while the task is parked (watchsend.py).
        self._direct = direct

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        gone = False

        def hung_up(listener: asyncio.Future[None]) -> None:
            nonlocal gone
            if not listener.cancelled():
                gone = True
                self._interrupt()

        listener = asyncio.ensure_future(_disconnected(receive))
        listener.add_done_callback(hung_up)
        chunks, direct = self._chunks, self._direct
        send_body = scope.get(RAW_SEND, send)
        try:
            await send({"type": "http.response.start", "status": 200,
                        "headers": self.raw_headers})
            if direct is not None:
                direct.send = send_body  # it writes nothing before it has one
            async for chunk in chunks:
                if direct is not None:
                    await direct.idle()  # a direct write still under way goes first
                    gone = gone or direct.gone
                if gone:
                    break
                await send_body({"type": "http.response.body", "body": chunk,
                                 "more_body": True})
            if not gone:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        except Exception:  # noqa: BLE001 - the client is gone (each server words it its way)
            pass
        finally:
            listener.cancel()
            await chunks.aclose()  # type: ignore[attr-defined]


async def _disconnected(receive: Any) -> None:
    """Return when the client has hung up (the request's own body is read and dropped)."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


class _Release:
    """Unsubscribe, free the watcher slot, count the stream closed: exactly once."""

    def __init__(self, stream: AsyncWatch, slot: Any, metrics: Any,
                 lifecycle: Lifecycle) -> None:
        self._parts: tuple[AsyncWatch, Any, Any, Lifecycle] | None = (
            stream, slot, metrics, lifecycle)

    def __call__(self) -> None:
        parts, self._parts = self._parts, None
        if parts is not None:
            stream, slot, metrics, lifecycle = parts
            lifecycle.discard(stream.interrupt)
            stream.close()
            metrics.watch_streams.dec()
            slot.__exit__(None, None, None)


async def _events(stream: AsyncWatch, heartbeat: float, metrics: Any,
                  release: _Release, lifecycle: Lifecycle,
                  direct: DirectSend) -> AsyncIterator[bytes]:
    """The stream's bytes, besides the revisions ``direct`` writes while this waits. Events
    that are already waiting go out in one chunk (a watcher that fell behind catches up in
    few writes); an idle stream pings every ``heartbeat``; a stopping server sends
    ``event: error`` (``unavailable``) and ends it. ``direct.sent`` is the last revision
    written, by either; a stream that ``direct`` kept busy is not idle, so its ping waits
    for a heartbeat of quiet after that write."""
    try:
        yield _marker("ready", direct.sent)
        wait = heartbeat
        while True:
            event = await stream.get(timeout=wait)
            wait = heartbeat
            if event is not None:
                chunk, count, direct.sent = _chunk(event, stream)
                yield chunk
                metrics.count_watch_events(count)
                if count + stream.waiting > SLOW_BATCH:
                    metrics.slow_watchers.inc()
            elif lifecycle.stopping:
                raise Unavailable("the server is shutting down; reconnect (to another "
                                  "instance) with Last-Event-ID to resume", retry_after=1,
                                  revision=direct.sent)
            elif stream.revision > direct.sent:  # filtered-out revisions passed by
                direct.sent = stream.revision
                yield _marker("progress", direct.sent)
            elif (quiet := time.monotonic() - direct.written_at) < heartbeat \
                    and not stream.interrupted:
                wait = heartbeat - quiet  # written to meanwhile: not idle yet
            else:
                yield PING
    except ConfhubError as exc:
        yield sse_event(dumps(exc.to_dict()), event="error")
    finally:
        release()


def _chunk(first: WatchEvent, stream: AsyncWatch) -> tuple[bytes, int, int]:
    """``first`` and the events already waiting after it, up to about CHUNK_BYTES: (the
    bytes, how many events, the last revision). A stream catching up writes pages of
    history in pieces of bounded size, each sent only when the client has taken the one
    before (the server's send waits on the socket), so an unread stream holds little."""
    parts = [_encoded(first)]
    size, last = len(parts[0]), first.revision
    while size < CHUNK_BYTES:
        more = stream.ready(1)
        if not more:
            break
        encoded = _encoded(more[0])
        parts.append(encoded)
        size += len(encoded)
        last = more[0].revision
    return b"".join(parts), len(parts), last


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
    """The SSE bytes of recent events, so a thousand streams encode a revision once (a filter
    that keeps every change hands all of them the very same event object, and watchers
    catching up share pages of events: watch.SharedPages). Bounded in count and in bytes."""

    def __init__(self, size: int = 2048, max_bytes: int = 32 * 1024 * 1024) -> None:
        self._size = size
        self._max_bytes = max_bytes
        self._bytes = 0
        self._items: dict[int, tuple[WatchEvent, bytes]] = {}

    def __call__(self, event: WatchEvent) -> bytes:
        hit = self._items.get(id(event))
        if hit is not None and hit[0] is event:  # holding the event keeps its id unique
            return hit[1]
        data = {"revision": event.revision,
                "changes": [change.to_dict() for change in event.changes]}
        encoded = sse_event(dumps(data), id=event.revision)
        if len(encoded) > self._max_bytes // 8:
            return encoded  # a huge one is not kept
        while self._items and (len(self._items) >= self._size
                               or self._bytes + len(encoded) > self._max_bytes):
            self._bytes -= len(self._items.pop(next(iter(self._items)))[1])
        self._items[id(event)] = (event, encoded)
        self._bytes += len(encoded)
        return encoded


_encoded = _EncodedEvents()
