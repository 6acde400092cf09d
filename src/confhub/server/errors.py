"""The one place that turns failures into HTTP answers.

Every error the server sends has the body of DESIGN.md section 3::

    {"error": {"code": "version_conflict", "message": "...", "details": {...}}}

``ConfhubError`` subclasses carry their own status and code; this module adds the few failures
that happen before the hub is reached (routing, query validation, storage drivers). Anything
unexpected is logged and answered as a 500 with the same shape, but the goal — checked by the
schemathesis run — is that no client input ever gets there.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from typing import Any

import jsonpatch
import jsonpointer
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from ..errors import ConfhubError, InvalidRequest, InvalidValue, Unavailable

__all__ = [
    "as_confhub_error", "error_body", "error_response", "install_error_handlers",
    "response_for",
]

log = logging.getLogger("confhub.server")

_STATUS_CODES: dict[int, str] = {
    400: "invalid_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    408: "request_timeout",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "already_exists",
    410: "gone",
    412: "version_conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "validation_failed",
    429: "too_many_requests",
    501: "not_implemented",
    503: "unavailable",
}


def _jsonable(value: Any) -> Any:
    """Details may hold domain objects (a ValidationReport); give them their JSON form."""
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict):
        return to_dict()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return repr(value)


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> bytes:
    """Encode the error shape. ASCII-escaped, so a bad name holding a lone surrogate still
    encodes."""
    body = {"error": {"code": code, "message": message, "details": _jsonable(details or {})}}
    return json.dumps(body, ensure_ascii=True, allow_nan=False).encode("ascii")


def error_response(status: int, code: str, message: str,
                   details: dict[str, Any] | None = None,
                   headers: dict[str, str] | None = None) -> Response:
    return Response(error_body(code, message, details), status_code=status,
                    media_type="application/json", headers=headers)


def confhub_error_response(exc: ConfhubError) -> Response:
    headers = None
    retry_after = exc.details.get("retry_after")
    if isinstance(retry_after, int) and exc.http_status in (429, 503):
        headers = {"retry-after": str(retry_after)}
        if exc.http_status == 503 and "limit" in exc.details:
            # Refused for want of connections (a full watch capacity): a refused client
            # left connected would hold the very slot it was refused (granian counts idle
            # keep-alive connections toward --max-connections), so let it go.
            headers["connection"] = "close"
    elif exc.http_status == 503:  # storage trouble (a full disk, a lock): worth a retry
        headers = {"retry-after": "1"}
    elif exc.http_status == 408:  # the rest of a stalled body is not worth waiting for
        headers = {"connection": "close"}
    return error_response(exc.http_status, exc.code, exc.message, exc.details, headers)



# Patterns in the user's words (pydantic would say "String should match pattern '^[0-9a-f]...'").
_PATTERN_WORDS = {
    r"^[0-9a-f]{12}$": "a token id is 12 hexadecimal digits, like 3f2a9c01b7de",
    r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$":
        "a name is 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit",
}


def _message(error: dict[str, Any]) -> str:
    if error.get("type") == "string_pattern_mismatch":
        pattern = (error.get("ctx") or {}).get("pattern")
        words = _PATTERN_WORDS.get(str(pattern))
        value = error.get("input")
        if words:
            return f"{value!r} is not valid: {words}" if isinstance(value, str) else words
    return str(error.get("msg", ""))


def _request_validation(errors: list[Any]) -> dict[str, Any]:
    # FastAPI's error entries may hold the raw input and exception objects; keep what helps.
    cleaned = [
        {"loc": [str(p) for p in e.get("loc", ())], "msg": _message(e),
         "type": str(e.get("type", ""))}
        for e in errors if isinstance(e, dict)
    ]
    return {"errors": cleaned}


def _storage_errors() -> tuple[type[Exception], ...]:
    errors: list[type[Exception]] = [sqlite3.OperationalError]
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg is a dependency, but stay importable
        pass
    else:
        errors.append(psycopg.OperationalError)
    return tuple(errors)


_STORAGE_ERRORS = _storage_errors()


def as_confhub_error(exc: BaseException) -> ConfhubError | None:
    """The ConfhubError a non-confhub failure stands for, None if it is a real bug."""
    if isinstance(exc, ConfhubError):
        return exc
    if isinstance(exc, _STORAGE_ERRORS):
        # Driver errors that escaped the hub mean storage trouble, not a client mistake.
        return Unavailable(f"storage unavailable: {exc}")
    if isinstance(exc, UnicodeError):
        # Lone surrogates ("\ud800" in JSON) and similar cannot be stored as UTF-8.
        return InvalidValue(f"value is not valid Unicode text: {exc}")
    if isinstance(exc, RecursionError):
        return InvalidValue("value nests too deeply")
    if isinstance(exc, ClientDisconnect):
        # The client left (or the server is stopping) before the body was read: nobody
        # will read the answer, and it is not a server fault worth a traceback.
        return InvalidRequest("the client disconnected before sending the whole body")
    if isinstance(exc, jsonpatch.JsonPatchException | jsonpointer.JsonPointerException):
        # A JSON Patch the hub let through to jsonpatch/jsonpointer (e.g. a path without "/").
        return InvalidRequest(f"invalid JSON Patch: {exc}")
    return None


def response_for(exc: Exception, method: str = "", path: str = "") -> Response:
    """The answer for any exception raised while handling a request (used by the handlers
    below and by the lean paths that bypass FastAPI)."""
    error = as_confhub_error(exc)
    if error is None:
        log.error("unexpected error on %s %s", method, path, exc_info=exc)
        return error_response(500, "internal", "internal server error")
    if error.http_status >= 500:
        log.warning("%s %s -> %s: %s", method, path, error.code, error)
    return confhub_error_response(error)


def allowed_methods(request: Request) -> list[str]:
    """Every method some route answers on this path (Starlette's 405 names only the first
    route's, as each method is a route of its own here)."""
    from starlette.routing import Match

    methods = []
    for method in ("DELETE", "GET", "PATCH", "POST", "PUT"):
        scope = {**request.scope, "method": method}
        if any(route.matches(scope)[0] == Match.FULL for route in request.app.router.routes):
            methods.append(method)
    if "GET" in methods:  # HEAD is answered wherever GET is (app.HeadBody)
        methods.insert(methods.index("GET") + 1, "HEAD")
    return methods


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers; called once by ``create_app``."""

    async def on_error(request: Request, exc: Exception) -> Response:
        return response_for(exc, request.method, request.url.path)

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        code = _STATUS_CODES.get(exc.status_code, "invalid_request")
        message = exc.detail if isinstance(exc.detail, str) else "request refused"
        if exc.status_code == 404 and message == "Not Found":
            message = f"no route for {request.method} {request.url.path}"
        headers = dict(exc.headers) if exc.headers else None
        if exc.status_code == 405:
            allowed = allowed_methods(request)
            headers = {k: v for k, v in (headers or {}).items() if k.lower() != "allow"}
            headers["allow"] = ", ".join(allowed)
            message = (f"{request.method} is not allowed on {request.url.path}; use "
                       f"{', '.join(allowed)}")
            details = {"allowed": allowed}
            return error_response(405, code, message, details, headers=headers)
        return error_response(exc.status_code, code, message, headers=headers)

    async def on_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        details = _request_validation(list(exc.errors()))
        first = details["errors"][0] if details["errors"] else None
        where = ".".join(first["loc"]) if first else "request"
        message = f"invalid {where}: {first['msg']}" if first else "invalid request"
        return error_response(400, InvalidRequest.code, message, details)

    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(RequestValidationError, on_validation)
    kinds: tuple[type[Exception], ...] = (
        ConfhubError, *_STORAGE_ERRORS, UnicodeError, RecursionError,
        jsonpatch.JsonPatchException, jsonpointer.JsonPointerException, Exception,
    )
    for kind in kinds:
        app.add_exception_handler(kind, on_error)
