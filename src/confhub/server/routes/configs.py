"""``/v1/tenants/{t}/configs…``: read, write, patch and delete config keys.

The handlers are thin: parse the HTTP form (headers, query, body) into a hub call, run it in a
worker thread, and encode the answer. The ``/config`` simple surface reuses the same functions
with tenant ``default`` and env ``base`` (see ``simple.py``).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from starlette.requests import Request
from starlette.responses import Response

from ...errors import InvalidRequest, NotFound, VersionConflict
from ...layering import diff as json_diff
from ...model import BASE_ENV, Entry, thaw
from ..body import JSON, JSON_PATCH, MERGE_PATCH, json_body, media_type, read_json
from ..deps import (
    author_of,
    call,
    hub_of,
    metadata_of,
    reason_of,
    request_id_of,
    state_of,
    tenant_of,
)
from ..responses import dumps, entry_etag, json_response, parse_version_tag
from ..schemas import (
    JSON_PATCH_OPS,
    MAX_INT,
    NAME_PATTERN,
    EntryOut,
    EntryPage,
    NamespacePage,
    ResolvedOut,
    ResolvedPage,
    VersionOut,
    errors,
)

router = APIRouter(tags=["configs"])

Name = Annotated[str, Path(pattern=NAME_PATTERN, max_length=128)]
EnvQ = Annotated[str | None, Query(description="env layer (default `base`)", max_length=128,
                                   pattern=NAME_PATTERN)]
LimitQ = Annotated[int, Query(ge=1, le=10_000)]
VersionQ = Annotated[int | None, Query(ge=1, le=MAX_INT, description="an old version")]

ANY_JSON: dict[str, Any] = {"description": "any JSON value"}
MERGE_PATCH_SCHEMA: dict[str, Any] = {"description": "RFC 7386 merge patch (any JSON value)"}
# --------------------------------------------------------------------------- shared handlers


async def read_entry(request: Request, tenant: str, namespace: str, key: str, *,
                     env: str | None = None, version: int | None = None,
                     resolved: bool = False, reveal: bool = False) -> Response:
    cfg = tenant_of(request, tenant)  # checks the names only; no I/O
    if resolved and version is not None:
        # A version numbers one layer's history; a resolved value merges two layers.
        raise InvalidRequest("?version= reads an old version of one layer and cannot be "
                             "combined with ?resolved=true (the merge of base and the env); "
                             "drop one of them", parameter="version")
    if reveal:  # decrypts and audits; the policy requires editor (server/auth.py)
        revealed: Entry = await call(cfg.get, namespace, key, env=env or BASE_ENV,
                                     version=version, reveal=True)
        return json_response(revealed.to_dict(), headers={"cache-control": "no-store"})
    if resolved:
        res = await call(cfg.resolve, namespace, key, env=env or BASE_ENV)
        return json_response(res.to_dict(), request=request)
    state = state_of(request)
    cached: Entry | None = (state.lookup(tenant, env or BASE_ENV, namespace, key)
                            if version is None else None)
    if cached is not None and cfg.identity is not None:
        # A consumer may see a staged value; its tenant is in memory (the lookup hit), so
        # asking the hub is a few dict lookups, safe on the event loop.
        cached = cfg.get(namespace, key, env=env or BASE_ENV)
    # not cached (or an old version): the hub may need storage, so a worker thread asks it
    entry: Entry = cached if cached is not None else await call(
        cfg.get, namespace, key, env=env or BASE_ENV, version=version)
    body = state.entry_bytes.encode(entry) if version is None else dumps(entry.to_dict())
    return json_response(None, body=body, request=request, etag=entry_etag(entry.version))


Expected = int | tuple[int, ...] | None


def expected_version_of(request: Request) -> Expected:
    """Translate conditional headers into the hub's ``expected_version`` (None = no check).

    ``If-Match: *`` (must exist) is returned as -1, and an ``If-Match`` list as the tuple of
    versions it names; the caller resolves either against the current version
    (:func:`_resolve_precondition`), which keeps the write a compare-and-set. If-Match
    compares strongly (RFC 9110 13.1.1): a weak tag (``W/"5"``) never matches.
    """
    if_match = request.headers.get("if-match")
    if_none = request.headers.get("if-none-match")
    if if_match is not None and if_none is not None:
        raise InvalidRequest("send If-Match or If-None-Match, not both")
    if if_none is not None:
        if if_none.strip() != "*":
            raise InvalidRequest('on writes, If-None-Match only accepts "*" (must not exist)')
        return 0
    if if_match is None:
        return None
    if if_match.strip() == "*":
        return -1
    versions: list[int] = []
    for tag in if_match.split(","):
        if tag.strip().startswith("W/"):
            parse_version_tag(tag.strip()[2:])  # well-formed, but weak: it matches nothing
            continue
        versions.append(parse_version_tag(tag))
    if len(versions) == 1 and "W/" not in if_match:
        return versions[0]
    return tuple(versions)


def _resolve_precondition(cfg: Any, namespace: str, key: str, env: str,
                          expected: Expected) -> int | None:
    """``If-Match: *`` or a list of tags becomes "the version it has now" if that satisfies
    it (VersionConflict if not): ``"1", "5"`` on version 5 writes with expected_version=5."""
    if expected is None or isinstance(expected, int) and expected >= 0:
        return expected
    try:
        current: int = cfg.get(namespace, key, env=env).version
    except NotFound:
        current = 0
    if expected == -1:
        if current == 0:
            raise VersionConflict(f"{namespace}/{key} does not exist (If-Match: *)",
                                  current_version=0, expected_version=None)
        return current
    assert isinstance(expected, tuple)
    if current == 0 or current not in expected:
        wanted = ", ".join(f'"{v}"' for v in expected) or "only weak tags, which never match"
        raise VersionConflict(f"{namespace}/{key} is at version {current}; If-Match asked for "
                              f"{wanted}", current_version=current,
                              expected_version=list(expected))
    return current


def write_options(request: Request) -> dict[str, Any]:
    """Audit fields every write takes from headers."""
    return {"reason": reason_of(request), "author": author_of(request),
            "metadata": metadata_of(request), "request_id": request_id_of(request)}


def _dry_run_answer(cfg: Any, namespace: str, key: str, env: str, result: Any) -> bytes:
    """A dry run answers what would be written, marked ``dry_run`` and with the JSON Patch
    from the current value."""
    try:
        before: Any = cfg.get(namespace, key, env=env).value
    except NotFound:
        before = None
    data = result.to_dict()
    after = data.get("value") if not data.get("deleted") else None
    data["dry_run"] = True
    data["diff"] = json_diff(thaw(before), thaw(after))
    return dumps(data)


def _write(cfg: Any, method: str, namespace: str, key: str, args: tuple[Any, ...],
           env: str, expected: Expected, dry_run: bool, options: dict[str, Any]) -> Any:
    """One blocking write, run in a worker thread; returns the hub's result, or the encoded
    dry-run answer."""
    version = _resolve_precondition(cfg, namespace, key, env, expected)
    result = getattr(cfg, method)(namespace, key, *args, env=env, expected_version=version,
                                  dry_run=dry_run, **options)
    if dry_run:
        return _dry_run_answer(cfg, namespace, key, env, result)
    return result


async def write_entry(request: Request, tenant: str, namespace: str, key: str, *,
                      env: str | None, dry_run: bool = False, secret: bool = False) -> Response:
    state = state_of(request)  # once: each lookup costs as much as parsing a small body
    value = await read_json(request)
    cfg = state.hub.tenant(tenant)
    env = env or BASE_ENV
    options = write_options(request)
    expected = expected_version_of(request)
    if secret or dry_run or expected == -1 or isinstance(expected, tuple):
        if secret:
            options["secret"] = True
        result = await call(_write, cfg, "set", namespace, key, (value,), env, expected,
                            dry_run, options)
    else:
        # The common PUT: checked here, committed by the store's group commit without a
        # worker thread of its own; the loop is woken once per group (see Completions).
        written, settle = state.completions().future()
        cfg.submit_set(namespace, key, value, done=settle, env=env,
                       expected_version=expected, **options)
        result = await written
    if dry_run:
        return json_response(None, body=result)
    created = result.created_at == result.updated_at
    body = state.entry_bytes.encode(result)
    headers = {"location": request.scope["path"]} if created else {}
    return json_response(None, body=body, status=201 if created else 200,
                         etag=entry_etag(result.version),
                         headers=warning_headers(result, headers))


def warning_headers(entry: Entry, headers: dict[str, str] | None = None) -> dict[str, str]:
    """``X-Confhub-Warnings: N`` when the write broke N warning rules (listed in the body's
    ``warnings``)."""
    out = dict(headers or {})
    if entry.warnings:
        out["x-confhub-warnings"] = str(len(entry.warnings))
    return out


async def patch_entry(request: Request, tenant: str, namespace: str, key: str, *,
                      env: str | None, dry_run: bool = False) -> Response:
    patch = await read_json(request, allowed=(MERGE_PATCH, JSON_PATCH, JSON))
    options = write_options(request)
    options["json_patch"] = media_type(request) == JSON_PATCH
    cfg = hub_of(request).tenant(tenant)
    result = await call(_write, cfg, "patch", namespace, key, (patch,), env or BASE_ENV,
                        expected_version_of(request), dry_run, options)
    if dry_run:
        return json_response(None, body=result)
    body = state_of(request).entry_bytes.encode(result)
    return json_response(None, body=body, etag=entry_etag(result.version),
                         headers=warning_headers(result))


async def delete_entry(request: Request, tenant: str, namespace: str, key: str, *,
                       env: str | None, dry_run: bool = False) -> Response:
    cfg = hub_of(request).tenant(tenant)
    result = await call(_write, cfg, "delete", namespace, key, (), env or BASE_ENV,
                        expected_version_of(request), dry_run, write_options(request))
    if dry_run:
        return json_response(None, body=result)
    return json_response(result.to_dict())


async def list_entries(request: Request, tenant: str, namespace: str, *, env: str | None,
                       resolved: bool, prefix: str | None, limit: int,
                       cursor: str | None) -> Response:
    cfg = tenant_of(request, tenant)
    env = env or BASE_ENV
    if resolved:
        items: list[dict[str, Any]] = await call(_resolved_list, cfg, namespace, env, prefix)
    else:
        items = [e.to_dict() for e in await call(cfg.list, namespace, env=env, prefix=prefix)]
    if cursor:
        items = [d for d in items if d["key"] > cursor]
    page, rest = items[:limit], items[limit:]
    return json_response({"items": page, "next_cursor": page[-1]["key"] if rest else None},
                         request=request)


def _resolved_list(cfg: Any, namespace: str, env: str,
                   prefix: str | None) -> list[dict[str, Any]]:
    keys = {e.key for e in cfg.list(namespace, env=BASE_ENV, prefix=prefix)}
    if env != BASE_ENV:
        keys |= {e.key for e in cfg.list(namespace, env=env, prefix=prefix)}
    out = []
    for key in sorted(keys):
        try:
            out.append(cfg.resolve(namespace, key, env=env).to_dict())
        except NotFound:  # deleted between the listing and the resolve
            continue
    return out


# --------------------------------------------------------------------------- routes

KEY_PATH = "/v1/tenants/{tenant}/configs/{namespace}/{key}"


@router.get("/v1/tenants/{tenant}/configs", response_model=None,
            responses={200: {"model": NamespacePage}, **errors(404)},
            summary="Namespaces of a tenant with their key counts")
async def list_namespaces(request: Request, tenant: Name, env: EnvQ = None) -> Response:
    counts = await call(hub_of(request).tenant(tenant).namespace_counts, env=env)
    items = [{"namespace": ns, "keys": n} for ns, n in counts.items()]
    return json_response({"items": items}, request=request)


@router.get("/v1/tenants/{tenant}/configs/{namespace}", response_model=None,
            responses={200: {"model": EntryPage | ResolvedPage}, **errors(404)},
            summary="Entries of a namespace (paged by key)")
async def get_namespace(request: Request, tenant: Name, namespace: Name, env: EnvQ = None,
                        resolved: bool = False,
                        prefix: Annotated[str | None, Query(max_length=128)] = None,
                        limit: LimitQ = 1000,
                        cursor: Annotated[str | None, Query(max_length=128)] = None) -> Response:
    return await list_entries(request, tenant, namespace, env=env, resolved=resolved,
                              prefix=prefix, limit=limit, cursor=cursor)


@router.head(KEY_PATH, include_in_schema=False, response_model=None)
@router.get(KEY_PATH, response_model=None,
                  responses={200: {"model": EntryOut | VersionOut | ResolvedOut,
                                   "description": "the entry; an old version with `?version=`;"
                                   " the merged value with `?resolved=true`"},
                             304: {"description": "not modified (If-None-Match)"},
                             **errors(404)},
                  summary="Read a key (ETag is the version)")
async def get_key(request: Request, tenant: Name, namespace: Name, key: Name, env: EnvQ = None,
                  version: VersionQ = None, resolved: bool = False,
                  reveal: Annotated[bool, Query(
                      description="decrypt secrets (editor or admin; audited)")] = False
                  ) -> Response:
    return await read_entry(request, tenant, namespace, key, env=env, version=version,
                            resolved=resolved, reveal=reveal)


@router.put(KEY_PATH, response_model=None,
            responses={200: {"model": EntryOut, "description": "updated"},
                       201: {"model": EntryOut, "description": "created"},
                       **errors(404, 412, 413, 415, 422)},
            openapi_extra=json_body(ANY_JSON, description="the new value"),
            summary="Write a key (If-Match / If-None-Match: * for compare-and-set)")
async def put_key(request: Request, tenant: Name, namespace: Name, key: Name, env: EnvQ = None,
                  dry_run: bool = False,
                  secret: Annotated[bool, Query(
                      description="encrypt the whole value (needs the master key)")] = False
                  ) -> Response:
    return await write_entry(request, tenant, namespace, key, env=env, dry_run=dry_run,
                             secret=secret)


@router.patch(KEY_PATH, response_model=None,
              responses={200: {"model": EntryOut}, **errors(404, 412, 413, 415, 422)},
              openapi_extra={"requestBody": {"required": True, "content": {
                  MERGE_PATCH: {"schema": MERGE_PATCH_SCHEMA},
                  JSON_PATCH: {"schema": JSON_PATCH_OPS},
              }}},
              summary="Patch a key (RFC 7386 merge patch or RFC 6902 JSON Patch)")
async def patch_key(request: Request, tenant: Name, namespace: Name, key: Name,
                    env: EnvQ = None, dry_run: bool = False) -> Response:
    return await patch_entry(request, tenant, namespace, key, env=env, dry_run=dry_run)


@router.delete(KEY_PATH, response_model=None,
               responses={200: {"model": VersionOut}, **errors(404, 412)},
               summary="Delete a key (writes a tombstone version)")
async def delete_key(request: Request, tenant: Name, namespace: Name, key: Name,
                     env: EnvQ = None, dry_run: bool = False) -> Response:
    return await delete_entry(request, tenant, namespace, key, env=env, dry_run=dry_run)
