"""Validation over HTTP: ``POST …/validate`` and the namespace schemas ``…/schemas/{ns}``.

Schemas of every tenant (``all_tenants=true``) are addressed through any tenant's path, so one
URL scheme serves both scopes; the answer's ``scope`` says which one a schema belongs to.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from starlette.requests import Request
from starlette.responses import Response

from ...model import BASE_ENV
from ..body import json_body, read_model
from ..deps import author_of, call, hub_of, reason_of
from ..responses import json_response
from ..schemas import (
    MAX_INT,
    AnnotationsOut,
    RollbackIn,
    SchemaIn,
    SchemaOut,
    SchemaPage,
    ValidateIn,
    ValidationOut,
    errors,
)
from .configs import Name

router = APIRouter(tags=["validation"])

SCHEMA_PATH = "/v1/tenants/{tenant}/schemas/{namespace}"
AllTenantsQ = Annotated[bool, Query(description="the schema of every tenant, not this one's")]


@router.post("/v1/tenants/{tenant}/validate", response_model=None,
             responses={200: {"model": ValidationOut}, **errors(404, 413, 415)},
             openapi_extra=json_body(ValidateIn.model_json_schema()),
             summary="Check a value against its schema and rules (writes nothing)")
async def validate(request: Request, tenant: Name) -> Response:
    body = await read_model(request, ValidateIn)
    cfg = hub_of(request).tenant(tenant)
    report = await call(cfg.validate, body.namespace, body.key, body.value,
                        env=body.env or BASE_ENV)
    return json_response(report.to_dict())


@router.get("/v1/tenants/{tenant}/schemas", response_model=None,
            responses={200: {"model": SchemaPage}, **errors(404)},
            summary="Schemas in force in a tenant, one per namespace")
async def list_schemas(request: Request, tenant: Name, all_tenants: AllTenantsQ = False
                       ) -> Response:
    cfg = hub_of(request).tenant(tenant)
    items = await call(cfg.schemas, all_tenants=all_tenants)
    return json_response({"items": [s.to_dict() for s in items]}, request=request)


@router.get(SCHEMA_PATH, response_model=None,
            responses={200: {"model": SchemaOut}, **errors(404)},
            summary="The namespace's schema in force (or an old `?version=`)")
async def get_schema(request: Request, tenant: Name, namespace: Name,
                     version: Annotated[int | None, Query(ge=1, le=MAX_INT)] = None,
                     all_tenants: AllTenantsQ = False) -> Response:
    cfg = hub_of(request).tenant(tenant)
    found = await call(cfg.get_schema, namespace, version=version, all_tenants=all_tenants)
    return json_response(found.to_dict(), request=request)


@router.put(SCHEMA_PATH, response_model=None,
            responses={200: {"model": SchemaOut}, **errors(404, 413, 415, 422)},
            openapi_extra=json_body(SchemaIn.model_json_schema(by_alias=True)),
            summary="Set the namespace's JSON Schema and CEL rules (a new schema version)")
async def put_schema(request: Request, tenant: Name, namespace: Name,
                     all_tenants: AllTenantsQ = False, dry_run: bool = False) -> Response:
    body = await read_model(request, SchemaIn)
    cfg = hub_of(request).tenant(tenant)
    found = await call(cfg.set_schema, namespace, body.schema_, body.rules,
                       key_pattern=body.key_pattern, all_tenants=all_tenants,
                       reason=reason_of(request, body.reason),
                       author=author_of(request, body.author), dry_run=dry_run)
    return json_response(_marked(found.to_dict(), dry_run))


@router.delete(SCHEMA_PATH, response_model=None,
               responses={200: {"model": SchemaOut}, **errors(404, 422)},
               summary="Remove the namespace's schema (a tombstone version)")
async def delete_schema(request: Request, tenant: Name, namespace: Name,
                        all_tenants: AllTenantsQ = False) -> Response:
    cfg = hub_of(request).tenant(tenant)
    found = await call(cfg.delete_schema, namespace, all_tenants=all_tenants,
                       reason=reason_of(request), author=author_of(request))
    return json_response(found.to_dict())


@router.get(SCHEMA_PATH + "/history", response_model=None,
            responses={200: {"model": SchemaPage}, **errors(404)},
            summary="Versions of the namespace's schema, newest first")
async def schema_history(request: Request, tenant: Name, namespace: Name,
                         all_tenants: AllTenantsQ = False,
                         limit: Annotated[int, Query(ge=1, le=10_000)] = 50) -> Response:
    cfg = hub_of(request).tenant(tenant)
    items = await call(cfg.schema_history, namespace, all_tenants=all_tenants, limit=limit)
    return json_response({"items": [s.to_dict() for s in items]}, request=request)


@router.post(SCHEMA_PATH + "/rollback", response_model=None,
             responses={200: {"model": SchemaOut}, **errors(404, 413, 415, 422)},
             openapi_extra=json_body(RollbackIn.model_json_schema()),
             summary="A new schema version equal to an old one")
async def rollback_schema(request: Request, tenant: Name, namespace: Name,
                          all_tenants: AllTenantsQ = False, dry_run: bool = False) -> Response:
    body = await read_model(request, RollbackIn)
    cfg = hub_of(request).tenant(tenant)
    found = await call(cfg.rollback_schema, namespace, body.to_version,
                       all_tenants=all_tenants, reason=reason_of(request, body.reason),
                       author=author_of(request, body.author), dry_run=dry_run)
    return json_response(_marked(found.to_dict(), dry_run))


@router.get(SCHEMA_PATH + "/annotations", response_model=None,
            responses={200: {"model": AnnotationsOut}, **errors(404)},
            summary="JSON pointers a key's schema marks x-secret / x-restart-required")
async def schema_annotations(request: Request, tenant: Name, namespace: Name,
                      key: Annotated[str, Query(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")]
                      ) -> Response:
    cfg = hub_of(request).tenant(tenant)
    found = await call(cfg.schema_annotations, namespace, key)
    return json_response(found, request=request)


def _marked(data: dict[str, Any], dry_run: bool) -> dict[str, Any]:
    if dry_run:
        data["dry_run"] = True
    return data
