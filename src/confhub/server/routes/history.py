"""A key's past: ``…/{key}/history``, ``…/{key}/diff`` and ``…/{key}/rollback``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from starlette.requests import Request
from starlette.responses import Response

from ...model import BASE_ENV
from ..body import json_body, read_model
from ..deps import author_of, call, hub_of, reason_of, state_of
from ..responses import entry_etag, json_response
from ..schemas import MAX_INT, DiffOut, EntryOut, RollbackIn, VersionPage, errors
from .configs import (
    KEY_PATH,
    EnvQ,
    Name,
    _write,
    expected_version_of,
    warning_headers,
    write_options,
)

router = APIRouter(tags=["history"])

VersionNo = Annotated[int, Query(ge=0, le=MAX_INT)]


@router.get(KEY_PATH + "/history", response_model=None,
            responses={200: {"model": VersionPage}, **errors(404)},
            summary="Versions of a key, newest first")
async def history(request: Request, tenant: Name, namespace: Name, key: Name, env: EnvQ = None,
                  limit: Annotated[int, Query(ge=1, le=10_000)] = 50,
                  before: Annotated[int | None, Query(ge=1, le=MAX_INT)] = None) -> Response:
    return await key_history(request, tenant, namespace, key, env=env, limit=limit,
                             before=before)


async def key_history(request: Request, tenant: str, namespace: str, key: str, *,
                      env: str | None, limit: int, before: int | None) -> Response:
    cfg = hub_of(request).tenant(tenant)
    versions = await call(cfg.history, namespace, key, env=env or BASE_ENV, limit=limit,
                          before=before)
    return json_response({"items": [v.to_dict() for v in versions]}, request=request)


@router.get(KEY_PATH + "/diff", response_model=None,
            responses={200: {"model": DiffOut}, **errors(404)},
            summary="JSON Patch (RFC 6902) from one version to another")
async def diff(request: Request, tenant: Name, namespace: Name, key: Name,
               from_: Annotated[int, Query(alias="from", ge=1, le=MAX_INT)],
               to: Annotated[int, Query(ge=1, le=MAX_INT)], env: EnvQ = None) -> Response:
    cfg = hub_of(request).tenant(tenant)
    patch = await call(cfg.diff, namespace, key, from_, to, env=env or BASE_ENV)
    return json_response({"from_version": from_, "to_version": to, "patch": list(patch)},
                         request=request)


@router.post(KEY_PATH + "/rollback", response_model=None,
             responses={200: {"model": EntryOut}, **errors(404, 412, 413, 415, 422)},
             openapi_extra=json_body(RollbackIn.model_json_schema()),
             summary="Write a new version equal to an old one")
async def rollback(request: Request, tenant: Name, namespace: Name, key: Name,
                   env: EnvQ = None, dry_run: bool = False) -> Response:
    body = await read_model(request, RollbackIn)
    cfg = hub_of(request).tenant(tenant)
    options = write_options(request)
    options["reason"] = reason_of(request, body.reason)
    options["author"] = author_of(request, body.author)
    result = await call(_write, cfg, "rollback", namespace, key, (body.to_version,),
                        env or BASE_ENV, expected_version_of(request), dry_run, options)
    if dry_run:
        return json_response(None, body=result)
    return json_response(None, body=state_of(request).entry_bytes.encode(result),
                         etag=entry_etag(result.version), headers=warning_headers(result))
