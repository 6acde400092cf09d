"""Retention and integrity over HTTP (issue 13).

``GET|PUT /v1/tenants/{t}/retention[/{namespace}]`` read and set retention policies,
``POST /v1/tenants/{t}/compact`` applies them now, ``GET /v1/doctor`` runs the integrity
checks in this server process (so "the cache" is the cache that serves reads).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body
from pydantic import BaseModel, ConfigDict
from starlette.requests import Request
from starlette.responses import Response

from ..deps import call, hub_of
from ..responses import json_response
from ..schemas import _Open, errors

router = APIRouter(tags=["operations"])


class PolicyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt limit is an error, not ignored

    keep_last: int | None = None
    keep_for_seconds: int | None = None


class PolicyOut(_Open):
    tenant: str
    namespace: str | None
    keep_last: int | None
    keep_for_seconds: int | None


class PoliciesOut(_Open):
    policies: list[PolicyOut]


class DoctorOut(_Open):
    ok: bool
    findings: list[dict[str, Any]]


PolicyBody = Annotated[PolicyIn, Body(description="keep_last (versions per key) and/or "
                                      "keep_for_seconds; both null removes the policy")]


@router.get("/v1/tenants/{tenant}/retention", response_model=None,
            responses={200: {"model": PoliciesOut}, **errors(404)},
            summary="Retention policies of a tenant (tenant-wide and per namespace)")
async def get_retention(request: Request, tenant: str) -> Response:
    hub = hub_of(request)
    await call(hub.tenant_info, tenant)  # 404 for a missing tenant
    policies = await call(hub.retention, tenant)
    return json_response({"policies": [p.to_dict() for p in policies]})


async def _set(request: Request, tenant: str, namespace: str | None,
               body: PolicyIn) -> Response:
    policy = await call(hub_of(request).set_retention, tenant, namespace=namespace,
                        keep_last=body.keep_last, keep_for_seconds=body.keep_for_seconds)
    return json_response(policy.to_dict())


@router.put("/v1/tenants/{tenant}/retention", response_model=None,
            responses={200: {"model": PolicyOut}, **errors(400, 404)},
            summary="Set the tenant-wide retention policy")
async def put_retention(request: Request, tenant: str, body: PolicyBody) -> Response:
    return await _set(request, tenant, None, body)


@router.put("/v1/tenants/{tenant}/retention/{namespace}", response_model=None,
            responses={200: {"model": PolicyOut}, **errors(400, 404)},
            summary="Set the retention policy of one namespace")
async def put_namespace_retention(request: Request, tenant: str, namespace: str,
                                  body: PolicyBody) -> Response:
    return await _set(request, tenant, namespace, body)


@router.post("/v1/tenants/{tenant}/compact", response_model=None,
             responses={200: {"content": {"application/json": {}}}, **errors(404)},
             summary="Apply the tenant's retention policies now")
async def compact(request: Request, tenant: str) -> Response:
    return json_response(await call(hub_of(request).compact, tenant))


@router.get("/v1/doctor", response_model=None,
            responses={200: {"model": DoctorOut}},
            summary="Integrity checks: checksums, revision continuity, cache vs storage")
async def doctor(request: Request, tenant: str | None = None) -> Response:
    return json_response(await call(hub_of(request).doctor, tenant))
