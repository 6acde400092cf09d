"""What every route needs: the hub, a way to call it off the event loop, and request metadata.

The hub is synchronous (SQLite, psycopg); calling it on the event loop would stall every other
request while one waits on a disk sync. ``call`` runs it in the event loop's default executor,
which ``create_app``'s lifespan sets to a pool of ``STORAGE_THREADS`` threads and shuts down at
exit. (AnyIO's worker threads are not used: under granian they are never told to stop, and a
worker process that has served writes then hangs on shutdown.)
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from starlette.requests import Request

from ..errors import InvalidRequest
from ..identity import CLIENT_HEADER, LABELS_HEADER, Identity
from .lifecycle import Lifecycle
from .loops import running_loop
from .responses import EntryBytes

__all__ = [
    "Completions", "ServerState", "author_of", "call", "hub_of",
    "identity_of", "metadata_of", "reason_of", "request_id_of", "state_of", "tenant_of",
]

T = TypeVar("T")

# Enough concurrent writers for the store's group commit to batch many writes per fsync.
STORAGE_THREADS = 32


class ServerState:
    """Per-app state (no module globals): the hub, its non-blocking cache lookup
    (``lookup(tenant, env, namespace, key) -> Entry | None``), the entry encoding cache, and
    the lifecycle (is the server stopping; its open watch streams)."""

    def __init__(self, hub: Any,
                 lookup: Callable[[str, str, str, str], Any] | None = None, *,
                 heartbeat: float = 15.0) -> None:
        self.hub = hub
        self.heartbeat = heartbeat
        self.lookup = lookup or (lambda tenant, env, namespace, key: None)
        self.entry_bytes = EntryBytes()
        self._completions: Completions | None = None
        self.lifecycle = Lifecycle()

    def completions(self) -> Completions:
        """The running loop's :class:`Completions` (one per app and loop)."""
        loop = running_loop()  # not get_running_loop: a system call on 3.11 (loops.py)
        found = self._completions
        if found is None or found._loop is not loop:
            found = self._completions = Completions(loop)
        return found


class Completions:
    """Outcomes handed from a store thread to the event loop, many per wake-up.

    A write submitted with ``Tenant.submit_set`` finishes on the store's committing thread;
    waking the event loop once per write (``call_soon_threadsafe``, a syscall each) costs
    more than the rest of the hand-over. Outcomes queue here instead, and only the first of
    a batch rings the loop: a group commit of fifty PUTs wakes it once.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._lock = threading.Lock()
        self._ready: list[tuple[asyncio.Future[Any], Any, BaseException | None]] = []

    def future(self) -> tuple[asyncio.Future[Any], Callable[[Any, BaseException | None], None]]:
        """A future of the loop, and the callback (for any thread) that settles it."""
        future: asyncio.Future[Any] = self._loop.create_future()

        def settle(result: Any, error: BaseException | None) -> None:
            with self._lock:
                self._ready.append((future, result, error))
                first = len(self._ready) == 1
            if first:
                self._loop.call_soon_threadsafe(self._drain)

        return future, settle

    def _drain(self) -> None:
        with self._lock:
            ready, self._ready = self._ready, []
        for future, result, error in ready:
            if future.done():  # the request was cancelled meanwhile (client gone)
                continue
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(result)


def state_of(request: Request) -> ServerState:
    state: ServerState = request.app.state.confhub
    return state


def hub_of(request: Request) -> Any:
    return state_of(request).hub


async def call(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a blocking hub call in a worker thread and return its result (or raise its error)."""
    loop = running_loop()
    context = contextvars.copy_context()  # carries who is acting (confhub.audit) along
    return await loop.run_in_executor(None, context.run, functools.partial(fn, *args, **kwargs))


def _header_text(request: Request, name: str) -> str | None:
    """Header text, decoding UTF-8 sent raw (HTTP headers arrive as Latin-1)."""
    raw = request.headers.get(name)
    if raw is None:
        return None
    try:
        return raw.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return raw


def reason_of(request: Request, body_reason: str | None = None) -> str | None:
    return body_reason if body_reason is not None else _header_text(request, "x-confhub-reason")


def author_of(request: Request, body_author: str | None = None) -> str | None:
    return body_author if body_author is not None else _header_text(request, "x-confhub-author")


def request_id_of(request: Request) -> str | None:
    value = request.headers.get("x-request-id")
    return value[:200] if value else None


def metadata_of(request: Request) -> dict[str, Any] | None:
    """``X-Confhub-Metadata``: a JSON object of free-form audit metadata (a git commit...)."""
    raw = _header_text(request, "x-confhub-metadata")
    if raw is None:
        return None
    from .body import parse_json

    try:
        value = parse_json(raw.encode("utf-8"), where="the X-Confhub-Metadata header")
    except InvalidRequest as exc:
        raise InvalidRequest(exc.message, header="X-Confhub-Metadata") from None
    if not isinstance(value, dict):
        raise InvalidRequest("the X-Confhub-Metadata header must be a JSON object, like "
                             '{"ticket": "OPS-1"}', header="X-Confhub-Metadata")
    return value


def identity_of(request: Request) -> Identity | None:
    """The consumer reading, from ``X-Confhub-Client`` / ``X-Confhub-Labels`` (or
    ``?client_id=`` and ``?labels=`` for readers that cannot set headers); None: anonymous.
    A header without a client id is ignored: the server never invents one."""
    client = _header_text(request, CLIENT_HEADER) or request.query_params.get("client_id")
    if not client:
        return None
    labels = _header_text(request, LABELS_HEADER) or request.query_params.get("labels")
    return Identity.of(client, labels or {})


def tenant_of(request: Request, tenant: str) -> Any:
    """``hub.tenant(tenant)`` as the consumer the request names (see ``identity_of``)."""
    identity = identity_of(request)
    hub = hub_of(request)
    if identity is None:
        return hub.tenant(tenant)
    return hub.tenant(tenant, client_id=identity.client_id, labels=identity.label_map)
