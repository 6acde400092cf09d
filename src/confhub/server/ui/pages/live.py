"""Live updates: the tenant's watch stream as server-sent events for the UI's pages, and the
"changed elsewhere" notice (with its diff) a key page shows when its key moves on.

The stream is the hub's watch (``watch_events``), so it keeps the watch's promises: every
revision after ``since`` in order, once; ``id`` is the revision, so the browser's automatic
reconnect (``Last-Event-ID``) resumes where it was. Events carry no values (pages fetch what
they show), and only changes in namespaces the user may see.
"""

from __future__ import annotations

import json
import weakref
from collections.abc import AsyncIterator
from contextlib import nullcontext
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from ....errors import ConfhubError, InvalidRequest, Unavailable
from ....model import WatchEvent, check_name
from ...routes.watch import EventStream
from ..render import line_diff
from ..session import Session
from .common import env_of, open_tenant, param
from .history import version_value

if TYPE_CHECKING:
    from ..app import UI

__all__ = ["PAGES"]

HEARTBEAT = 15.0


def _start(request: Request) -> int | None:
    raw = request.headers.get("last-event-id") or param(request, "since")
    if not raw:
        return None
    if not raw.strip().isdigit():
        raise InvalidRequest(f"since must be a revision number, not {raw!r}")
    return int(raw)


async def events(request: Request, ui: UI, session: Session) -> Response:
    name = request.path_params["tenant"]
    namespace = param(request, "namespace") or None
    key = param(request, "key") or None
    env = param(request, "env") or None
    for kind, value in (("namespace", namespace), ("key", key), ("env", env)):
        if value is not None:
            check_name(kind, value)
    cfg = await open_tenant(ui, session, name, namespace=namespace if namespace else "")
    lifecycle = ui.lifecycle
    if lifecycle is not None and lifecycle.stopping:
        raise Unavailable("the server is stopping; reconnect to another one", retry_after=1)
    slot = (ui.guard.watch_slot(session.principal) if ui.guard is not None
            and session.auth_enabled else nullcontext())
    slot.__enter__()
    try:
        stream = cfg.watch_events(namespace, key, env, since=_start(request))
        await stream.start()
    except BaseException:
        slot.__exit__(None, None, None)
        raise
    released = False
    if lifecycle is not None:
        lifecycle.add(stream.interrupt)

    def release() -> None:
        nonlocal released
        if not released:
            released = True
            if lifecycle is not None:
                lifecycle.discard(stream.interrupt)
            stream.close()
            slot.__exit__(None, None, None)

    chunks = _chunks(stream, session, name, release, lifecycle)
    weakref.finalize(chunks, release)
    return EventStream(chunks, stream.interrupt)


def _event(event: WatchEvent, session: Session, tenant: str) -> bytes:
    changes = [{"namespace": c.namespace, "key": c.key, "env": c.env, "version": c.version,
                "op": c.op, "author": c.author, "reason": c.reason}
               for c in event.changes if session.sees(tenant, c.namespace)]
    data = json.dumps({"revision": event.revision, "changes": changes})
    return f"id: {event.revision}\ndata: {data}\n\n".encode()


async def _chunks(stream: Any, session: Session, tenant: str,
                  release: Any, lifecycle: Any | None) -> AsyncIterator[bytes]:
    try:
        yield f"event: ready\nid: {stream.revision}\ndata: {{}}\n\n".encode()
        while True:
            event = await stream.get(timeout=HEARTBEAT)
            if event is None and lifecycle is not None and lifecycle.stopping:
                raise Unavailable("the server is stopping; reconnect to another one",
                                  retry_after=1)
            if event is None:
                yield b": ping\n\n"
                continue
            yield b"".join(_event(e, session, tenant) for e in [event, *stream.ready()])
    except ConfhubError as exc:
        yield f"event: error\ndata: {json.dumps(exc.to_dict())}\n\n".encode()
    finally:
        release()


async def changed(request: Request, ui: UI, session: Session) -> Response:
    """The notice a key page shows when its key changed elsewhere: who, why, and the diff."""
    name, ns, key = (request.path_params[p] for p in ("tenant", "namespace", "key"))
    cfg = await open_tenant(ui, session, name, namespace=check_name("namespace", ns))
    env = env_of(request)
    frm, to = param(request, "from"), param(request, "to")
    if not (frm.isdigit() and to.isdigit()):
        raise InvalidRequest("from and to must be version numbers")
    left = await version_value(cfg, ns, key, env, int(frm)) if int(frm) else None
    right = await version_value(cfg, ns, key, env, int(to))
    version = (await cfg_history_one(cfg, ns, key, env, int(to)))
    return ui.page(request, session, "_changed.html", tenant=name, namespace=ns, key=key,
                   env=env, version=version,
                   diff=line_diff(left, right, f"version {frm} (on screen)", f"version {to}"))


async def cfg_history_one(cfg: Any, ns: str, key: str, env: str, version: int) -> Any:
    from ...deps import call

    found = await call(cfg.history, ns, key, env=env, limit=1, before=version + 1)
    return found[0] if found else None


PAGES = [
    ("/t/{tenant}/events", events, ["GET"]),
    ("/t/{tenant}/k/{namespace}/{key}/changed", changed, ["GET"]),
]
