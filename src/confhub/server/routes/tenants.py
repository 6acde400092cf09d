"""``/v1/tenants…``: list, create, show, soft/hard delete, restore and clone tenants."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from starlette.requests import Request
from starlette.responses import Response

from ..auth import principal_of
from ..body import json_body, read_model
from ..deps import author_of, call, hub_of, reason_of
from ..responses import json_response
from ..schemas import CloneIn, TenantDeletedOut, TenantIn, TenantOut, TenantPage, errors
from .configs import Name

router = APIRouter(tags=["tenants"])


@router.get("/v1/tenants", response_model=None, responses={200: {"model": TenantPage}},
            summary="All (live) tenants")
async def list_tenants(request: Request, include_deleted: bool = False) -> Response:
    items = await call(hub_of(request).tenants, include_deleted=include_deleted)
    principal = principal_of(request)  # a token lists only the tenants it sees
    items = [t for t in items if principal.sees_tenant(t.id)]
    return json_response({"items": [t.to_dict() for t in items]}, request=request)


@router.post("/v1/tenants", status_code=201, response_model=None,
             responses={201: {"model": TenantOut}, **errors(404, 409, 413, 415)},
             openapi_extra=json_body(TenantIn.model_json_schema()),
             summary="Create a tenant (optionally from a template with overrides)")
async def create_tenant(request: Request) -> Response:
    body = await read_model(request, TenantIn)
    kwargs: dict[str, Any] = {}
    if body.template is not None:
        kwargs["template"] = body.template
    if body.overrides is not None:
        kwargs["overrides"] = body.overrides
    info = await call(hub_of(request).create_tenant, body.id, reason=reason_of(request),
                      author=author_of(request), **kwargs)
    return json_response(info.to_dict(), status=201,
                         headers={"location": f"/v1/tenants/{info.id}"})


@router.get("/v1/tenants/{tenant}", response_model=None,
            responses={200: {"model": TenantOut}, **errors(404)}, summary="One tenant")
async def show_tenant(request: Request, tenant: Name) -> Response:
    info = await call(hub_of(request).tenant_info, tenant)
    return json_response(info.to_dict(), request=request)


@router.delete("/v1/tenants/{tenant}", response_model=None,
               responses={200: {"model": TenantDeletedOut}, **errors(404)},
               summary="Soft delete a tenant (`?hard=true` purges it and its history)")
async def delete_tenant(request: Request, tenant: Name,
                        hard: Annotated[bool, Query()] = False) -> Response:
    await call(hub_of(request).delete_tenant, tenant, hard=hard)
    return json_response({"id": tenant, "deleted": True, "hard": hard})


@router.post("/v1/tenants/{tenant}/restore", response_model=None,
             responses={200: {"model": TenantOut}, **errors(404)},
             summary="Undo a soft delete")
async def restore_tenant(request: Request, tenant: Name) -> Response:
    info = await call(hub_of(request).restore_tenant, tenant)
    return json_response(info.to_dict())


@router.post("/v1/tenants/{tenant}/clone", status_code=201, response_model=None,
             responses={201: {"model": TenantOut}, **errors(404, 409, 413, 415)},
             openapi_extra=json_body(CloneIn.model_json_schema()),
             summary="Copy a tenant's current state into a new tenant")
async def clone_tenant(request: Request, tenant: Name) -> Response:
    body = await read_model(request, CloneIn)
    info = await call(hub_of(request).clone_tenant, tenant, body.target,
                      reason=reason_of(request), author=author_of(request))
    return json_response(info.to_dict(), status=201,
                         headers={"location": f"/v1/tenants/{info.id}"})
