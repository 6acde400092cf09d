"""Backup and restore of a whole tenant: ``GET …/export`` and ``POST …/import``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from starlette.requests import Request
from starlette.responses import Response

from ...errors import InvalidRequest
from ..body import json_body, read_json
from ..deps import author_of, call, hub_of, reason_of
from ..responses import json_response
from ..schemas import _Open, errors
from .configs import Name

router = APIRouter(tags=["export"])

# An export with history can be far bigger than one value.
MAX_IMPORT_BYTES = 256 * 1024 * 1024


class ExportOut(_Open):
    pass


class ImportOut(_Open):
    created: int
    updated: int
    skipped: int
    versions: int
    snapshots: int = 0
    snapshots_skipped: int = 0
    dry_run: bool


@router.get("/v1/tenants/{tenant}/export", response_model=None,
            responses={200: {"model": ExportOut, "description": "versioned export document"},
                       **errors(404)},
            summary="Export a tenant (current state, `?history=true` for all versions)")
async def export(request: Request, tenant: Name,
                 history: Annotated[bool, Query()] = False,
                 include_secrets: Annotated[bool, Query(
                     description="secrets in plain text (admin; audited)")] = False
                 ) -> Response:
    data = await call(hub_of(request).export, tenant, include_history=history,
                      include_secrets=include_secrets)
    return json_response(data, request=request)


@router.post("/v1/tenants/{tenant}/import", response_model=None,
             responses={200: {"model": ImportOut, "description": "counts"},
                        **errors(404, 409, 413, 415, 422)},
             openapi_extra=json_body({"type": "object", "description": "an export document"}),
             summary="Import an export document into a tenant")
async def import_(request: Request, tenant: Name,
                  overwrite_existing: Annotated[bool, Query()] = False,
                  preserve_versions: Annotated[bool, Query()] = True,
                  dry_run: Annotated[bool, Query()] = False) -> Response:
    data = await read_json(request, limit=MAX_IMPORT_BYTES)
    if not isinstance(data, dict):
        raise InvalidRequest("an import body is an export document (a JSON object)")
    counts: Any = await call(hub_of(request).import_, tenant, data,
                             overwrite_existing=overwrite_existing,
                             preserve_versions=preserve_versions, dry_run=dry_run,
                             reason=reason_of(request), author=author_of(request))
    return json_response({**counts, "dry_run": dry_run})
