"""``/v1/tokens`` (token management) and ``/v1/tenants/{t}/audit`` (the audit log).

The policy table lets any valid token reach the token routes; the handlers narrow it: a
superadmin manages every token, a tenant admin those of its tenant (a foreign token answers 404
like a missing one), and nobody hands out more than they hold.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import Response

from ...errors import Forbidden, InvalidRequest, NotFound
from ...tokens import role_rank
from ..auth import principal_of, require_role
from ..body import json_body, read_model
from ..deps import call, hub_of
from ..responses import dumps, json_response
from ..schemas import NAME_PATTERN, errors
from .configs import Name

router = APIRouter(tags=["security"])

TokenId = Annotated[str, Path(pattern=r"^[0-9a-f]{12}$")]


class TokenIn(BaseModel):
    tenant: Annotated[str, Field(pattern=NAME_PATTERN)] | None = None
    role: Literal["viewer", "editor", "admin", "superadmin"] = "viewer"
    namespaces: list[Annotated[str, Field(pattern=NAME_PATTERN)]] | None = None
    expires_in: Annotated[str, Field(max_length=16, description="e.g. 30d, 12h")] | \
        Annotated[int, Field(ge=1, le=10 * 365 * 86400)] | None = None
    name: Annotated[str, Field(pattern=NAME_PATTERN)] | None = None


class TokenOut(BaseModel):
    id: str
    name: str
    tenant: str | None
    role: str
    namespaces: list[str] | None
    created_at: str
    expires_at: str | None
    revoked_at: str | None
    created_by: str | None


class TokenCreated(TokenOut):
    token: str = Field(description="the bearer token: shown this once, never stored")


class TokenPage(BaseModel):
    items: list[TokenOut]


class AuditOut(BaseModel):
    id: int
    at: str
    action: str
    actor: str | None
    tenant: str | None
    target: str | None
    request_id: str | None
    client: str | None
    reason: str | None
    details: dict[str, Any]


class AuditPage(BaseModel):
    items: list[AuditOut]
    next_after: int | None


def _visible_token(request: Request, info: Any) -> Any:
    """The token if the caller may manage it; a foreign one is "not found"."""
    principal = principal_of(request)
    if principal.superadmin:
        return info
    if info.tenant is None or not principal.sees_tenant(info.tenant):
        raise NotFound(f"token {info.id!r} does not exist", token_id=info.id)
    require_role(request, info.tenant, "admin")
    return info


@router.post("/v1/tokens", status_code=201, response_model=None,
             responses={201: {"model": TokenCreated}, **errors(401, 403, 404)},
             openapi_extra=json_body(TokenIn.model_json_schema()),
             summary="Create a token (admin of its tenant); the answer holds it once")
async def create_token(request: Request) -> Response:
    if not getattr(hub_of(request), "auth_enabled", False):
        # An open server: anyone could mint the first token and lock everyone else out.
        raise Forbidden("no token exists yet, and the first one is made on the database, not "
                        "over HTTP: run `confhub token create --superadmin --db DATABASE` "
                        "where the database is (the server picks it up)",
                        required="database access")
    body = await read_model(request, TokenIn)
    principal = principal_of(request)
    if not principal.superadmin:
        if body.tenant is None or body.role == "superadmin":
            raise Forbidden("only a superadmin creates superadmin tokens",
                            required="superadmin")
        require_role(request, body.tenant, "admin")
        if principal.namespaces is not None and (
                body.namespaces is None or not set(body.namespaces) <= set(principal.namespaces)):
            raise Forbidden("a namespace-limited admin creates tokens limited to its own "
                            "namespaces", namespaces=list(principal.namespaces))
        if role_rank(body.role) > role_rank(principal.role):
            raise Forbidden("a token cannot grant more than its creator holds")
    token, info = await call(hub_of(request).create_token, tenant=body.tenant,
                             role=body.role, namespaces=body.namespaces,
                             expires_in=body.expires_in, name=body.name,
                             created_by=principal.name)
    return Response(dumps({**info.to_dict(), "token": token}), status_code=201,
                    media_type="application/json", headers={"cache-control": "no-store"})


@router.get("/v1/tokens", response_model=None,
            responses={200: {"model": TokenPage}, **errors(401, 403, 404)},
            summary="Tokens of a tenant (admin) or of all tenants (superadmin)")
async def list_tokens(request: Request,
                      tenant: Annotated[str | None, Query(pattern=NAME_PATTERN)] = None,
                      include_revoked: bool = False) -> Response:
    principal = principal_of(request)
    if not principal.superadmin:
        tenant = tenant or principal.tenant
        if tenant is None:
            raise InvalidRequest("name the tenant: ?tenant=")
        require_role(request, tenant, "admin")
    items = await call(hub_of(request).tokens, tenant, include_revoked=include_revoked)
    return json_response({"items": [t.to_dict() for t in items]})


@router.get("/v1/tokens/{token_id}", response_model=None,
            responses={200: {"model": TokenOut}, **errors(401, 403, 404)},
            summary="One token (never the token itself)")
async def show_token(request: Request, token_id: TokenId) -> Response:
    info = _visible_token(request, await call(hub_of(request).token_info, token_id))
    return json_response(info.to_dict())


@router.delete("/v1/tokens/{token_id}", response_model=None,
               responses={200: {"model": TokenOut}, **errors(401, 403, 404)},
               summary="Revoke a token (effective at once here, within ~1 s elsewhere)")
async def revoke_token(request: Request, token_id: TokenId) -> Response:
    hub = hub_of(request)
    _visible_token(request, await call(hub.token_info, token_id))
    info = await call(hub.revoke_token, token_id)
    return json_response(info.to_dict())


@router.get("/v1/tenants/{tenant}/audit", response_model=None,
            responses={200: {"model": AuditPage,
                             "description": "JSON, or JSON lines with `?format=jsonl`"},
                       **errors(401, 403, 404)},
            summary="The tenant's audit log, oldest first (admin)")
async def audit(request: Request, tenant: Name,
                after: Annotated[int, Query(ge=0, le=2**62)] = 0,
                limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
                action: Annotated[str | None, Query(max_length=64)] = None,
                actor: Annotated[str | None, Query(max_length=200)] = None,
                target: Annotated[str | None, Query(max_length=300)] = None,
                since: datetime | None = None, until: datetime | None = None,
                format: Literal["json", "jsonl"] = "json") -> Response:
    hub = hub_of(request)
    await call(hub.tenant_info, tenant)  # 404 for a missing tenant
    events = await call(hub.audit, tenant, after=after, limit=limit, action=action,
                        actor=actor, target=target, since=since, until=until)
    items = [e.to_dict() for e in events]
    if format == "jsonl":
        body = b"".join(dumps(item) + b"\n" for item in items)
        return Response(body, media_type="application/x-ndjson")
    return json_response({"items": items,
                          "next_after": items[-1]["id"] if len(items) == limit else None})
