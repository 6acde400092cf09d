"""Staged rollouts (DESIGN.md section 8) in the browser: start one from an edit ("save as
rollout"), see its step, cohort, health and the consumers running each version, and advance,
pause, resume or roll it back.

Everything goes through ``cfg.rollouts`` (the hub's public rollout API); the UI reads as an
anonymous consumer, so the values it shows as "committed" are what everyone outside the
cohort runs.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ....errors import ConfhubError, InvalidRequest, NotFound
from ....model import check_name
from ...deps import call
from ..render import line_diff, parse_value
from ..session import Session, check_csrf, form_of
from .common import STRATEGIES, open_tenant
from .edit import Draft, _preview

if TYPE_CHECKING:
    from ..app import UI

__all__ = ["PAGES", "STRATEGIES", "rollouts_of_key"]

ACTIONS = ("advance", "pause", "resume", "rollback")


async def rollouts_of_key(cfg: Any, namespace: str, key: str, env: str) -> list[Any]:
    """The running or paused rollouts that stage this key."""
    found = await call(cfg.rollouts.list)
    return [r for r in found if r.active and r.covers(env, namespace, key)]


async def rollout_list(request: Request, ui: UI, session: Session) -> Response:
    name = request.path_params["tenant"]
    cfg = await open_tenant(ui, session, name)
    found = list(reversed(await call(cfg.rollouts.list)))
    return ui.page(request, session, "rollouts.html", tenant=name, rollouts=found)


async def _committed(cfg: Any, op: Any) -> Any:
    try:
        return (await call(cfg.get, op.namespace, op.key, env=op.env)).value
    except NotFound:
        return None


async def rollout_page(request: Request, ui: UI, session: Session,
                       error: str | None = None, status: int = 200) -> Response:
    name, rollout_id = request.path_params["tenant"], request.path_params["rollout_id"]
    cfg = await open_tenant(ui, session, name)
    rollout = await call(cfg.rollouts.get, rollout_id)
    changes = []
    for op in rollout.ops:
        committed = await _committed(cfg, op)
        staged = None if op.deleted else op.value
        changes.append((op, line_diff(committed, staged, "committed (everyone else)",
                                      "staged (the cohort)")))
    consumers = await call(cfg.rollouts.consumers)
    running = [(c, rollout.id in c.rollouts) for c in consumers]
    now = int(time.time() * 1_000_000)
    return ui.page(request, session, "rollout.html", status=status, tenant=name,
                   rollout=rollout, changes=changes, consumers=running, error=error,
                   bake_left=rollout.bake_left(now) if rollout.state == "running" else None,
                   can_drive=session.can(name, "editor"), actions=ACTIONS)


async def rollout_action(request: Request, ui: UI, session: Session) -> Response:
    name, rollout_id = request.path_params["tenant"], request.path_params["rollout_id"]
    action = request.path_params["action"]
    form = await form_of(request)
    check_csrf(request, session, form)
    if action not in ACTIONS:
        raise NotFound(f"no rollout action {action!r}; use one of {', '.join(ACTIONS)}")
    cfg = await open_tenant(ui, session, name, "editor")
    try:
        await call(getattr(cfg.rollouts, action), rollout_id,
                   reason=form.get("reason") or None)
    except ConfhubError as exc:
        if isinstance(exc, NotFound):
            raise
        return await rollout_page(request, ui, session, error=exc.message,
                                  status=exc.http_status)
    return RedirectResponse(f"/ui/t/{name}/rollouts/{rollout_id}", 303)


async def start(request: Request, ui: UI, session: Session) -> Response:
    """"Save as rollout" on the preview page: stage the edit instead of committing it."""
    form = await form_of(request)
    check_csrf(request, session, form)
    draft = Draft.from_form(request.path_params["tenant"], form)
    cfg = await open_tenant(ui, session, draft.tenant, "editor", draft.namespace)
    strategy = form.get("strategy", "canary")
    if strategy not in STRATEGIES:
        raise InvalidRequest(f"unknown strategy {strategy!r}; use one of "
                             f"{', '.join(STRATEGIES)}")
    selector = form.get("selector", "").strip() or None
    clients = [c.strip() for c in form.get("clients", "").split(",") if c.strip()]
    try:
        value = parse_value(draft.text, draft.fmt)
        rollout = await call(
            cfg.rollouts.start,
            [{"op": "put", "namespace": draft.namespace, "key": check_name("key", draft.key),
              "env": draft.env, "value": value, "expected_version": draft.expected}],
            strategy=strategy, selector=selector, clients=clients or None,
            reason=draft.reason or None)
    except ConfhubError as exc:
        if isinstance(exc, NotFound) and "tenant" in exc.message:
            raise
        return await _preview(request, ui, session, draft, error=exc.message)
    return RedirectResponse(f"/ui/t/{draft.tenant}/rollouts/{rollout.id}", 303)


PAGES = [
    ("/t/{tenant}/rollouts", rollout_list, ["GET"]),
    ("/t/{tenant}/rollout-start", start, ["POST"]),
    ("/t/{tenant}/rollouts/{rollout_id}", rollout_page, ["GET"]),
    ("/t/{tenant}/rollouts/{rollout_id}/{action}", rollout_action, ["POST"]),
]
