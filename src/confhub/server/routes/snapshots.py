"""Snapshots (labels on revisions) and restoring a tenant to a past revision."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import Response

from ...errors import InvalidRequest
from ..body import json_body, read_model
from ..deps import author_of, call, hub_of, reason_of
from ..responses import json_response
from ..schemas import RestoreIn, SnapshotIn, SnapshotOut, SnapshotPage, VersionOut, errors
from .configs import Name

router = APIRouter(tags=["snapshots"])


class RestoreOut(BaseModel):
    tenant: str
    revision: int | None = Field(description="the restore's revision; null if nothing changed")
    dry_run: bool
    changes: list[VersionOut]


@router.get("/v1/tenants/{tenant}/snapshots", response_model=None,
            responses={200: {"model": SnapshotPage}, **errors(404)},
            summary="Snapshots of a tenant, oldest first")
async def list_snapshots(request: Request, tenant: Name) -> Response:
    cfg = hub_of(request).tenant(tenant)
    snaps = await call(cfg.snapshots)
    return json_response({"items": [s.to_dict() for s in snaps]}, request=request)


@router.post("/v1/tenants/{tenant}/snapshots", status_code=201, response_model=None,
             responses={201: {"model": SnapshotOut}, **errors(404, 409, 413, 415)},
             openapi_extra=json_body(SnapshotIn.model_json_schema()),
             summary="Label the tenant's current revision")
async def create_snapshot(request: Request, tenant: Name) -> Response:
    body = await read_model(request, SnapshotIn)
    cfg = hub_of(request).tenant(tenant)
    snap = await call(cfg.snapshot, body.label)
    return json_response(snap.to_dict(), status=201)


@router.post("/v1/tenants/{tenant}/restore-revision", response_model=None,
             responses={200: {"model": RestoreOut}, **errors(404, 410, 413, 415, 422)},
             openapi_extra=json_body(RestoreIn.model_json_schema()),
             summary="Make the current state equal to a snapshot or revision (one transaction)")
async def restore_revision(request: Request, tenant: Name, dry_run: bool = False) -> Response:
    body = await read_model(request, RestoreIn)
    if (body.revision is None) == (body.snapshot is None):
        raise InvalidRequest('give exactly one of "revision" and "snapshot"')
    cfg = hub_of(request).tenant(tenant)
    kwargs: dict[str, Any] = {"namespace": body.namespace, "dry_run": dry_run,
                              "reason": reason_of(request, body.reason),
                              "author": author_of(request, body.author)}
    if body.revision is not None:
        kwargs["revision"] = body.revision
    else:
        kwargs["snapshot"] = body.snapshot
    changes = await call(cfg.restore, **kwargs)
    return json_response({
        "tenant": tenant,
        "revision": changes[0].revision if changes else None,
        "dry_run": dry_run,
        "changes": [c.to_dict() for c in changes],
    })
