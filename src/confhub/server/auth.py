"""Who may do what over HTTP: one policy table, enforced by one ASGI layer before any route.

The layer sits outside everything else (the cached fast paths included), so no route can be
reached without passing it. For each request it

1. finds the route's rule in :data:`POLICY` (first match; HEAD counts as GET). A request that
   matches no rule needs a superadmin: a route added later without a line here is closed, not
   open;
2. authenticates the bearer token (401 when missing, malformed, unknown, expired or revoked;
   each failure is audited);
3. applies the per-token request rate (429 with ``Retry-After``);
4. authorises: a tenant the token does not see answers 404 exactly like a missing tenant; a
   namespace outside the token's list, or a role too low, answers 403.

A database without any token is served open (the principal is ``ANONYMOUS``): ``serve``
allows that only on loopback unless ``--insecure``, and says so at start.

Adding a route means adding one line to :data:`POLICY`::

    Rule("GET", "/v1/tenants/{tenant}/things/{namespace}", "viewer", namespace="namespace"),

``namespace`` names the path parameter (or ``?query`` parameter) holding the namespace; None
means the route spans the whole tenant, which a namespace-limited token may not use; ``BODY``
means the handler checks the namespaces it finds in the body with :func:`require_namespaces`.
``escalate`` raises the role needed when a query flag is true (``?reveal=true``).
"""

from __future__ import annotations

import asyncio
import contextvars
import math
import re
import threading
import time
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request

from ..audit import Actor, acting_as, reset_actor, set_actor
from ..errors import ConfhubError, Forbidden, NotFound, TooManyRequests, Unauthorized
from ..tokens import ANONYMOUS, Principal, role_rank
from .errors import error_body

__all__ = [
    "BODY", "POLICY", "PUBLIC", "AuthLayer", "Guard", "Limits", "Rule", "principal_of", "refusal",
    "require_namespaces", "require_role", "watch_slot",
]

PUBLIC = "public"  # no token needed
AUTHENTICATED = "authenticated"  # any valid token; the handler narrows (token management)
BODY = "body"  # namespaces are in the request body; the handler checks them


@dataclass(frozen=True)
class Rule:
    methods: str  # space-separated
    template: str
    role: str
    tenant: str | None = "tenant"  # path parameter, or "=name" for a fixed tenant
    namespace: str | None = None  # path parameter, "?param", BODY, or None (whole tenant)
    escalate: tuple[tuple[str, str], ...] = ()  # (query flag, role) when the flag is true
    pattern: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", self.template)
        object.__setattr__(self, "pattern", re.compile(f"^{regex}$"))


_T = "/v1/tenants/{tenant}"
_KEY = _T + "/configs/{namespace}/{key}"
_NS = "namespace"

# The policy: every route of the API, who may call it. Keep in step with the routes.
POLICY: tuple[Rule, ...] = (
    # open to all: liveness, readiness, metrics (route templates only), the API description
    Rule("GET", "/healthz", PUBLIC, tenant=None),
    Rule("GET", "/readyz", PUBLIC, tenant=None),
    Rule("GET", "/metrics", PUBLIC, tenant=None),
    Rule("GET", "/openapi.json", PUBLIC, tenant=None),
    Rule("GET", "/docs", PUBLIC, tenant=None),
    Rule("GET", "/docs/oauth2-redirect", PUBLIC, tenant=None),
    Rule("GET", "/redoc", PUBLIC, tenant=None),
    Rule("GET", "/docs-assets/{file}", PUBLIC, tenant=None),  # scripts of /docs, /redoc
    # whole-store figures name every tenant's namespaces
    Rule("GET", "/v1/stats", "superadmin", tenant=None),
    # tenants
    Rule("GET", "/v1/tenants", AUTHENTICATED, tenant=None),  # filtered to the token's
    Rule("POST", "/v1/tenants", "superadmin", tenant=None),
    Rule("GET", _T, "viewer"),
    Rule("DELETE", _T, "superadmin"),
    Rule("POST", _T + "/restore", "superadmin"),
    Rule("POST", _T + "/clone", "superadmin"),
    # configs
    Rule("GET", _T + "/configs", "viewer"),
    Rule("GET", _T + "/configs/{namespace}", "viewer", namespace=_NS,
         escalate=(("reveal", "editor"),)),
    Rule("GET", _KEY, "viewer", namespace=_NS, escalate=(("reveal", "editor"),)),
    Rule("PUT PATCH DELETE", _KEY, "editor", namespace=_NS),
    Rule("GET", _KEY + "/history", "viewer", namespace=_NS),
    Rule("GET", _KEY + "/diff", "viewer", namespace=_NS),
    Rule("POST", _KEY + "/rollback", "editor", namespace=_NS),
    Rule("POST", _T + "/txn", "editor", namespace=BODY),
    # the simple surface: tenant default, env base
    Rule("GET", "/config/{namespace}/{key}", "viewer", tenant="=default", namespace=_NS,
         escalate=(("reveal", "editor"),)),
    Rule("PUT DELETE", "/config/{namespace}/{key}", "editor", tenant="=default",
         namespace=_NS),
    Rule("GET", "/config/{namespace}", "viewer", tenant="=default", namespace=_NS),
    # change feed and watch (a limited token passes ?namespace=)
    # /changes has no namespace filter (yet): it spans the tenant, so limited tokens may not
    Rule("GET", _T + "/changes", "viewer"),
    Rule("GET", _T + "/watch", "viewer", namespace="?namespace"),
    # snapshots, restore, backup
    Rule("GET", _T + "/snapshots", "viewer"),
    Rule("POST", _T + "/snapshots", "admin"),
    Rule("POST", _T + "/restore-revision", "admin"),
    Rule("GET", _T + "/export", "viewer", escalate=(("include_secrets", "admin"),)),
    Rule("POST", _T + "/import", "admin"),
    # validation (issue 5)
    Rule("GET", _T + "/schemas/{namespace}", "viewer", namespace=_NS),
    Rule("PUT", _T + "/schemas/{namespace}", "admin", namespace=_NS),
    Rule("POST", _T + "/validate", "viewer"),
    # staged rollouts and consumers (issue 14)
    Rule("GET", _T + "/rollouts", "viewer"),
    Rule("POST", _T + "/rollouts", "editor", namespace=BODY),
    Rule("GET", _T + "/rollouts/{rollout_id}", "viewer"),
    Rule("POST", _T + "/rollouts/{rollout_id}/{action}", "editor"),
    Rule("GET", _T + "/consumers", "viewer"),
    Rule("GET", _T + "/consumers/{client_id}", "viewer"),
    Rule("GET POST", _T + "/consumers/{client_id}/reports", "viewer"),
    # security
    Rule("GET", _T + "/audit", "admin"),
    Rule("GET POST", "/v1/tokens", AUTHENTICATED, tenant=None),  # admin of the token's tenant
    Rule("GET DELETE", "/v1/tokens/{token_id}", AUTHENTICATED, tenant=None),
    # operations (issue 13): retention, compaction, integrity checks
    Rule("GET", _T + "/retention", "viewer"),
    Rule("PUT", _T + "/retention", "admin"),
    Rule("PUT", _T + "/retention/{namespace}", "admin", namespace=_NS),
    Rule("POST", _T + "/compact", "admin"),
    Rule("GET", "/v1/doctor", "superadmin", tenant=None),
    # feature flags over OFREP (issue 16): the token's own tenant, or the one in the path;
    # the handler checks the viewer role and the flags namespace
    Rule("POST", "/ofrep/v1/evaluate/flags", AUTHENTICATED, tenant=None),
    Rule("POST", "/ofrep/v1/evaluate/flags/{key}", AUTHENTICATED, tenant=None),
    Rule("POST", _T + "/ofrep/v1/evaluate/flags", "viewer", namespace=BODY),
    Rule("POST", _T + "/ofrep/v1/evaluate/flags/{key}", "viewer", namespace=BODY),
)

_BY_METHOD: dict[str, list[Rule]] = {}
for _rule in POLICY:
    for _method in _rule.methods.split():
        _BY_METHOD.setdefault(_method, []).append(_rule)


_MATCHED: dict[tuple[str, str], tuple[Rule, dict[str, str]] | None] = {}


def match(method: str, path: str) -> tuple[Rule, dict[str, str]] | None:
    """The first rule for ``method path`` and its parameters (remembered: hot paths repeat)."""
    key = (method, path)
    if key in _MATCHED:
        return _MATCHED[key]
    found = None
    for rule in _BY_METHOD.get("GET" if method == "HEAD" else method, ()):
        matched = rule.pattern.match(path)
        if matched:
            found = rule, matched.groupdict()
            break
    if len(_MATCHED) >= 20_000:
        _MATCHED.clear()
    _MATCHED[(method, path)] = found
    return found



# --------------------------------------------------------------------------- limits


@dataclass(frozen=True)
class Limits:
    """Per-token abuse limits (0 turns one off). Body size, nesting depth and ops per
    transaction are enforced where bodies are read (``body.py``, ``routes/txn.py``)."""

    rate: float = 100.0  # sustained requests per second per token
    burst: int = 200  # requests a token may make at once before the rate applies
    watchers: int = 10  # open watch streams per token


class _Bucket:
    __slots__ = ("tokens", "at")

    def __init__(self, tokens: float, at: float) -> None:
        self.tokens = tokens
        self.at = at


class Guard:
    """Per-app security state: limits, rate buckets and open watch streams per token."""

    def __init__(self, hub: Any, limits: Limits | None = None) -> None:
        self.hub = hub
        self.limits = limits or Limits()
        self._buckets: dict[str, _Bucket] = {}
        self._watchers: dict[str, int] = {}
        self._lock = threading.Lock()

    def take(self, who: str) -> None:
        """Spend one request of ``who``'s rate; TooManyRequests when none is left."""
        rate, burst = self.limits.rate, max(self.limits.burst, 1)
        if rate <= 0:
            return
        now = time.monotonic()
        bucket = self._buckets.get(who)
        if bucket is None:
            if len(self._buckets) > 100_000:
                self._buckets.clear()
            bucket = self._buckets[who] = _Bucket(float(burst), now)
        bucket.tokens = min(float(burst), bucket.tokens + (now - bucket.at) * rate)
        bucket.at = now
        if bucket.tokens < 1:
            wait = max(1, math.ceil((1 - bucket.tokens) / rate))
            raise TooManyRequests(f"more than {rate:g} requests per second; retry in {wait}s",
                                  retry_after=wait)
        bucket.tokens -= 1

    def watch_slot(self, principal: Principal) -> WatchSlot:
        """One of the principal's watch streams, held from ``__enter__`` (TooManyRequests
        past ``limits.watchers``) to ``__exit__``. The watch route wraps its stream in it."""
        return WatchSlot(self, principal)

    def _take_watcher(self, principal: Principal) -> str:
        who = principal.token_id or principal.name
        limit = self.limits.watchers
        with self._lock:
            count = self._watchers.get(who, 0)
            if limit > 0 and count >= limit and principal is not ANONYMOUS:
                raise TooManyRequests(f"at most {limit} open watch streams per token",
                                      retry_after=5, limit=limit)
            self._watchers[who] = count + 1
        return who

    def _give_back_watcher(self, who: str) -> None:
        with self._lock:
            left = self._watchers.get(who, 1) - 1
            if left:
                self._watchers[who] = left
            else:
                self._watchers.pop(who, None)

    def watchers(self, principal: Principal) -> int:
        return self._watchers.get(principal.token_id or principal.name, 0)


class WatchSlot:
    """A held watch stream of one principal (``Guard.watch_slot``). A plain object, not a
    generator-based context manager: a thousand open streams each keep theirs, and a
    generator's suspended frame is several times its size."""

    __slots__ = ("_guard", "_principal", "_who")

    def __init__(self, guard: Guard, principal: Principal) -> None:
        self._guard = guard
        self._principal = principal
        self._who: str | None = None

    def __enter__(self) -> None:
        self._who = self._guard._take_watcher(self._principal)

    def __exit__(self, *exc: object) -> None:
        who, self._who = self._who, None
        if who is not None:
            self._guard._give_back_watcher(who)


# --------------------------------------------------------------------------- for handlers

PRINCIPAL_KEY = "confhub.principal"
GUARD_KEY = "confhub.guard"


def principal_of(request: Request) -> Principal:
    """Who the request acts as (``ANONYMOUS`` on an open server or outside the layer)."""
    principal: Principal = request.scope.get(PRINCIPAL_KEY, ANONYMOUS)
    return principal


def watch_slot(request: Request) -> Any:
    """``with watch_slot(request): ...`` around a watch stream (see :meth:`Guard.watch_slot`)."""
    guard: Guard | None = request.scope.get(GUARD_KEY)
    if guard is None:  # an app without the auth layer: nothing to count
        return nullcontext()
    return guard.watch_slot(principal_of(request))


def missing_tenant(tenant: str) -> NotFound:
    """The very error a missing tenant gives: a foreign tenant must look the same."""
    return NotFound(f"tenant {tenant!r} does not exist", tenant=tenant)


def require_role(request: Request, tenant: str, role: str) -> Principal:
    principal = principal_of(request)
    if not principal.sees_tenant(tenant):
        raise missing_tenant(tenant)
    if not principal.has_role(tenant, role):
        raise Forbidden(f"this needs the {role} role on tenant {tenant!r}; the token has "
                        f"{principal.role}", required=role)
    return principal


def require_namespaces(request: Request, namespaces: Sequence[str]) -> None:
    """For routes whose namespaces are in the body (``txn``): all must be the token's."""
    principal = principal_of(request)
    for namespace in namespaces:
        if not principal.sees_namespace(namespace):
            raise Forbidden(f"the token may not use namespace {namespace!r}",
                            namespace=namespace)


def authorize(rule: Rule, params: dict[str, str], query: dict[str, str],
              principal: Principal) -> None:
    """Raise the error the request deserves, or return when it may proceed."""
    if rule.role in (PUBLIC, AUTHENTICATED) or principal.superadmin:
        return
    if rule.role == "superadmin":
        raise Forbidden("this needs a superadmin token", required="superadmin")
    tenant = rule.tenant[1:] if rule.tenant and rule.tenant.startswith("=") else (
        params.get(rule.tenant) if rule.tenant else None)
    if tenant is None or not principal.sees_tenant(tenant):
        raise missing_tenant(tenant or "")
    role = rule.role
    for flag, needed in rule.escalate:
        if query.get(flag, "").lower() in ("1", "true", "yes") and \
                role_rank(needed) > role_rank(role):
            role = needed
    if not principal.has_role(tenant, role):
        raise Forbidden(f"this needs the {role} role on tenant {tenant!r}; the token has "
                        f"{principal.role}", required=role)
    if rule.namespace == BODY:
        return
    if rule.namespace is None:
        namespace = None
    elif rule.namespace.startswith("?"):
        namespace = query.get(rule.namespace[1:])
    else:
        namespace = params.get(rule.namespace)
    if not principal.sees_namespace(namespace):
        allowed = ", ".join(principal.namespaces or ())
        raise Forbidden(f"the token is limited to namespaces {allowed}"
                        + ("" if namespace is None else f", not {namespace!r}"),
                        namespace=namespace)


# --------------------------------------------------------------------------- the layer


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")  # type: ignore[no-any-return]
    return None


class AuthLayer:
    """ASGI middleware applying :data:`POLICY` to every HTTP request."""

    def __init__(self, app: Any, guard: Guard) -> None:
        self.app = app
        self.guard = guard
        self.hub = guard.hub

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            acting = await self.admit(scope)
        except ConfhubError as exc:
            await _send_error(send, exc)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            if acting is not None:
                reset_actor(acting)

    async def admit(self, scope: dict[str, Any]) -> Any:
        """Apply the policy to one HTTP request. It raises the ConfhubError to answer (see
        :func:`refusal`), or the request may go on: the principal is then in the scope, and
        the returned context token (None for a public route) must be handed to
        ``reset_actor`` when the request ends. The lean paths (``fastpath.LeanPaths``) call
        this too, so both apply the same rules."""
        scope[GUARD_KEY] = self.guard
        client = scope.get("client")
        address = f"{client[0]}" if client else None
        request_id = _header(scope, b"x-request-id")
        request_id = request_id[:200] if request_id else None
        if not getattr(self.hub, "auth_enabled", False):  # no token exists: open server
            scope[PRINCIPAL_KEY] = ANONYMOUS
            return set_actor(Actor(None, address, request_id))
        path = scope["path"]
        found = match(scope["method"], path)
        rule, params = found if found is not None else (None, {})
        if rule is not None and rule.role == PUBLIC:
            return None
        principal = await self._authenticate(scope, params, address, request_id)
        self.guard.take(principal.token_id or principal.name)
        raw_query = scope.get("query_string")
        query = dict(parse_qsl(raw_query.decode("latin-1"))) if raw_query else {}
        if rule is None:
            if not principal.superadmin:
                raise Forbidden(f"no access rule covers {scope['method']} {path}; only a "
                                "superadmin token may call it")
        else:
            authorize(rule, params, query, principal)
        scope[PRINCIPAL_KEY] = principal
        return set_actor(Actor(principal.name, address, request_id))

    async def _authenticate(self, scope: dict[str, Any], params: dict[str, str],
                            address: str | None, request_id: str | None) -> Principal:
        header = _header(scope, b"authorization")
        if header is None:
            raise Unauthorized("this server needs a bearer token (Authorization: Bearer ...)",
                               reason="missing")
        scheme, _, token = header.partition(" ")
        token = token.strip()
        try:
            if scheme.lower() != "bearer" or not token:
                raise Unauthorized("the Authorization header must be 'Bearer <token>'",
                                   reason="malformed")
            principal: Principal | None = self.hub.authenticate(token, io=False)
            if principal is None:  # created elsewhere a moment ago: ask storage
                principal = await _in_thread(self.hub.authenticate, token)
            assert principal is not None
            return principal
        except Unauthorized as exc:
            # Audit the failure (never the token); the tenant is the one the path names.
            tenant = params.get("tenant")
            why = str(exc.details.get("reason", "unknown"))
            with acting_as(Actor(None, address, request_id)):
                await _in_thread(lambda: self.hub.record_audit(
                    "auth.failure", tenant, target=f"{scope['method']} {scope['path']}",
                    reason=why))
            raise Unauthorized(exc.message, reason=exc.details.get("reason")) from None


async def _in_thread(fn: Any, *args: Any) -> Any:
    context = contextvars.copy_context()  # the actor travels with the call
    return await asyncio.get_running_loop().run_in_executor(None, context.run, fn, *args)


def refusal(exc: ConfhubError) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """Status, headers and body of the answer to a request the policy refused."""
    body = error_body(exc.code, exc.message, exc.details)
    headers = [(b"content-type", b"application/json"),
               (b"content-length", str(len(body)).encode())]
    if isinstance(exc, Unauthorized):
        headers.append((b"www-authenticate", b'Bearer realm="confhub"'))
    if isinstance(exc, TooManyRequests):
        headers.append((b"retry-after", str(exc.retry_after).encode()))
    return exc.http_status, headers, body


async def _send_error(send: Any, exc: ConfhubError) -> None:
    status, headers, body = refusal(exc)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
