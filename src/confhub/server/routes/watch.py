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

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.requests import Request
from starlette.responses import Response

from ...errors import ConfhubError, InvalidRequest
from ...model import WatchEvent
from ...watch import AsyncWatch
from ..deps import hub_of, state_of
from ..responses import dumps
from ..schemas import MAX_INT, errors
from .configs import Name

router = APIRouter(tags=["watch"])

OptName = Annotated[str | None, Query(max_length=128)]
SEND_TIMEOUT = 30.0  # a client that takes no bytes for this long is dropped


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
    stream = hub_of(request).tenant(tenant).watch_events(namespace, key, env, since=start)
    await stream.start()  # a missing tenant or removed history is an error answer, not a stream
    heartbeat = state_of(request).heartbeat
    metrics = request.app.state.metrics
    return EventSourceResponse(_events(stream, heartbeat, metrics), ping=heartbeat,
                               send_timeout=SEND_TIMEOUT,
                               headers={"Cache-Control": "no-store"})


def _resume_point(last_event_id: str | None, since: int | None) -> int | None:
    """``Last-Event-ID`` (set by reconnecting clients) wins over ``?since=``."""
    if last_event_id is None or not last_event_id.strip():
        return since
    text = last_event_id.strip()
    if not text.isdigit() or int(text) > MAX_INT:
        raise InvalidRequest(f"Last-Event-ID must be a revision number, not {last_event_id!r}")
    return int(text)


async def _events(stream: AsyncWatch, heartbeat: float,
                  metrics: Any) -> AsyncIterator[ServerSentEvent]:
    sent = stream.revision
    metrics.watch_streams.inc()
    try:
        yield _marker("ready", sent)
        while True:
            event = await stream.get(timeout=heartbeat)
            if event is not None:
                yield ServerSentEvent(data=_payload(event), id=str(event.revision))
                metrics.watch_events.inc()
                sent = event.revision
            elif stream.revision > sent:  # filtered-out revisions passed: move the resume point
                sent = stream.revision
                yield _marker("progress", sent)
    except ConfhubError as exc:
        yield ServerSentEvent(event="error", data=dumps(exc.to_dict()).decode())
    finally:
        stream.close()
        metrics.watch_streams.dec()


def _marker(kind: str, revision: int) -> ServerSentEvent:
    return ServerSentEvent(event=kind, id=str(revision), data=f'{{"revision": {revision}}}')


def _payload(event: WatchEvent) -> str:
    data: dict[str, Any] = {"revision": event.revision,
                            "changes": [change.to_dict() for change in event.changes]}
    return dumps(data).decode()
