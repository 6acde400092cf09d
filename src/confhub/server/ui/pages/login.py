"""Signing in with a token (when the server has any) and signing out."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ....errors import Unauthorized
from ...deps import call
from ..session import Session, check_csrf, form_of, set_session_cookie

if TYPE_CHECKING:
    from ..app import UI

__all__ = ["PAGES"]


def _next(target: str) -> str:
    """Only a path inside the UI: never an open redirect to another site."""
    return target if target.startswith("/ui") and not target.startswith("//") else "/ui/"


async def login_form(request: Request, ui: UI, session: Session) -> Response:
    if not session.auth_enabled:
        return RedirectResponse(_next(request.query_params.get("next", "")), 303)
    return ui.page(request, session, "login.html", next=_next(request.query_params.get(
        "next", "/ui/")), error=None)


async def login(request: Request, ui: UI, session: Session) -> Response:
    form = await form_of(request)
    check_csrf(request, session, form)
    target = _next(form.get("next", "/ui/"))
    token = form.get("token", "").strip()
    try:
        principal = await call(ui.hub.authenticate, token) if token else None
        if principal is None:
            raise Unauthorized("paste a token to sign in", reason="missing")
    except Unauthorized as exc:
        return ui.page(request, session, "login.html", status=401, next=target,
                       error=exc.message)
    response = RedirectResponse(target, 303)
    set_session_cookie(request, response, token)
    return response


async def logout(request: Request, ui: UI, session: Session) -> Response:
    form = await form_of(request)
    check_csrf(request, session, form)
    response = RedirectResponse("/ui/login", 303)
    set_session_cookie(request, response, None)
    return response


login_form.public = True  # type: ignore[attr-defined]
login.public = True  # type: ignore[attr-defined]
logout.public = True  # type: ignore[attr-defined]

PAGES = [
    ("/login", login_form, ["GET"]),
    ("/login", login, ["POST"]),
    ("/logout", logout, ["POST"]),
]
