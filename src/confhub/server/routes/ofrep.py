"""OFREP: the OpenFeature Remote Evaluation Protocol, so any language's OFREP provider works.

Follows the protocol's OpenAPI document (open-feature/protocol ``service/openapi.yaml``) and
flagd's implementation of it where the document leaves room:

    POST /ofrep/v1/evaluate/flags/{key}   {"context": {...}}
      200 {"key", "value", "reason", "variant", "metadata"}
          a flag that defers to the code default (DISABLED, or no defaultVariant) has no
          "value" and an empty "variant" (the official Python provider reads "variant")
      404 {"key", "errorCode": "FLAG_NOT_FOUND", "errorDetails"}
      400 {"key", "errorCode": "PARSE_ERROR" | "GENERAL" | "INVALID_CONTEXT", "errorDetails"}
    POST /ofrep/v1/evaluate/flags          {"context": {...}}
      200 {"flags": [one success or failure per flag], "metadata": flag set metadata}
          with ETag; If-None-Match naming it -> 304, no body
      400 {"errorCode": "INVALID_CONTEXT", "errorDetails"}

The tenant is the bearer token's (``default`` for an all-tenant token or an open server); the
same routes under ``/v1/tenants/{t}`` serve tenant ``t`` (a provider's base URL may be
``http://HOST/v1/tenants/t``). Flags are the keys of the ``flags`` namespace, base env.
Authentication and tenant errors keep confhub's error shape (OFREP leaves 401/403 bodies open).

A request that names its consumer (``X-Confhub-Client`` / ``X-Confhub-Labels``, as every
confhub read) evaluates the flags that consumer sees: a flag under a staged rollout evaluates
to its staged definition for cohort members. The client id is the targeting key when the
context gives none.
"""

from __future__ import annotations

import hashlib
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from ...errors import InvalidRequest, TooLarge
from ...flags import FLAGS_NAMESPACE, Evaluation, FlagSet
from ...model import BASE_ENV, DEFAULT_TENANT
from ..auth import principal_of, require_namespaces, require_role
from ..body import parse_json
from ..deps import call, hub_of, identity_of, tenant_of
from ..responses import dumps, json_response
from .configs import Name

router = APIRouter(tags=["flags (OFREP)"])

OFREP = "/ofrep/v1/evaluate/flags"
MAX_CONTEXT_BYTES = 256 * 1024
_REQUEST = {"type": "object", "properties": {"context": {
    "type": "object", "description": "evaluation context: targetingKey and attributes",
    "additionalProperties": True}}}


class _FlagSets:
    """Compiled flag sets per tenant, rebuilt only when the flags namespace changes.

    The freshness check is ``(number of keys, latest (revision, write time) among them)``:
    every commit that writes a key gives it a revision above all earlier ones, and a commit
    that only deletes lowers the count, so any change of the namespace changes the stamp (the
    write time tells a tenant deleted and made again, whose revisions start over).
    """

    def __init__(self) -> None:
        self._sets: dict[str, tuple[tuple[int, Any], FlagSet]] = {}

    def cached(self, hub: Any, tenant: str) -> FlagSet | None:
        """The tenant's flags from the hub's memory, None when it would need storage."""
        entries = hub.cached_entries(tenant, BASE_ENV, FLAGS_NAMESPACE)
        return None if entries is None else self._current(tenant, entries)

    def load(self, hub: Any, tenant: str) -> FlagSet:
        """The tenant's flags, reading storage if need be (NotFound for a missing tenant)."""
        return self._current(tenant, hub.tenant(tenant).list(FLAGS_NAMESPACE))

    @staticmethod
    def as_consumer(reader: Any) -> FlagSet:
        """The flags a consumer sees (staged definitions of its rollouts), compiled afresh:
        one set per consumer would not be worth caching against a per-request list."""
        return FlagSet.from_entries(reader.list(FLAGS_NAMESPACE))

    def _current(self, tenant: str, entries: list[Any]) -> FlagSet:
        stamp = (len(entries), max(((e.revision, e.updated_at) for e in entries), default=None))
        found = self._sets.get(tenant)
        if found is not None and found[0] == stamp:
            return found[1]
        flags = FlagSet.from_entries(entries)
        if len(self._sets) > 10_000:
            self._sets.clear()
        self._sets[tenant] = (stamp, flags)
        return flags


async def _flags_of(request: Request, tenant: str) -> FlagSet:
    hub, sets = hub_of(request), _flag_sets(request)
    if identity_of(request) is not None:
        return await call(sets.as_consumer, tenant_of(request, tenant))
    flags = sets.cached(hub, tenant)
    return flags if flags is not None else await call(sets.load, hub, tenant)


def _flag_sets(request: Request) -> _FlagSets:
    state = request.app.state
    sets: _FlagSets | None = getattr(state, "ofrep_flag_sets", None)
    if sets is None:
        sets = state.ofrep_flag_sets = _FlagSets()
    return sets


def _tenant(request: Request, tenant: str | None) -> str:
    """The tenant a request evaluates in, after checking the token may read its flags."""
    name = tenant or principal_of(request).tenant or DEFAULT_TENANT
    require_role(request, name, "viewer")
    require_namespaces(request, [FLAGS_NAMESPACE])
    return name


async def _context(request: Request) -> tuple[dict[str, Any], str | None]:
    """The evaluation context: attributes and targeting key. InvalidRequest if malformed.

    A body without ``context`` (the Python provider's, when it has none) is an empty one; a
    context without a targeting key takes the consumer's client id, if the request names one.
    """
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_CONTEXT_BYTES:  # answered 413, not an OFREP evaluation failure
            raise TooLarge(f"the evaluation request is larger than {MAX_CONTEXT_BYTES} bytes",
                           limit=MAX_CONTEXT_BYTES)
        chunks.append(chunk)
    raw = b"".join(chunks)
    body = parse_json(raw) if raw.strip() else {}
    if not isinstance(body, dict):
        raise InvalidRequest("the request body must be a JSON object with a \"context\" object")
    context = body.get("context", {})
    if context is None:
        context = {}
    if not isinstance(context, dict):
        raise InvalidRequest("\"context\" must be an object of evaluation attributes")
    attributes = dict(context)
    targeting_key = attributes.pop("targetingKey", None)
    if targeting_key is not None and not isinstance(targeting_key, str):
        raise InvalidRequest("\"targetingKey\" must be a string")
    if not targeting_key:
        identity = identity_of(request)
        targeting_key = identity.client_id if identity is not None else targeting_key
    return attributes, targeting_key


def _result(evaluation: Evaluation) -> dict[str, Any]:
    """One flag's OFREP answer: an evaluation success or an evaluation failure."""
    out: dict[str, Any] = {"key": evaluation.key}
    if evaluation.error_code is not None:
        out["errorCode"] = evaluation.error_code
        out["errorDetails"] = evaluation.error_message or evaluation.error_code
    else:
        if evaluation.variant is not None:
            out["value"] = evaluation.value
        out["reason"] = evaluation.reason
        out["variant"] = evaluation.variant or ""
    out["metadata"] = dict(evaluation.metadata)
    return out


def _failure(key: str | None, code: str, details: str, status: int = 400) -> Response:
    body: dict[str, Any] = {} if key is None else {"key": key}
    body.update(errorCode=code, errorDetails=details)
    return Response(dumps(body), status_code=status, media_type="application/json")


async def _evaluate_one(request: Request, tenant: str | None, key: str) -> Response:
    name = _tenant(request, tenant)
    try:
        attributes, targeting_key = await _context(request)
    except InvalidRequest as exc:
        return _failure(key, "INVALID_CONTEXT", exc.message)
    flags = await _flags_of(request, name)
    evaluation = flags.evaluate(key, attributes, targeting_key)
    if evaluation.error_code == "FLAG_NOT_FOUND":
        return _failure(key, "FLAG_NOT_FOUND", evaluation.error_message or "", 404)
    body = _result(evaluation)
    return Response(dumps(body), status_code=400 if evaluation.error_code else 200,
                    media_type="application/json")


async def _evaluate_all(request: Request, tenant: str | None) -> Response:
    name = _tenant(request, tenant)
    try:
        attributes, targeting_key = await _context(request)
    except InvalidRequest as exc:
        return _failure(None, "INVALID_CONTEXT", exc.message)
    flags = await _flags_of(request, name)
    body = dumps({"flags": [_result(flags.evaluate(key, attributes, targeting_key))
                            for key in flags.flag_keys()],
                  "metadata": dict(flags.metadata)})
    etag = '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'
    return json_response(None, body=body, etag=etag, request=request)


_METADATA = {"type": "object", "additionalProperties": {"type": ["string", "number",
                                                                   "boolean"]}}
_SUCCESS = {"type": "object", "required": ["key", "reason"], "properties": {
    "key": {"type": "string"}, "value": {}, "variant": {"type": "string"},
    "reason": {"type": "string"}, "metadata": _METADATA}}
_FAILURE = {"type": "object", "required": ["errorCode"], "properties": {
    "key": {"type": "string"}, "errorCode": {"type": "string"},
    "errorDetails": {"type": "string"}, "metadata": _METADATA}}


def _json(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_CONFHUB_ERROR = {"type": "object", "required": ["error"],
                  "properties": {"error": {"type": "object"}}}
_COMMON: dict[int | str, dict[str, Any]] = {
    400: _json("OFREP evaluation failure (PARSE_ERROR, GENERAL, INVALID_CONTEXT), or confhub's "
               "error for a bad tenant name", {"anyOf": [_FAILURE, _CONFHUB_ERROR]}),
    401: {"description": "a bearer token is needed"},
    403: {"description": "the token may not read this tenant's flags"},
    404: {"description": "the flag (OFREP FLAG_NOT_FOUND) or the tenant does not exist"},
    413: {"description": "the evaluation request is too large"},
    503: {"description": "storage unavailable; retry later"},
}
_DOC: dict[int | str, dict[str, Any]] = {
    200: _json("the evaluation (OFREP evaluationSuccess)", _SUCCESS), **_COMMON}
_BULK_DOC: dict[int | str, dict[str, Any]] = {
    200: _json("every flag, one success or failure each, with ETag", {
        "type": "object", "required": ["flags"], "properties": {
            "flags": {"type": "array", "items": {"anyOf": [_SUCCESS, _FAILURE]}},
            "metadata": _METADATA}}),
    304: {"description": "unchanged since the If-None-Match ETag"}, **_COMMON}
_BODY = {"requestBody": {"required": False,
                         "content": {"application/json": {"schema": _REQUEST}}}}


@router.post(OFREP + "/{key}", response_model=None, responses=_DOC, openapi_extra=_BODY,
             summary="OFREP: evaluate one flag (tenant of the token)")
async def evaluate_flag(request: Request, key: str) -> Response:
    return await _evaluate_one(request, None, key)


@router.post(OFREP, response_model=None, openapi_extra=_BODY,
             responses=_BULK_DOC,
             summary="OFREP: evaluate every flag (tenant of the token)")
async def evaluate_flags(request: Request) -> Response:
    return await _evaluate_all(request, None)


@router.post("/v1/tenants/{tenant}" + OFREP + "/{key}", response_model=None, responses=_DOC,
             openapi_extra=_BODY, summary="OFREP: evaluate one flag of a tenant")
async def evaluate_tenant_flag(request: Request, tenant: Name, key: str) -> Response:
    return await _evaluate_one(request, tenant, key)


@router.post("/v1/tenants/{tenant}" + OFREP, response_model=None, openapi_extra=_BODY,
             responses=_BULK_DOC,
             summary="OFREP: evaluate every flag of a tenant")
async def evaluate_tenant_flags(request: Request, tenant: Name) -> Response:
    return await _evaluate_all(request, tenant)
