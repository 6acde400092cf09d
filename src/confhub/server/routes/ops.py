"""Operational routes: ``/healthz`` (alive), ``/readyz`` (storage reachable), ``/v1/stats``,
``/metrics`` (Prometheus text)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import Response

from ...errors import Unavailable
from ..deps import call, hub_of
from ..responses import json_response
from ..schemas import _Open, errors

router = APIRouter(tags=["operations"])


class HealthOut(_Open):
    ok: bool


class StatsOut(_Open):
    total_configs: int
    total_tenants: int
    total_versions: int


@router.get("/healthz", response_model=None, responses={200: {"model": HealthOut}},
            summary="Liveness: the process answers (does not touch storage)")
async def healthz() -> Response:
    return json_response({"ok": True})


@router.get("/readyz", response_model=None,
            responses={200: {"model": HealthOut}, **errors(503)},
            summary="Readiness: storage answers")
async def readyz(request: Request) -> Response:
    health: dict[str, Any] = dict(await call(hub_of(request).health))
    if not health.get("ok", False):
        raise Unavailable(f"storage is not ready: {health.get('error', 'unknown')}",
                          health=health)
    return json_response(health)


@router.get("/v1/stats", response_model=None,
            responses={200: {"model": StatsOut}, **errors(503)},
            summary="Figures: configs, tenants, versions, storage size")
async def stats(request: Request) -> Response:
    return json_response(dict(await call(hub_of(request).stats)), request=request)


@router.get("/metrics", response_model=None,
            responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}},
                             "description": "Prometheus text exposition"}},
            summary="Prometheus metrics of the server (all of its worker processes)")
async def metrics(request: Request) -> Response:
    text = await call(request.app.state.metrics.exposition)  # store gauges read storage
    return Response(text, media_type=CONTENT_TYPE_LATEST)
