"""``create_app(hub)``: the confhub HTTP API as an ASGI application.

The app is built around a hub it is given (no globals, no I/O at import): ``serve.py`` opens
the hub from its settings, tests may pass any hub. Layers, outermost first::

    RequestLayer  request id, metrics of every answer (Prometheus), the access log
    CORS          browser origins allowed by ``serve --cors-origin`` (absent by default)
    BodyDeadline  408 for a request body that does not arrive in time (server/timeouts.py)
    AuthLayer     the access policy (server/auth.py): token, rate, role, tenant, namespace
    HeadBody      HEAD answered like GET, body dropped (servers differ on this)
    FastReads     cached single-key GETs answered from pre-encoded bytes (counted only)
    FastWrites    single-key PUTs sent straight to their handler (counted only)
    FastAPI       every route, documented at /openapi.json and /docs

A cached single-key GET and a single-key PUT, without a query string, skip the layers:
``LeanPaths`` (server/fastpath.py) answers them at the top, doing what RequestLayer,
BodyDeadline and AuthLayer do through their own methods; with CORS configured they take the
layered way to FastReads and FastWrites.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline
from starlette.middleware.cors import CORSMiddleware

from .auth import AuthLayer, Guard, Limits
from .deps import STORAGE_THREADS, ServerState
from .errors import install_error_handlers
from .fastpath import FastReads, FastWrites, LeanPaths
from .lifecycle import on_stop_signal
from .metrics import Metrics
from .openapi import document
from .requestlog import AccessLog, RequestLayer
from .routes import (
    changes,
    configs,
    history,
    maintenance,
    ofrep,
    ops,
    rollouts,
    security,
    simple,
    snapshots,
    tenants,
    transfer,
    txn,
    validation,
    watch,
)
from .timeouts import BodyDeadline
from .ui import create_ui

__all__ = ["DEFAULT_CLIENT_TIMEOUT", "DOCS_ASSETS", "create_app"]

DOCS_ASSETS = "/docs-assets"  # where /docs and /redoc find their scripts (packaged)
DEFAULT_CLIENT_TIMEOUT = 30.0  # seconds a request's headers, and then its body, may take
# What a browser script on an allowed origin may read of an answer besides the basics.
CORS_EXPOSED_HEADERS = ["ETag", "Location", "Retry-After", "X-Request-Id", "X-Confhub-Revision",
                        "X-Confhub-Warnings"]

DESCRIPTION = """\
Versioned, multi-tenant configuration store. Errors always have the body
`{"error": {"code", "message", "details"}}`. Reads carry an `ETag` (the version for a single
entry); writes accept `If-Match: "N"` and `If-None-Match: *` for compare-and-set.
"""


class HeadBody:
    """HEAD is GET without the body (RFC 9110 9.3.2): routed as GET, answered with the GET's
    status and headers (Content-Length included) and an empty body, sent at once — so even a
    watch stream's HEAD ends right after its headers."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return
        finished = False

        async def send_wrapper(message: dict[str, Any]) -> None:
            nonlocal finished
            if finished:
                return
            if message["type"] == "http.response.start":
                await send(message)
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                finished = True

        await self.app({**scope, "method": "GET"}, receive, send_wrapper)


def create_app(hub: Any, *, close_hub: bool = False, fast_paths: bool = True,
               heartbeat: float = 15.0, limits: Limits | None = None,
               cors_origins: Sequence[str] = (), client_timeout: float = DEFAULT_CLIENT_TIMEOUT,
               max_watch_streams: int = 0, access_log: AccessLog | None = None,
               compact_interval: float | None = None) -> Any:
    """Build the ASGI app serving ``hub``; ``close_hub`` closes it at shutdown (``serve``);
    ``heartbeat`` is how often (seconds) an idle watch stream sends a keep-alive; ``limits``
    are the per-token abuse limits (``auth.Limits``); the auth layer wraps everything, the
    fast paths included. ``cors_origins`` are the browser origins allowed to call the API
    (none: no cross-origin access); ``client_timeout`` is how long a request body may take
    to arrive (408 after); ``max_watch_streams`` caps the open watch streams of this app (0:
    no cap; ``serve`` derives it from its connection limit, keeping a reserve for the rest);
    ``access_log`` writes one line per request (None: no log); ``compact_interval``
    (seconds) runs retention in the background (None: never).
    """

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        executor = ThreadPoolExecutor(STORAGE_THREADS, thread_name_prefix="confhub-storage")
        asyncio.get_running_loop().set_default_executor(executor)
        # SIGTERM ends the watch streams first: the server waits for open connections.
        undo_signal_hook = on_stop_signal(state.lifecycle.stop)
        stop_compaction = hub.compact_in_background(compact_interval) if compact_interval \
            else None
        try:
            yield
        finally:
            undo_signal_hook()
            state.lifecycle.stop()
            if stop_compaction is not None:
                stop_compaction()
            executor.shutdown(wait=True, cancel_futures=True)
            if close_hub:
                hub.close()
            if access_log is not None:
                access_log.flush()  # the last turn's lines

    # FastAPIOffline: /docs and /redoc load their scripts from the package, not a CDN.
    app: FastAPI = FastAPIOffline(title="confhub", version=_version(), description=DESCRIPTION,
                                  lifespan=lifespan, static_url=DOCS_ASSETS)
    state = ServerState(hub, hub.cached_entry, heartbeat=heartbeat)
    state.lifecycle.capacity = max_watch_streams
    metrics = Metrics(hub)
    app.state.confhub = state
    app.state.metrics = metrics
    install_error_handlers(app)
    generated_openapi = app.openapi

    def openapi() -> dict[str, Any]:  # FastAPI's document, corrected (server/openapi.py)
        if app.openapi_schema is None:
            app.openapi_schema = document(generated_openapi())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    # Most used first: FastAPI tries routes in order.
    for module in (simple, configs, ofrep, history, tenants, txn, changes, watch, snapshots,
                   transfer, ops, validation, maintenance, rollouts, security):
        app.include_router(module.router)
    inner: Any = app
    reads = None
    if fast_paths:
        inner = FastWrites(inner, app, configs.write_entry, on_write=metrics.fast_writes.inc)
        inner = reads = FastReads(inner, state.lookup, state.entry_bytes,
                                  on_hit=metrics.fast_hits.inc)
        inner = watch.LeanWatch(inner, app)
    guard = Guard(hub, limits)
    app.state.confhub_guard = guard
    auth = AuthLayer(HeadBody(inner), guard)
    outer: Any = BodyDeadline(auth, client_timeout)
    if cors_origins:  # outside auth: a preflight carries no token
        outer = CORSMiddleware(outer, allow_origins=list(cors_origins), allow_methods=[
            "GET", "HEAD", "PUT", "PATCH", "POST", "DELETE"], allow_headers=["*"],
            expose_headers=CORS_EXPOSED_HEADERS, max_age=600)
    requests = RequestLayer(outer, metrics, access_log)
    lean = (LeanPaths(reads, app, configs.write_entry, requests, auth, client_timeout,
                      on_write=metrics.fast_writes.inc)
            if reads is not None and not cors_origins else None)
    return _Outer(requests, app, ui=create_ui(hub, guard, state.lifecycle), lean=lean)


class _Outer:
    """The ASGI callable ``create_app`` returns; ``.fastapi`` is the documented app inside."""

    def __init__(self, asgi: Any, fastapi: FastAPI, ui: Any = None,
                 lean: LeanPaths | None = None) -> None:
        self._asgi = asgi
        self._ui = ui  # the web UI (/ui): it signs in with a cookie, not the API's bearer
        self._lean = lean
        self.fastapi = fastapi
        self.state = fastapi.state

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self.fastapi(scope, receive, send)
            return
        path = scope.get("path", "")
        if self._ui is not None and (path == "/ui" or path.startswith("/ui/")):
            await self._ui(scope, receive, send)
            return
        if path.endswith("/watch") and scope.get("method") == "GET":  # (HEAD: no bytes)
            call = watch.lean_call(scope) if self._lean is not None else None
            if call is not None:
                await self._lean.watch(scope, receive, send, call)  # type: ignore[union-attr]
                return
            scope[watch.RAW_SEND] = send  # the stream's bytes skip the send wrappers
        elif self._lean is not None and scope["type"] == "http":
            answer = self._lean.wants(scope)
            if answer is not None:
                await self._lean(scope, receive, send, answer)
                return
        await self._asgi(scope, receive, send)

    def openapi(self) -> dict[str, Any]:
        return self.fastapi.openapi()


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("confhub")
    except Exception:
        return "0"
