"""``create_app(hub)``: the confhub HTTP API as an ASGI application.

The app is built around a hub it is given (no globals, no I/O at import): ``serve.py`` opens
the hub from its settings, tests may pass any hub. Layers, outermost first::

    RequestLayer  request id, metrics of every answer (Prometheus), the access log
    AuthLayer     the access policy (server/auth.py): token, rate, role, tenant, namespace
    HeadBody      HEAD answered like GET, body dropped (servers differ on this)
    FastReads     cached single-key GETs answered from pre-encoded bytes (counted only)
    FastWrites    single-key PUTs sent straight to their handler (counted only)
    FastAPI       every route, documented at /openapi.json and /docs
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fastapi import FastAPI

from .auth import AuthLayer, Guard, Limits
from .deps import STORAGE_THREADS, ServerState
from .errors import install_error_handlers
from .fastpath import FastReads, FastWrites
from .metrics import Metrics
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
from .ui import create_ui

__all__ = ["create_app"]

DESCRIPTION = """\
Versioned, multi-tenant configuration store. Errors always have the body
`{"error": {"code", "message", "details"}}`. Reads carry an `ETag` (the version for a single
entry); writes accept `If-Match: "N"` and `If-None-Match: *` for compare-and-set.
"""


class HeadBody:
    """Drop the body of answers to HEAD (Content-Length stays that of the GET)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def send_wrapper(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.body" and message.get("body"):
                message = {**message, "body": b""}
            await send(message)

        await self.app(scope, receive, send_wrapper)


def create_app(hub: Any, *, close_hub: bool = False, fast_paths: bool = True,
               heartbeat: float = 15.0, limits: Limits | None = None,
               access_log: AccessLog | None = None,
               compact_interval: float | None = None) -> Any:
    """Build the ASGI app serving ``hub``; ``close_hub`` closes it at shutdown (``serve``);
    ``heartbeat`` is how often (seconds) an idle watch stream sends a keep-alive; ``limits``
    are the per-token abuse limits (``auth.Limits``); the auth layer wraps everything, the
    fast paths included; ``access_log`` writes one line per request (None: no log);
    ``compact_interval`` (seconds) runs retention in the background (None: never)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        executor = ThreadPoolExecutor(STORAGE_THREADS, thread_name_prefix="confhub-storage")
        asyncio.get_running_loop().set_default_executor(executor)
        stop_compaction = hub.compact_in_background(compact_interval) if compact_interval \
            else None
        try:
            yield
        finally:
            if stop_compaction is not None:
                stop_compaction()
            executor.shutdown(wait=True, cancel_futures=True)
            if close_hub:
                hub.close()

    app = FastAPI(title="confhub", version=_version(), description=DESCRIPTION,
                  lifespan=lifespan)
    state = ServerState(hub, hub.cached_entry, heartbeat=heartbeat)
    metrics = Metrics(hub)
    app.state.confhub = state
    app.state.metrics = metrics
    install_error_handlers(app)
    # Most used first: FastAPI tries routes in order.
    for module in (simple, configs, ofrep, history, tenants, txn, changes, watch, snapshots,
                   transfer, ops, validation, maintenance, rollouts, security):
        app.include_router(module.router)
    inner: Any = app
    if fast_paths:
        inner = FastWrites(inner, app, configs.write_entry, on_write=metrics.fast_writes.inc)
        inner = FastReads(inner, state.lookup, state.entry_bytes,
                          on_hit=metrics.fast_hits.inc)
    guard = Guard(hub, limits)
    app.state.confhub_guard = guard
    return _Outer(RequestLayer(AuthLayer(HeadBody(inner), guard), metrics, access_log), app,
                  ui=create_ui(hub, guard))


class _Outer:
    """The ASGI callable ``create_app`` returns; ``.fastapi`` is the documented app inside."""

    def __init__(self, asgi: Any, fastapi: FastAPI, ui: Any = None) -> None:
        self._asgi = asgi
        self._ui = ui  # the web UI (/ui): it signs in with a cookie, not the API's bearer
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
        await self._asgi(scope, receive, send)

    def openapi(self) -> dict[str, Any]:
        return self.fastapi.openapi()


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("confhub")
    except Exception:
        return "0"
