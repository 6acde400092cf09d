"""The web UI's ASGI app: routes, templates, static files and the one error page.

``create_ui(hub, guard)`` builds it; ``server/app.py`` hands it every request under ``/ui``
(outside the API's bearer-token layer: the UI signs in with a cookie, see ``session.py``).
Pages are server-rendered Jinja templates; the few scripts and the vendored editor are files
under ``static/`` — nothing is fetched from anywhere else, and the Content-Security-Policy
says so to the browser.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from ...audit import reset_actor, set_actor
from ...errors import ConfhubError, Unauthorized
from . import render
from .pages.common import key_url
from .session import Session, guest_session, keep_cookies, open_session

__all__ = ["UI", "create_ui", "page"]

HERE = Path(__file__).parent
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    # The editor sets inline styles on its own elements; scripts come from /ui/static only.
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; "
                               "style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
                               "frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
}

Handler = Callable[[Request, "UI", Session], Awaitable[Response]]


class UI:
    """What every page needs: the hub, the API's guard (rate limits, watcher slots), templates."""

    def __init__(self, hub: Any, guard: Any | None, lifecycle: Any | None = None) -> None:
        self.hub = hub
        self.guard = guard
        self.lifecycle = lifecycle  # the server's: live streams end when it stops
        self.templates = Jinja2Templates(directory=str(HERE / "templates"))
        env = self.templates.env
        env.filters["highlight"] = render.highlight
        env.filters["pretty"] = render.pretty
        env.filters["when"] = lambda moment: moment.strftime("%Y-%m-%d %H:%M:%S UTC") \
            if moment is not None else ""
        env.globals["key_url"] = key_url
        env.filters["q"] = lambda text: quote(str(text), safe="")

    def page(self, request: Request, session: Session, template: str, *, status: int = 200,
             **context: Any) -> Response:
        context.setdefault("tenant", None)
        response = self.templates.TemplateResponse(
            request, template, {"session": session, "ui": self, **context},
            status_code=status, headers=SECURITY_HEADERS)
        keep_cookies(request, session, response)
        return response


def page(handler: Handler, ui: UI) -> Callable[[Request], Awaitable[Response]]:
    """Wrap a page handler: open the session, act as its user, turn errors into pages."""

    async def endpoint(request: Request) -> Response:
        try:
            session = await open_session(request, ui.hub)
        except Unauthorized:
            if getattr(handler, "public", False):
                session = guest_session(request)
                return await handler(request, ui, session)
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"/ui/login?next={quote(target, safe='')}", 303)
        if ui.guard is not None and session.auth_enabled:
            try:
                ui.guard.take(session.principal.token_id or session.principal.name)
            except ConfhubError as exc:
                return error_page(ui, request, session, exc)
        token = set_actor(session.actor)
        try:
            return await handler(request, ui, session)
        except ConfhubError as exc:
            return error_page(ui, request, session, exc)
        finally:
            reset_actor(token)

    return endpoint


def error_page(ui: UI, request: Request, session: Session, exc: ConfhubError) -> Response:
    return ui.page(request, session, "error.html", status=exc.http_status, error=exc,
                   tenant=request.path_params.get("tenant"))


def create_ui(hub: Any, guard: Any | None = None, lifecycle: Any | None = None) -> Starlette:
    from .pages import audit, browse, compare, edit, history, live, login, rollouts

    ui = UI(hub, guard, lifecycle)
    routes: list[BaseRoute] = [
        Mount("/ui/static", app=StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    for module in (login, browse, edit, history, compare, audit, live, rollouts):
        for path, handler, methods in module.PAGES:
            routes.append(Route("/ui" + path, page(handler, ui), methods=methods))
    app = Starlette(routes=routes)

    async def not_found(request: Request, exc: Exception) -> Response:
        return HTMLResponse("<h1>Not found</h1><p><a href='/ui'>confhub</a></p>", 404,
                            headers=SECURITY_HEADERS)

    app.add_exception_handler(404, not_found)
    return app
