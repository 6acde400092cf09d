"""Running plans over HTTP: client settings, the retry rule, decoding answers."""

from __future__ import annotations

from typing import Any, TypeVar

import httpx

from ..errors import InvalidRequest, Unavailable
from .plans import JSON, _Call
from .wire import RETRY_STATUSES, error_from_response

T = TypeVar("T")


def _client_args(url: str, token: str | None, timeout: float) -> dict[str, Any]:
    if not url.startswith(("http://", "https://")):
        raise InvalidRequest(f"a remote confhub URL starts with http:// or https://, not {url!r}")
    headers = {"accept": JSON, "user-agent": "confhub-remote"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    return {"base_url": url.rstrip("/"), "headers": headers,
            "timeout": httpx.Timeout(timeout, connect=min(timeout, 5.0))}


_CONNECT_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def _should_retry(call: _Call[Any], exc: Exception | None, status: int | None) -> bool:
    if exc is not None:
        return isinstance(exc, _CONNECT_ERRORS) or call.idempotent
    return call.idempotent and status in RETRY_STATUSES


def _transport_error(call: _Call[Any], exc: Exception, url: str) -> Unavailable:
    if isinstance(exc, _CONNECT_ERRORS):
        return Unavailable(f"cannot reach confhub at {url}: {exc}", url=url)
    maybe = "" if call.idempotent else "; the write may or may not have been applied"
    return Unavailable(f"{call.method} {call.path} failed: {type(exc).__name__}: {exc}{maybe}",
                       url=url)


def _decode(call: _Call[T], response: httpx.Response) -> T:
    if response.status_code >= 400:
        raise error_from_response(response)
    if response.status_code == 204 or not response.content:
        return call.decode(None)
    try:
        data = response.json()
    except ValueError:
        raise Unavailable(f"{call.method} {call.path}: the server answered invalid JSON") \
            from None
    return call.decode(data)


def _health(response: httpx.Response, url: str) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        data = {}
    if response.status_code == 200 and isinstance(data, dict):
        return {**data, "url": url}
    error = data.get("error", {}) if isinstance(data, dict) else {}
    return {"ok": False, "backend": "http", "url": url,
            "error": error.get("message", f"HTTP {response.status_code}")}
