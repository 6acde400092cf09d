"""A key's history as a timeline, the diff between any two versions, and rollback after a
confirmation that shows what it will change."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ....errors import InvalidRequest, NotFound, VersionConflict
from ....model import check_name
from ...deps import call
from ..render import line_diff
from ..session import Session, check_csrf, form_of
from .common import env_of, key_url, open_tenant, param

if TYPE_CHECKING:
    from ..app import UI

__all__ = ["PAGES", "version_value"]

PAGE = 50


def _int(text: str, what: str) -> int | None:
    if not text:
        return None
    if not text.isdigit() or int(text) < 1:
        raise InvalidRequest(f"{what} must be a version number (1 or more), not {text!r}")
    return int(text)


async def version_value(cfg: Any, ns: str, key: str, env: str, version: int) -> Any:
    """A version's value (secrets read ``***``); None for a deletion."""
    try:
        return (await call(cfg.get, ns, key, env=env, version=version)).value
    except NotFound as exc:
        if "is a deletion" in exc.message:
            return None
        raise


async def history(request: Request, ui: UI, session: Session) -> Response:
    name, ns, key = (request.path_params[p] for p in ("tenant", "namespace", "key"))
    cfg = await open_tenant(ui, session, name, namespace=check_name("namespace", ns))
    check_name("key", key)
    env = env_of(request)
    before = _int(param(request, "before"), "before")
    versions = await call(cfg.history, ns, key, env=env, limit=PAGE, before=before)
    newest = versions[0].version if versions else 1
    to = _int(param(request, "to"), "to") or newest
    frm = _int(param(request, "from"), "from") or max(1, to - 1)
    diff = patch = None
    if frm != to or param(request, "to"):
        left = await version_value(cfg, ns, key, env, frm)
        right = await version_value(cfg, ns, key, env, to)
        diff = line_diff(left, right, f"version {frm}", f"version {to}")
        patch = await call(cfg.diff, ns, key, frm, to, env=env)
    older = versions[-1].version - 1 if versions and versions[-1].version > 1 else None
    return ui.page(request, session, "history.html", tenant=name, namespace=ns, key=key,
                   env=env, versions=versions, frm=frm, to=to, diff=diff, patch=patch,
                   older=older, can_edit=session.can(name, "editor", ns))


async def rollback_confirm(request: Request, ui: UI, session: Session,
                           error: str | None = None, status: int = 200) -> Response:
    name, ns, key = (request.path_params[p] for p in ("tenant", "namespace", "key"))
    cfg = await open_tenant(ui, session, name, "editor", check_name("namespace", ns))
    check_name("key", key)
    env = env_of(request)
    target = _int(param(request, "to"), "to")
    if target is None:
        raise InvalidRequest("say which version to roll back to (?to=N)")
    current = None
    with contextlib.suppress(NotFound):
        current = await call(cfg.get, ns, key, env=env)
    versions = await call(cfg.history, ns, key, env=env, limit=1)
    latest = versions[0].version
    wanted = await version_value(cfg, ns, key, env, target)
    diff = line_diff(current.value if current else None, wanted,
                     f"version {latest} (now)", f"version {target}")
    return ui.page(request, session, "rollback.html", status=status, tenant=name,
                   namespace=ns, key=key, env=env, target=target, latest=latest, diff=diff,
                   error=error)


async def rollback(request: Request, ui: UI, session: Session) -> Response:
    name, ns, key = (request.path_params[p] for p in ("tenant", "namespace", "key"))
    form = await form_of(request)
    check_csrf(request, session, form)
    cfg = await open_tenant(ui, session, name, "editor", check_name("namespace", ns))
    env = env_of(request, form)
    target = _int(form.get("to", ""), "to")
    expected = _int(form.get("expected_version", ""), "expected_version")
    if target is None:
        raise InvalidRequest("say which version to roll back to")
    try:
        entry = await call(cfg.rollback, ns, key, target, env=env, expected_version=expected,
                           reason=form.get("reason") or None, metadata={"via": "ui"})
    except VersionConflict as exc:
        return await rollback_confirm(
            request, ui, session, status=412,
            error=f"the key changed while you were looking (now version "
                  f"{exc.current_version}); check the diff again before rolling back")
    return RedirectResponse(key_url(name, ns, key, env, saved=entry.version), 303)


PAGES = [
    ("/t/{tenant}/k/{namespace}/{key}/history", history, ["GET"]),
    ("/t/{tenant}/k/{namespace}/{key}/rollback", rollback_confirm, ["GET"]),
    ("/t/{tenant}/k/{namespace}/{key}/rollback", rollback, ["POST"]),
]
