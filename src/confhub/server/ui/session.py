"""Who is using the web UI, what they may do, and why a forged form cannot act for them.

A browser cannot send a bearer header on a page load, so the UI signs in once with a token and
keeps it in a cookie (``confhub_ui``: HttpOnly so scripts cannot read it, SameSite=Strict so no
other site's page sends it, Path=/ui so the API never sees it). Every request re-checks it with
``hub.authenticate``: a revoked token is out at its next click, and any server of a scale-out
group accepts it (nothing lives in one server's memory).

Forms that change something (save, rollback, reveal, sign out) are CSRF-safe three ways:

1. the session cookie is SameSite=Strict;
2. a browser's ``Origin`` (or ``Referer``) must name this very host;
3. the form carries ``csrf``, an HMAC of the session token keyed by a random per-browser cookie
   (``confhub_ui_csrf``). A page from elsewhere knows neither, so it cannot forge the field.

Roles are checked here before any hub call (the API's policy table guards ``/v1`` only):
a tenant the principal does not see answers NotFound, exactly like a missing one.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from starlette.requests import Request
from starlette.responses import Response

from ...audit import Actor
from ...errors import Forbidden, NotFound, Unauthorized
from ...tokens import ANONYMOUS, Principal
from ..deps import call

__all__ = [
    "CSRF_COOKIE", "SESSION_COOKIE", "Session", "check_csrf", "form_of", "guest_session",
    "keep_cookies", "open_session", "require", "set_session_cookie",
]

SESSION_COOKIE = "confhub_ui"
CSRF_COOKIE = "confhub_ui_csrf"
MAX_FORM_BYTES = 2 * 1024 * 1024  # a 1 MiB value, YAML-indented, fits


class Session:
    """One request's view of the signed-in user."""

    def __init__(self, principal: Principal, token: str | None, csrf_key: str,
                 auth_enabled: bool, actor: Actor) -> None:
        self.principal = principal
        self.token = token
        self.csrf_key = csrf_key
        self.auth_enabled = auth_enabled
        self.actor = actor
        self.new_csrf_key = False

    @property
    def csrf(self) -> str:
        """The value every state-changing form must carry (see the module docstring)."""
        return hmac.new(self.csrf_key.encode(), (self.token or "-").encode(),
                        hashlib.sha256).hexdigest()[:40]

    def can(self, tenant: str, role: str, namespace: str | None = "") -> bool:
        """May this user act as ``role`` in ``tenant`` (and ``namespace``; "" skips it)?"""
        principal = self.principal
        if not principal.has_role(tenant, role):
            return False
        return namespace == "" or principal.sees_namespace(namespace)

    def sees(self, tenant: str, namespace: str | None = "") -> bool:
        return self.can(tenant, "viewer", namespace)


async def open_session(request: Request, hub: Any) -> Session:
    """The request's session; Unauthorized when auth is on and no valid token is signed in."""
    csrf_key = request.cookies.get(CSRF_COOKIE) or ""
    fresh = len(csrf_key) < 32
    if fresh:
        csrf_key = secrets.token_urlsafe(32)
    client = request.client.host if request.client else None
    request_id = (request.headers.get("x-request-id") or "")[:200] or None
    enabled = bool(hub.auth_enabled)
    token = request.cookies.get(SESSION_COOKIE) if enabled else None
    principal = ANONYMOUS
    if enabled:
        if not token:
            raise Unauthorized("sign in with a token to use the web UI", reason="missing")
        found: Principal | None = hub.authenticate(token, io=False)
        if found is None:
            found = await call(hub.authenticate, token)
        assert found is not None
        principal = found
    session = Session(principal, token, csrf_key, enabled,
                      Actor(principal.name if enabled else None, client, request_id))
    session.new_csrf_key = fresh
    return session


def guest_session(request: Request) -> Session:
    """Someone not signed in (the sign-in page): sees no tenant, may only sign in."""
    csrf_key = request.cookies.get(CSRF_COOKIE) or ""
    fresh = len(csrf_key) < 32
    session = Session(Principal(name="guest", role="viewer", tenant=""), None,
                      csrf_key if not fresh else secrets.token_urlsafe(32), True, Actor())
    session.new_csrf_key = fresh
    return session


def keep_cookies(request: Request, session: Session, response: Response) -> None:
    """Give a new browser its CSRF key (an answer that renders a form needs one)."""
    if session.new_csrf_key:
        response.set_cookie(CSRF_COOKIE, session.csrf_key, httponly=True, samesite="strict",
                            path="/ui", secure=request.url.scheme == "https")


def set_session_cookie(request: Request, response: Response, token: str | None) -> None:
    if token is None:
        response.delete_cookie(SESSION_COOKIE, path="/ui")
        return
    response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="strict", path="/ui",
                        secure=request.url.scheme == "https")


def same_origin(request: Request) -> bool:
    """A browser's Origin (else Referer), when sent, must be this host."""
    origin = request.headers.get("origin")
    if origin == "null":  # a sandboxed or privacy-stripped page: never ours
        return False
    source = origin or request.headers.get("referer")
    if not source:
        return True  # a non-browser client; the CSRF field still has to match
    return urlsplit(source).netloc == request.headers.get("host", "")


async def form_of(request: Request) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body (the only kind the UI's forms send)."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            from ...errors import TooLarge

            raise TooLarge(f"the form is larger than {MAX_FORM_BYTES} bytes")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        from ...errors import InvalidRequest

        raise InvalidRequest("the form must be UTF-8") from None
    return dict(parse_qsl(text, keep_blank_values=True))


def check_csrf(request: Request, session: Session, form: dict[str, str]) -> None:
    """Refuse a state-changing form that did not come from one of our pages."""
    if not same_origin(request):
        raise Forbidden("this form was sent from another site; open the page again and retry",
                        reason="csrf")
    sent = form.get("csrf", "")
    if not request.cookies.get(CSRF_COOKIE) or not hmac.compare_digest(sent, session.csrf):
        raise Forbidden("the form's security token is missing or stale; reload the page and "
                        "try again", reason="csrf")


def require(session: Session, tenant: str, role: str = "viewer",
            namespace: str | None = "") -> None:
    """Raise what the API would: NotFound for a tenant the user does not see, Forbidden for a
    role or namespace out of reach."""
    principal = session.principal
    if not principal.sees_tenant(tenant):
        raise NotFound(f"tenant {tenant!r} does not exist", tenant=tenant)
    if not principal.has_role(tenant, role):
        raise Forbidden(f"this needs the {role} role on tenant {tenant!r}; you have "
                        f"{principal.role}", required=role)
    if namespace != "" and not principal.sees_namespace(namespace):
        raise Forbidden(f"your token may not use namespace {namespace!r}", namespace=namespace)
