"""Reading request bodies without ever failing with a 500.

FastAPI's own body parsing answers malformed JSON with 422 and reads any size into memory; the
contract wants 400 for bad JSON, 413 past a limit, 415 for a media type we do not speak, and no
crash on deep nesting or invalid UTF-8. So routes that take a body read it through here, and the
OpenAPI document describes the body separately (``json_body`` / ``openapi_extra``).
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import ClientDisconnect, Request

from ..errors import InvalidRequest, TooLarge

__all__ = ["MediaTypeError", "json_body", "media_type", "parse_json", "read_json", "read_model"]

JSON = "application/json"
MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"

# Values are at most 1 MiB encoded; allow for whitespace-heavy client encodings around them.
DEFAULT_MAX_BODY = 4 * 1024 * 1024
# Depth past which we refuse before the JSON parser recurses (the hub allows 64).
MAX_NESTING = 256


class MediaTypeError(InvalidRequest):
    """The request's Content-Type is not one this route accepts (answered 415)."""

    http_status = 415
    code = "unsupported_media_type"


def media_type(request: Request) -> str | None:
    """The bare media type of the request (lowercase, no parameters), None if absent."""
    raw = request.headers.get("content-type")
    if raw is None:
        return None
    return raw.split(";", 1)[0].strip().lower() or None


def _accepts(kind: str | None, allowed: tuple[str, ...]) -> bool:
    if kind is None:
        return True  # curl -d without a header, scripts; the body must still be JSON
    if kind in allowed:
        return True
    return JSON in allowed and kind.endswith("+json") and kind not in (MERGE_PATCH, JSON_PATCH)


async def _read_limited(request: Request, limit: int) -> bytes:
    """The whole body, at most ``limit`` bytes, read from ``request.receive`` as Starlette's
    ``Request.stream()`` reads it (a disconnect raises ``ClientDisconnect``), without its
    async generator: for a PUT's one-message body that generator cost more than the rest of
    reading. Nothing is cached on the request, so a later ``request.body()`` would wait for
    a body that has gone — read the body once, through here."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise InvalidRequest("Content-Length is not a number") from None
        if size > limit:
            raise TooLarge(f"request body is {size} bytes; the limit is {limit}",
                           size=size, limit=limit)
    receive = request.receive
    chunks: list[bytes] = []
    total = 0
    while True:
        message = await receive()
        kind = message["type"]
        if kind == "http.request":
            chunk = message.get("body", b"")
            total += len(chunk)
            if total > limit:
                raise TooLarge(f"request body exceeds the limit of {limit} bytes", limit=limit)
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)
        elif kind == "http.disconnect":
            raise ClientDisconnect()


def _nesting(data: bytes) -> int:
    """Upper bound of bracket depth, counted cheaply before parsing (strings may inflate it,
    which only errs on the side of refusing absurd bodies)."""
    if data.count(b"[") + data.count(b"{") <= MAX_NESTING:
        return 0
    depth = best = 0
    in_string = escaped = False
    for byte in data:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):
            depth += 1
            best = max(best, depth)
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return best


def _reject_constant(name: str) -> Any:
    raise InvalidRequest(f"{name} is not valid JSON")


# One decoder for every request: json.loads with any option builds a new one per call.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def parse_json(data: bytes, where: str = "request body") -> Any:
    """Strict JSON: UTF-8, no NaN/Infinity, bounded nesting. Raises InvalidRequest naming
    ``where`` the JSON came from (the body, a header)."""
    if not data.strip():
        raise InvalidRequest(f"{where} is empty; send a JSON value")
    if _nesting(data) > MAX_NESTING:
        raise InvalidRequest(f"{where} nests deeper than {MAX_NESTING} levels")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidRequest(f"{where} is not UTF-8: {exc.reason} at byte {exc.start}") \
            from None
    try:
        return _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        raise InvalidRequest(
            f"{where} is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from None
    except RecursionError:
        raise InvalidRequest(f"{where} nests too deeply") from None


async def read_json(request: Request, *, allowed: tuple[str, ...] = (JSON,),
                    limit: int = DEFAULT_MAX_BODY) -> Any:
    """Check the media type, read at most ``limit`` bytes and parse them as strict JSON."""
    _check_media_type(request, allowed)
    return parse_json(await _read_limited(request, limit))


def _check_media_type(request: Request, allowed: tuple[str, ...]) -> None:
    kind = media_type(request)
    if not _accepts(kind, allowed):
        raise MediaTypeError(
            f"Content-Type {kind!r} is not supported here; use " + " or ".join(allowed),
            content_type=kind, accepted=list(allowed),
        )


def json_body(schema: dict[str, Any], *, required: bool = True,
              media_types: tuple[str, ...] = (JSON,), description: str = "") -> dict[str, Any]:
    """``openapi_extra`` documenting a body that the route reads itself via :func:`read_json`."""
    body: dict[str, Any] = {
        "required": required,
        "content": {m: {"schema": schema} for m in media_types},
    }
    if description:
        body["description"] = description
    return {"requestBody": body}


M = TypeVar("M", bound=BaseModel)


async def read_model(request: Request, model: type[M], *, empty: M | None = None) -> M:
    """Read a JSON body into a pydantic model; a mismatch is a 400 naming the fields.

    ``empty`` is what a request without a body (not one byte, whatever its Content-Type)
    stands for; None: the body is required."""
    if empty is None:
        data = await read_json(request)
    else:
        raw = await _read_limited(request, DEFAULT_MAX_BODY)
        if not raw:
            return empty
        _check_media_type(request, (JSON,))
        data = parse_json(raw)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = [
            {"loc": [str(p) for p in e["loc"]], "msg": e["msg"], "type": e["type"]}
            for e in exc.errors(include_url=False, include_input=False, include_context=False)
        ]
        first = problems[0] if problems else {"loc": [], "msg": "invalid"}
        where = ".".join(first["loc"]) or "body"
        raise InvalidRequest(f"invalid body: {where}: {first['msg']}", errors=problems) from None
