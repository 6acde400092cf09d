"""The OpenAPI document, made to tell the truth about the server.

FastAPI's generated document is close but wrong in ways that break tools (schemathesis, client
generators): it promises a 422 ``HTTPValidationError`` where the server answers 400 with the
one error shape; it leaves bodies read by the routes themselves with ``$defs`` references that
point at the document root; and it knows nothing of the headers the middleware reads (bearer
tokens, ``If-Match``, ``X-Confhub-*``). :func:`document` starts from FastAPI's output and fixes
each, once, when ``/openapi.json`` is first asked for.
"""

from __future__ import annotations

from typing import Any

__all__ = ["document"]

_WRITE_HEADERS: list[dict[str, Any]] = [
    {"name": "If-Match", "in": "header", "required": False,
     "description": 'compare-and-set: write only if the current version is one of these '
                    'strong ETags (`"3"`, `"3", "4"`), or exists at all (`*`); a weak tag '
                    "(`W/\"3\"`) never matches. 412 otherwise.",
     "schema": {"type": "string", "maxLength": 1024,
                "pattern": r'^(\*|(W/)?"[0-9]{1,18}"(\s*,\s*(W/)?"[0-9]{1,18}")*)$'}},
    {"name": "If-None-Match", "in": "header", "required": False,
     "description": "`*`: write only if the key does not exist (412 otherwise)",
     "schema": {"type": "string", "enum": ["*"]}},
    {"name": "X-Confhub-Reason", "in": "header", "required": False,
     "description": "why (kept in history and audit; at most 1000 characters)",
     "schema": {"type": "string", "maxLength": 1000}},
    {"name": "X-Confhub-Author", "in": "header", "required": False,
     "description": "who, if not the token's name (at most 200 characters)",
     "schema": {"type": "string", "maxLength": 200}},
    {"name": "X-Confhub-Metadata", "in": "header", "required": False,
     "description": 'free-form audit metadata: a JSON object, e.g. `{"commit": "abc123"}` '
                    "(at most 16 KiB)",
     "schema": {"type": "string", "maxLength": 16384}},
]

_NDJSON_ROUTE = "/v1/tenants/{tenant}/audit"


def document(base: dict[str, Any]) -> dict[str, Any]:
    """Fix FastAPI's document ``base`` in place (see the module docstring) and return it."""
    components = base.setdefault("components", {})
    schemas: dict[str, Any] = components.setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    components["securitySchemes"] = {"bearer": {
        "type": "http", "scheme": "bearer",
        "description": "a confhub token (`confhub token create`); not needed on a server "
                       "without tokens"}}
    base["security"] = [{"bearer": []}, {}]  # {}: an open server (no token exists)
    for path, operations in base.get("paths", {}).items():
        for method, operation in operations.items():
            _fix_operation(path, method, operation, schemas)
    return base


def _fix_operation(path: str, method: str, operation: dict[str, Any],
                   schemas: dict[str, Any]) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    if _is_fastapi_422(responses.get("422")):
        del responses["422"]
    body = operation.get("requestBody")
    if body is not None:
        for media in body.get("content", {}).values():
            if "schema" in media:
                media["schema"] = _hoist_defs(media["schema"], schemas)
    writes_a_key = method in ("put", "patch", "delete") or path.endswith("/rollback")
    if writes_a_key and "{key}" in path:
        names = {p["name"].lower() for p in operation.get("parameters", [])}
        operation.setdefault("parameters", []).extend(
            dict(h) for h in _WRITE_HEADERS if h["name"].lower() not in names)
    if path.startswith("/v1/") and path != "/v1/tokens" or path.startswith("/config"):
        for status, text in (("401", "no token, or an unknown, expired or revoked one"),
                             ("403", "the token may not do this"),
                             ("429", "too many requests for this token; see Retry-After")):
            responses.setdefault(status, {
                "description": text,
                "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/ErrorOut"}}}})
    if path == _NDJSON_ROUTE and method == "get":
        ok = responses.setdefault("200", {"description": "the audit log"})
        ok.setdefault("content", {})["application/x-ndjson"] = {
            "schema": {"type": "string",
                       "description": "with ?format=jsonl: one AuditOut object per line"}}


def _is_fastapi_422(response: Any) -> bool:
    """FastAPI's own 422 (query validation), which the server answers as 400 instead; a
    route's documented 422 (``validation_failed``) uses ErrorOut and stays."""
    if not isinstance(response, dict):
        return False
    schema = response.get("content", {}).get("application/json", {}).get("schema", {})
    return bool(schema.get("$ref", "").endswith("/HTTPValidationError"))


def _hoist_defs(schema: dict[str, Any], schemas: dict[str, Any]) -> dict[str, Any]:
    """Move a pydantic schema's ``$defs`` into ``components/schemas`` and point its
    ``#/$defs/X`` references there (they would otherwise resolve against the document)."""
    defs = schema.pop("$defs", None)
    if not defs:
        return schema
    for name, definition in defs.items():
        schemas.setdefault(name, _rewrite_refs(definition))
    return _rewrite_refs(schema)  # type: ignore[no-any-return]


def _rewrite_refs(node: Any) -> Any:
    if isinstance(node, dict):
        return {key: (value.replace("#/$defs/", "#/components/schemas/")
                      if key == "$ref" and isinstance(value, str) else _rewrite_refs(value))
                for key, value in node.items()}
    if isinstance(node, list):
        return [_rewrite_refs(item) for item in node]
    return node
