"""``GET /v1/tenants/{t}/changes``: one page of the tenant's change feed.

A page never splits a revision (the store guarantees it), so a client that resumes with
``since=<revision of the page>`` sees every change exactly once. ``?wait=S`` makes it a long
poll: an empty page is held until a change commits or S seconds pass, without tying up a
storage thread (the wait is a watch subscription).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from starlette.requests import Request
from starlette.responses import Response

from ...model import MAX_WAIT
from ..deps import call, tenant_of
from ..responses import json_response
from ..schemas import MAX_INT, ChangePage, errors
from .configs import Name

router = APIRouter(tags=["changes"])


@router.get("/v1/tenants/{tenant}/changes", response_model=None,
            responses={200: {"model": ChangePage}, **errors(404, 410)},
            summary="Changes after a revision, in revision order")
async def changes(request: Request, tenant: Name,
                  since: Annotated[int, Query(ge=0, le=MAX_INT)] = 0,
                  limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
                  wait: Annotated[float | None, Query(ge=0, le=MAX_WAIT)] = None) -> Response:
    cfg = tenant_of(request, tenant)
    items = await call(cfg.changes, since=since, limit=limit)
    if not items and wait:
        async with cfg.watch_events(since=since) as stream:
            arrived = await stream.get(timeout=wait)
        if arrived is not None:
            items = await call(cfg.changes, since=since, limit=limit)
    last = items[-1].revision if items else since
    return json_response({"items": [c.to_dict() for c in items], "revision": last},
                         request=request)
