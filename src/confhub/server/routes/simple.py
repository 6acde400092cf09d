"""The simple surface: ``/config/{ns}/{key}`` and ``/config/{ns}``, tenant ``default``, env
``base``. It exists so that plain ``curl`` works with no further knowledge; answers are the
same Entry JSON as ``/v1`` (which includes namespace, key, value, version and timestamps)."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from ...model import BASE_ENV, DEFAULT_TENANT
from ..body import json_body
from ..schemas import EntryOut, EntryPage, VersionOut, errors
from .configs import (
    ANY_JSON,
    LimitQ,
    Name,
    delete_entry,
    list_entries,
    read_entry,
    write_entry,
)

router = APIRouter(tags=["simple"])

SIMPLE_KEY = "/config/{namespace}/{key}"


@router.head(SIMPLE_KEY, include_in_schema=False, response_model=None)
@router.get(SIMPLE_KEY, response_model=None,
                  responses={200: {"model": EntryOut}, 304: {"description": "not modified"},
                             **errors(404)},
                  summary="Read a key of the default tenant")
async def simple_get(request: Request, namespace: Name, key: Name) -> Response:
    return await read_entry(request, DEFAULT_TENANT, namespace, key)


@router.put(SIMPLE_KEY, response_model=None,
            responses={200: {"model": EntryOut}, 201: {"model": EntryOut},
                       **errors(412, 413, 415, 422)},
            openapi_extra=json_body(ANY_JSON, description="the new value"),
            summary="Write a key of the default tenant")
async def simple_put(request: Request, namespace: Name, key: Name) -> Response:
    return await write_entry(request, DEFAULT_TENANT, namespace, key, env=BASE_ENV)


@router.delete(SIMPLE_KEY, response_model=None,
               responses={200: {"model": VersionOut}, **errors(404, 412)},
               summary="Delete a key of the default tenant")
async def simple_delete(request: Request, namespace: Name, key: Name) -> Response:
    return await delete_entry(request, DEFAULT_TENANT, namespace, key, env=BASE_ENV)


@router.get("/config/{namespace}", response_model=None,
            responses={200: {"model": EntryPage}, **errors(404)},
            summary="Entries of a namespace of the default tenant")
async def simple_list(request: Request, namespace: Name, limit: LimitQ = 1000) -> Response:
    return await list_entries(request, DEFAULT_TENANT, namespace, env=BASE_ENV,
                              resolved=False, prefix=None, limit=limit, cursor=None)
