"""Staged rollouts and the consumer registry over HTTP (DESIGN.md section 8).

    GET  /v1/tenants/{t}/rollouts                       list (``?state=``)
    POST /v1/tenants/{t}/rollouts                       start: ops + strategy -> 201
    GET  /v1/tenants/{t}/rollouts/{id}                  one, with its cohort's health
    POST /v1/tenants/{t}/rollouts/{id}/advance|pause|resume|rollback
    GET  /v1/tenants/{t}/consumers[/{client_id}]        who reads the tenant
    GET  /v1/tenants/{t}/consumers/{client_id}/reports  a consumer's last reports
    POST /v1/tenants/{t}/consumers/{client_id}/reports  ``{"rollout", "status", "reason"?}``
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import Response

from ...errors import NotFound
from ...model import now_micros
from ..auth import require_namespaces
from ..body import json_body, read_model
from ..deps import author_of, call, hub_of, reason_of, tenant_of
from ..responses import json_response
from ..schemas import errors
from .configs import Name

router = APIRouter(tags=["rollouts"])

RolloutId = Annotated[str, Path(pattern=r"^r-[1-9][0-9]{0,17}$", max_length=20)]
ClientId = Annotated[str, Path(max_length=128)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RolloutOp(_Strict):
    op: Literal["put", "patch", "delete"]
    namespace: str
    key: str
    env: str | None = None
    value: Any = None
    expected_version: int | None = Field(default=None, ge=0)


class RolloutIn(_Strict):
    """A change set and how to deliver it; ``strategy`` (a preset) or ``steps``."""

    ops: list[RolloutOp] = Field(min_length=1, max_length=1000)
    strategy: Literal["canary", "linear", "exponential", "all-at-once"] | None = None
    steps: list[float] | str | None = None
    bake: float | str | list[float | str] | None = Field(
        default=None, description="per step: seconds or 30s / 5m / 1h (one for all, or a list)")
    final_bake: float | str | None = None
    max_failure: float | str = Field(default=0.0, description="failure share, 0-1 or 5%")
    min_reports: int = 1
    min_ack: float | str = 0.0
    auto: bool = True
    selector: str | None = Field(default=None, description="label selector, "
                                 "e.g. `region in (eu,us),tier!=critical`")
    clients: list[str] | None = None
    reason: str | None = None
    author: str | None = None
    gate_prometheus: str | None = Field(default=None, description="Prometheus base URL")
    gate_query: str | None = Field(default=None, description="PromQL; any result rolls back")


class MoveIn(_Strict):
    reason: str | None = None
    author: str | None = None


class ReportIn(_Strict):
    rollout: str = Field(max_length=20)
    status: Literal["applied", "failed", "healthy", "unhealthy"]
    reason: str | None = Field(default=None, max_length=1000)


def _op(op: RolloutOp) -> dict[str, Any]:
    """As the hub takes it: ``value`` kept even when null (a JSON null is a value)."""
    data = op.model_dump(exclude_none=True)
    if op.op != "delete":
        data["value"] = op.value
    return data


def _rollout_json(rollout: Any) -> dict[str, Any]:
    return dict(rollout.to_dict(now=now_micros()))


@router.get("/v1/tenants/{tenant}/rollouts", response_model=None,
            responses=errors(400, 404), summary="Rollouts of a tenant, oldest first")
async def list_rollouts(request: Request, tenant: Name,
                        state: Annotated[Literal["running", "paused", "completed",
                                                 "rolled_back"] | None, Query()] = None
                        ) -> Response:
    cfg = hub_of(request).tenant(tenant)
    items = await call(cfg.rollouts.list, state=state)
    return json_response({"items": [_rollout_json(r) for r in items]})


@router.post("/v1/tenants/{tenant}/rollouts", status_code=201, response_model=None,
             responses=errors(400, 404, 409, 412, 413, 415, 422),
             openapi_extra=json_body(RolloutIn.model_json_schema()),
             summary="Start a staged rollout of a change set (validated like any write)")
async def start_rollout(request: Request, tenant: Name) -> Response:
    body = await read_model(request, RolloutIn)
    require_namespaces(request, [op.namespace for op in body.ops])
    cfg = hub_of(request).tenant(tenant)
    options = body.model_dump(exclude={"ops", "reason", "author"}, exclude_none=True)
    rollout = await call(cfg.rollouts.start, [_op(op) for op in body.ops],
                         reason=reason_of(request, body.reason),
                         author=author_of(request, body.author), **options)
    return json_response(_rollout_json(rollout), status=201,
                         headers={"location": f"/v1/tenants/{tenant}/rollouts/{rollout.id}"})


@router.get("/v1/tenants/{tenant}/rollouts/{rollout_id}", response_model=None,
            responses=errors(404), summary="One rollout: step, state, cohort health")
async def get_rollout(request: Request, tenant: Name, rollout_id: RolloutId,
                      health: bool = True) -> Response:
    cfg = hub_of(request).tenant(tenant)
    return json_response(_rollout_json(await call(cfg.rollouts.get, rollout_id,
                                                  health=health)))


@router.post("/v1/tenants/{tenant}/rollouts/{rollout_id}/{action}", response_model=None,
             responses=errors(400, 404, 409, 422),
             openapi_extra=json_body(MoveIn.model_json_schema()),
             summary="advance, pause, resume or rollback a rollout by hand")
async def move_rollout(request: Request, tenant: Name, rollout_id: RolloutId,
                       action: Literal["advance", "pause", "resume", "rollback"]) -> Response:
    body = await read_model(request, MoveIn, empty=MoveIn())
    cfg = hub_of(request).tenant(tenant)
    rollout = await call(getattr(cfg.rollouts, action), rollout_id,
                         reason=reason_of(request, body.reason),
                         author=author_of(request, body.author))
    return json_response(_rollout_json(rollout))


@router.get("/v1/tenants/{tenant}/consumers", response_model=None, responses=errors(404),
            summary="Consumers seen: labels, last seen, revision, rollouts, last reports")
async def list_consumers(request: Request, tenant: Name) -> Response:
    cfg = tenant_of(request, tenant)
    items = await call(cfg.consumers)
    return json_response({"items": [c.to_dict() for c in items]})


@router.get("/v1/tenants/{tenant}/consumers/{client_id}", response_model=None,
            responses=errors(404), summary="One consumer")
async def get_consumer(request: Request, tenant: Name, client_id: ClientId) -> Response:
    return json_response((await _one_consumer(request, tenant, client_id)).to_dict())


@router.get("/v1/tenants/{tenant}/consumers/{client_id}/reports", response_model=None,
            responses=errors(404), summary="A consumer's last reports, newest first")
async def consumer_reports(request: Request, tenant: Name, client_id: ClientId) -> Response:
    consumer = await _one_consumer(request, tenant, client_id)
    return json_response({"items": [dict(r) for r in consumer.reports]})


async def _one_consumer(request: Request, tenant: str, client_id: str) -> Any:
    cfg = tenant_of(request, tenant)
    found = await call(cfg.consumers, client_id)
    if not found:
        raise NotFound(f"consumer {client_id!r} has not been seen in tenant {tenant!r}",
                       tenant=tenant, client_id=client_id)
    return found[0]


@router.post("/v1/tenants/{tenant}/consumers/{client_id}/reports", status_code=201,
             response_model=None, responses=errors(400, 404, 409, 415),
             openapi_extra=json_body(ReportIn.model_json_schema()),
             summary="A consumer reports on a running rollout (applied/failed/healthy/...)")
async def add_report(request: Request, tenant: Name, client_id: ClientId) -> Response:
    body = await read_model(request, ReportIn)
    cfg = tenant_of(request, tenant)
    await call(cfg.rollouts.report, body.rollout, body.status, body.reason,
               client_id=client_id)
    return json_response({"tenant": tenant, "client_id": client_id, "rollout": body.rollout,
                          "status": body.status, "reason": body.reason}, status=201)
