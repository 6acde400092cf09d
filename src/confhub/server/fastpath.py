"""The lean paths for the hottest requests: GET of one cached key, and PUT of one key.

FastAPI's routing, dependency resolution and response machinery cost more than the read itself
(a dict lookup), so this ASGI layer answers ``GET|HEAD /config/{ns}/{key}`` without a query
string and ``GET|HEAD /v1/tenants/{t}/configs/{ns}/{key}`` without one or with only
``?env=NAME`` (a service reading its own layer is as hot as a base read) straight from the
cache, with pre-encoded bytes and the version ETag. Everything else, including a cache miss,
an invalid name or any other query parameter, falls through to the FastAPI routes, which
answer the same bytes and stay the documented (OpenAPI) description of these paths.

``lookup(tenant, env, namespace, key)`` must never block: it returns the cached Entry or None.

``PUT`` of the same paths, with the same query strings, calls the very handler the FastAPI
route calls (``routes.configs.write_entry``), skipping FastAPI's route matching and
dependency solving, which cost more CPU than the write itself.

Both are answered at the top of the app, before the generic layers (:class:`LeanPaths`),
which does what those layers do (request id, metrics and log, the access policy, the body
deadline) through the layers' own methods, inline: six nested layers, each wrapping ``send``
or ``receive``, cost about a sixth of the server's own CPU per PUT and more of a cached
GET's (docs/decisions.md). With CORS configured, they go through the layers (CORS among
them) to :class:`FastReads` and :class:`FastWrites` instead.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response

from ..audit import reset_actor
from ..errors import ConfhubError, InvalidName
from ..model import BASE_ENV, DEFAULT_TENANT, Entry, check_name
from .auth import AuthLayer, refusal
from .errors import response_for
from .requestlog import RequestLayer
from .responses import EntryBytes, matches
from .routes.watch import lean_response
from .timeouts import receive_within

__all__ = ["FastReads", "FastWrites", "LeanPaths", "Lookup"]

Lookup = Callable[[str, str, str, str], Entry | None]
ASGIApp = Callable[..., Any]
Answer = tuple[int, list[tuple[bytes, bytes]], bytes]  # status, headers, body


def _split(scope: dict[str, Any]) -> tuple[str, str, str, str] | None:
    """``/config/ns/key`` with no query string, or ``/v1/tenants/t/configs/ns/key`` with no
    query string or only ``env=NAME`` -> (tenant, env, ns, key); None for a request the full
    route answers. (The simple surface is env ``base`` whatever the query says.)"""
    query = scope.get("query_string")
    parts = scope["path"].split("/")
    n = len(parts)
    if n == 4 and parts[1] == "config" and parts[2] and parts[3] and not query:
        return DEFAULT_TENANT, BASE_ENV, parts[2], parts[3]
    if (n == 7 and parts[1] == "v1" and parts[2] == "tenants" and parts[4] == "configs"
            and parts[3] and parts[5] and parts[6]):
        env = _env_of(query) if query else BASE_ENV
        return None if env is None else (parts[3], env, parts[5], parts[6])
    return None


def _env_of(query: bytes) -> str | None:
    """The env of a query string that is exactly ``env=NAME`` with a valid name, else None.
    A name has no ``&``, ``%`` or ``+``, so ``env=prod&dry_run=1``, ``env=%70rod`` and
    ``env=a..b`` all fail the name check and go to the full route, which decodes, checks
    and answers them (its errors included)."""
    if not query.startswith(b"env="):
        return None
    env = query[4:].decode("latin-1")
    try:
        return check_name("env", env)
    except InvalidName:
        return None


class FastReads:
    """ASGI middleware answering cached single-key reads before FastAPI sees them."""

    def __init__(self, app: ASGIApp, lookup: Lookup, entry_bytes: EntryBytes,
                 on_hit: Callable[[], None] | None = None) -> None:
        self.app = app
        self.lookup = lookup
        self.entry_bytes = entry_bytes
        self.on_hit = on_hit

    def cached(self, scope: dict[str, Any]) -> Entry | None:
        """The cached entry a GET or HEAD reads, if this path may answer it."""
        if scope["method"] not in ("GET", "HEAD") or _names_a_consumer(scope):
            return None
        where = _split(scope)
        if where is None:
            return None
        try:
            return self.lookup(*where)
        except Exception:  # any doubt: let the full route answer (and its errors)
            return None

    def answer(self, scope: dict[str, Any], entry: Entry) -> Answer:
        """200 with the entry's bytes and version ETag, or 304 if the client has it."""
        encoded = self.entry_bytes.encoded(entry)
        if self.on_hit is not None:
            self.on_hit()
        for name, value in scope["headers"]:
            if name == b"if-none-match":
                if matches(value.decode("latin-1"), encoded.etag):
                    return 304, [encoded.headers[2]], b""
                break
        return 200, [*encoded.headers], b"" if scope["method"] == "HEAD" else encoded.body

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        entry = self.cached(scope) if scope["type"] == "http" else None
        if entry is None:
            await self.app(scope, receive, send)
            return
        status, headers, body = self.answer(scope, entry)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _declares_body(scope: dict[str, Any]) -> bool:
    """Does the request say a body follows (a Content-Length above 0, or chunks)?"""
    for name, value in scope["headers"]:
        if name == b"transfer-encoding" or (name == b"content-length"
                                             and value.strip() not in (b"0", b"")):
            return True
    return False


def _names_a_consumer(scope: dict[str, Any]) -> bool:
    """A read carrying a client id may see a staged rollout value: the full route answers."""
    return any(name == b"x-confhub-client" for name, _ in scope["headers"])


Writer = Callable[..., Any]  # async (request, tenant, namespace, key, *, env) -> Response


class FastWrites:
    """ASGI middleware sending ``PUT`` of one key straight to its handler."""

    def __init__(self, app: ASGIApp, fastapi_app: Any, write: Writer,
                 on_write: Callable[[], None] | None = None) -> None:
        self.app = app
        self.fastapi_app = fastapi_app
        self.write = write
        self.on_write = on_write

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        where = (_split(scope) if scope["type"] == "http" and scope["method"] == "PUT"
                 else None)
        if where is None:
            await self.app(scope, receive, send)
            return
        tenant, env, namespace, key = where
        scope["app"] = self.fastapi_app  # what Request.app (and so hub_of) reads
        try:
            response: Response = await self.write(Request(scope, receive), tenant, namespace,
                                                  key, env=env)
        except Exception as exc:  # the same answers the FastAPI route gives
            response = response_for(exc, "PUT", scope["path"])
        await response(scope, receive, send)
        if self.on_write is not None:
            self.on_write()


class _IndexedHeaders(Headers):
    """Starlette's request headers, each lookup one dict access: a write reads eight of them,
    and ``Headers`` scans the whole list for each."""

    def __init__(self, scope: MutableMapping[str, Any]) -> None:
        super().__init__(scope=scope)
        index: dict[str, str] = {}
        for name, value in reversed(scope["headers"]):  # the first of a repeated name wins
            index[name.decode("latin-1")] = value.decode("latin-1")
        self._index = index

    def __getitem__(self, key: str) -> str:
        return self._index[key.lower()]

    def __contains__(self, key: Any) -> bool:
        return isinstance(key, str) and key.lower() in self._index

    def get(self, key: str, default: Any = None) -> Any:
        return self._index.get(key.lower(), default)


class _LeanRequest(Request):
    @property
    def headers(self) -> Headers:
        found: Headers | None = getattr(self, "_indexed", None)
        if found is None:
            found = self._indexed = _IndexedHeaders(self.scope)
        return found


class LeanPaths:
    """A cached single-key GET or HEAD and a single-key PUT, answered at the top of the app
    (see the module docstring)."""

    def __init__(self, reads: FastReads, fastapi_app: Any, write: Writer,
                 requests: RequestLayer, auth: AuthLayer, body_timeout: float,
                 on_write: Callable[[], None] | None = None) -> None:
        self.reads = reads
        self.fastapi_app = fastapi_app
        self.write = write
        self.requests = requests
        self.auth = auth
        self.body_timeout = body_timeout
        self.on_write = on_write

    def wants(self, scope: dict[str, Any]) -> Callable[..., Awaitable[Answer]] | None:
        """How this path answers the request, None if it does not."""
        if scope["method"] == "PUT":
            where = _split(scope)
            return None if where is None else functools.partial(self._put, where)
        entry = self.reads.cached(scope)
        return None if entry is None else functools.partial(self._read, entry)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any,
                       answer: Callable[..., Awaitable[Answer]]) -> None:
        tracked = self.requests.begin(scope)
        status, body = 500, None
        try:
            try:
                acting = await self.auth.admit(scope)
            except ConfhubError as exc:
                status, headers, body = refusal(exc)
            else:
                try:
                    status, headers, body = await answer(scope, receive)
                finally:
                    if acting is not None:
                        reset_actor(acting)
            await send({"type": "http.response.start", "status": status,
                        "headers": [*headers, tracked.id_header()]})
            await send({"type": "http.response.body", "body": body})
        finally:
            self.requests.finish(tracked, scope, status, body if status >= 400 else None,
                                 answered=body is not None)

    async def watch(self, scope: dict[str, Any], receive: Any, send: Any,
                    call: dict[str, Any]) -> None:
        """``GET /v1/tenants/{t}/watch`` with the arguments ``routes.watch.lean_call`` read
        from a request it is sure of: the stream is opened and served here, not through the
        layers. A stream lives for hours, and every layer's coroutine, ``send`` and
        ``receive`` wrapper lives with it: a tenth of an idle stream's memory
        (docs/decisions.md, "Watch streams on the lean path")."""
        tracked = self.requests.begin(scope)
        status, error, started = 500, None, False
        acting = None
        try:
            try:
                acting = await self.auth.admit(scope)
            except ConfhubError as exc:
                status, headers, error = refusal(exc)
                started = True
                await send({"type": "http.response.start", "status": status,
                            "headers": [*headers, tracked.id_header()]})
                await send({"type": "http.response.body", "body": error})
                return
            if self.body_timeout > 0 and _declares_body(scope):  # (a GET rarely does)
                receive = receive_within(receive, self.body_timeout)
            response = await lean_response(scope, receive, self.fastapi_app, call)
            status = response.status_code
            if status >= 400:
                error = bytes(response.body)
            response.raw_headers.append(tracked.id_header())
            started = True
            await response(scope, receive, send)
        finally:
            if acting is not None:
                reset_actor(acting)
            self.requests.finish(tracked, scope, status, error, answered=started)

    async def _read(self, entry: Entry, scope: dict[str, Any], receive: Any) -> Answer:
        return self.reads.answer(scope, entry)

    async def _put(self, where: tuple[str, str, str, str], scope: dict[str, Any],
                   receive: Any) -> Answer:
        tenant, env, namespace, key = where
        scope["app"] = self.fastapi_app  # what Request.app (and so hub_of) reads
        if self.body_timeout > 0:
            receive = receive_within(receive, self.body_timeout)
        try:
            response: Response = await self.write(_LeanRequest(scope, receive), tenant,
                                                  namespace, key, env=env)
        except Exception as exc:  # the same answers the FastAPI route gives
            response = response_for(exc, "PUT", scope["path"])
        if self.on_write is not None:
            self.on_write()
        body = response.body
        return response.status_code, response.raw_headers, (
            body if isinstance(body, bytes) else bytes(body))
