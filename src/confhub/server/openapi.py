"""The OpenAPI document, made to tell the truth about the server.

FastAPI's generated document is close but wrong in ways that break tools (schemathesis, client
generators): it promises a 422 ``HTTPValidationError`` where the server answers 400 with the
one error shape; it leaves bodies read by the routes themselves with ``$defs`` references that
point at the document root; and it knows nothing of the headers the middleware reads (bearer
tokens, ``If-Match``, ``X-Confhub-*``). :func:`document` starts from FastAPI's output and fixes
each, once, when ``/openapi.json`` is first asked for.

It also states the real rules of the inputs. The routes' models stay loose on purpose: the hub
checks names, values and bodies itself and answers in the user's words (``invalid namespace
name 'a..b': names are …``), which a pydantic pattern error would not. So the models say less
than the server enforces, and a tool that trusts the document sends requests the server must
refuse. The rules below are written once, for the document only; nothing here changes what
the server accepts. Rules no JSON Schema can state (a CEL expression that compiles, a JSON
Patch that applies to the stored value, two headers that exclude each other) are listed, with
the server's answer, in ``tests/server/test_openapi_fuzz.py``.
"""

from __future__ import annotations

from typing import Any

from ..model import MAX_AUTHOR_CHARS, MAX_REASON_CHARS
from .routes.txn import MAX_OPS as MAX_TXN_OPS
from .schemas import JSON_PATCH_OPS, NAME_PATTERN

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
     # a JSON object, not any string: `content` tells tools to send it JSON-encoded
     "content": {"application/json": {"schema": {"type": "object", "maxProperties": 64}}}},
]

_NDJSON_ROUTE = "/v1/tenants/{tenant}/audit"

# model.check_name as an ECMA-262 regex without look-around: a letter or digit, then letters,
# digits, '_', '-' and single dots ('..' is refused: names become file paths). The 1-128
# length is maxLength, which keeps the regex simple enough for every generator.
NAME_REGEX = r"^[A-Za-z0-9](?:[A-Za-z0-9_-]|\.[A-Za-z0-9_-])*\.?$"
NAME: dict[str, Any] = {"type": "string", "minLength": 1, "maxLength": 128,
                        "pattern": NAME_REGEX}
# cohort.check_client_id, less '/': a path parameter is one segment
CLIENT_ID: dict[str, Any] = {"type": "string", "minLength": 1, "maxLength": 128,
                             "pattern": r"^[A-Za-z0-9][A-Za-z0-9._:@-]*$"}
NAME_PARAMETERS = frozenset({"tenant", "namespace", "key", "env"})

# A txn op: put and patch carry a value (null is a value, absence is refused), rollback
# names its target version, and a JSON Patch is a list of RFC 6902 operations (JSON_PATCH_OPS).
TXN_OP_RULES: list[dict[str, Any]] = [
    {"if": {"properties": {"op": {"enum": ["put", "patch"]}}},
     "then": {"required": ["value"]}},
    {"if": {"properties": {"op": {"const": "patch"}, "json_patch": {"const": True}},
            "required": ["json_patch"]},
     "then": {"properties": {"value": JSON_PATCH_OPS}}},
    {"if": {"properties": {"op": {"const": "rollback"}}},
     "then": {"required": ["to_version"],
              "properties": {"to_version": {"type": "integer", "minimum": 1}}}},
]

# One CEL rule of a namespace schema (validation._parse_rule).
SCHEMA_RULE: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["expr"],
    "properties": {
        "expr": {"type": "string", "minLength": 1, "maxLength": 4096, "pattern": r"\S",
                 "description": "a CEL expression over `self` (the value)"},
        "message": {"type": ["string", "null"]},
        "severity": {"enum": ["error", "warning"]},
        "name": {"type": ["string", "null"]},
        "path": {"type": ["string", "null"]},
    },
}

_TIMESTAMP = {"type": "string", "format": "date-time",
              "description": "RFC 3339 with a time zone"}
_EXPORT_ENTRY: dict[str, Any] = {
    "type": "object",
    "required": ["namespace", "key", "value"],
    "properties": {"env": NAME, "namespace": NAME, "key": NAME, "value": {},
                   "secret": {"type": "boolean"}},
}
_EXPORT_VERSION: dict[str, Any] = {
    "type": "object",
    "required": ["namespace", "key", "version", "op", "created_at"],
    "properties": {
        "env": NAME, "namespace": NAME, "key": NAME,
        "version": {"type": "integer", "minimum": 1},
        "revision": {"type": ["integer", "null"], "minimum": 1},
        "op": {"enum": ["put", "patch", "delete", "rollback", "restore", "import"]},
        "deleted": {"type": "boolean"},
        "value": {},
        "created_at": _TIMESTAMP,
        "author": {"type": ["string", "null"]},
        "reason": {"type": ["string", "null"]},
        "metadata": {"type": ["object", "null"]},
        "rollback_of": {"type": ["integer", "null"]},
        "request_id": {"type": ["string", "null"]},
        "secret": {"type": "boolean"},
    },
}
IMPORT_BODY: dict[str, Any] = {
    "type": "object",
    "description": "an export document (`GET …/export`); with `history`, each key's versions "
                   "run 1..N and its last version is its entry",
    "required": ["format", "format_version", "entries"],
    "properties": {
        "format": {"const": "confhub-export"},
        "format_version": {"const": 1},
        "entries": {"type": "array", "items": _EXPORT_ENTRY},
        "history": {"type": ["array", "null"], "items": _EXPORT_VERSION},
        "snapshots": {"type": ["array", "null"], "items": {
            "type": "object",
            "required": ["label", "revision", "created_at"],
            "properties": {"label": NAME, "revision": {"type": "integer", "minimum": 0},
                           "created_at": _TIMESTAMP}}},
    },
}


def state_names(node: Any, loose_pattern: str) -> None:
    """Replace, in place, every schema that checks a name with ``loose_pattern`` (the pydantic
    models' pattern, which lets ``..`` through) by :data:`NAME`."""
    if isinstance(node, dict):
        if node.get("pattern") == loose_pattern:
            node.update(NAME)
        for value in node.values():
            state_names(value, loose_pattern)
    elif isinstance(node, list):
        for item in node:
            state_names(item, loose_pattern)


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
            _state_rules(path, method, operation)
    _state_models(schemas)
    state_names(base, NAME_PATTERN)
    return base


def _state_rules(path: str, method: str, operation: dict[str, Any]) -> None:
    """Parameters and hand-written bodies: the rules their declarations leave out."""
    for parameter in operation.get("parameters", []):
        if parameter.get("in") == "path" and parameter["name"] in NAME_PARAMETERS:
            parameter["schema"] = dict(NAME)
        elif parameter.get("in") == "path" and parameter["name"] == "client_id":
            parameter["schema"] = dict(CLIENT_ID)
        elif parameter.get("in") == "query" and parameter["name"] in NAME_PARAMETERS:
            parameter["schema"] = {"anyOf": [dict(NAME), {"type": "null"}]}
    content = operation.get("requestBody", {}).get("content", {})
    if path == "/v1/tenants/{tenant}/import":
        content["application/json"]["schema"] = IMPORT_BODY
    if path == "/v1/tenants/{tenant}/schemas/{namespace}" and method == "put":
        props = content["application/json"]["schema"]["properties"]
        props["schema"] = {"type": ["object", "boolean"],
                           "description": "JSON Schema (draft 2020-12)"}
        props["rules"] = {"anyOf": [{"type": "array", "maxItems": 100, "items": SCHEMA_RULE},
                                    {"type": "null"}],
                          "description": props["rules"].get("description", "")}
        props["key_pattern"] = {"anyOf": [{"type": "string", "minLength": 1,
                                           "maxLength": 256}, {"type": "null"}],
                                "description": "glob of the keys it governs"}
    if path == "/v1/tenants/{tenant}/rollouts" and method == "post":
        _state_rollout(content["application/json"]["schema"])
    if path == "/v1/tenants" and method == "post":
        content["application/json"]["schema"]["properties"]["overrides"] = {
            "anyOf": [{"type": "object", "propertyNames": NAME, "additionalProperties": {
                "type": "object", "propertyNames": NAME}}, {"type": "null"}],
            "description": "{namespace: {key: value}}, merge-patched onto the base layer"}
    if path == "/v1/tenants/{tenant}/txn":
        content["application/json"]["schema"]["properties"]["ops"].update(
            minItems=1, maxItems=MAX_TXN_OPS)
    if path == "/v1/tenants/{tenant}/restore-revision":
        content["application/json"]["schema"]["oneOf"] = [
            {"required": ["revision"], "properties": {"revision": {"type": "integer"}}},
            {"required": ["snapshot"], "properties": {"snapshot": {"type": "string"}}}]
    for media in content.values():
        _state_limits(media.get("schema"))


def _state_limits(node: Any) -> None:
    """``reason`` and ``author`` in any body: the limits the hub holds every write to."""
    if isinstance(node, dict):
        props = node.get("properties")
        if isinstance(props, dict):
            for name, limit in (("reason", MAX_REASON_CHARS), ("author", MAX_AUTHOR_CHARS)):
                if isinstance(props.get(name), dict):
                    props[name] = {"anyOf": [{"type": "string", "maxLength": limit},
                                             {"type": "null"}]}
        for value in node.values():
            _state_limits(value)
    elif isinstance(node, list):
        for item in node:
            _state_limits(item)


_PERCENT = r"^(100(\.0{1,6})?|[0-9]{1,2}(\.[0-9]{1,6})?)%$"
_SHARE = {"anyOf": [{"type": "number", "minimum": 0, "maximum": 1},
                    {"type": "string", "pattern": _PERCENT}],
          "description": "a share: 0-1, or a percentage like `5%`"}
_DURATION = {"anyOf": [{"type": "number", "minimum": 0, "maximum": 7 * 86400},
                       {"type": "string", "pattern": r"^[0-9]{1,6}(\.[0-9]{1,3})?(ms|s|m|h)?$"}],
             "description": "seconds, or `500ms`, `30s`, `5m`, `1h` (at most 7 days)"}
_STEP = {"type": "number", "exclusiveMinimum": 0, "maximum": 100, "multipleOf": 0.01}


def _state_rollout(schema: dict[str, Any]) -> None:
    """A rollout's strategy (rollout.Strategy.build) and gate (hub/staging.py)."""
    props = schema["properties"]
    props["min_reports"] = {"type": "integer", "minimum": 1, "default": 1}
    props["max_failure"] = dict(_SHARE)
    props["min_ack"] = dict(_SHARE)
    props["steps"] = {"anyOf": [{"type": "array", "minItems": 1, "maxItems": 100,
                                 "items": _STEP}, {"type": "null"}],
                      "description": "percentages that grow and end at 100"}
    props["bake"] = {"anyOf": [_DURATION, {"type": "array", "items": _DURATION},
                               {"type": "null"}],
                     "description": "per step (one for all, or one per step)"}
    props["final_bake"] = {"anyOf": [_DURATION, {"type": "null"}]}
    props["clients"] = {"anyOf": [{"type": "array", "items": {
        **CLIENT_ID, "pattern": r"^[A-Za-z0-9][A-Za-z0-9._:@/-]*$"}}, {"type": "null"}]}
    props["selector"] = {"anyOf": [{"type": "string", "minLength": 1, "pattern": r"\S"},
                                   {"type": "null"}],
                         "description": "label selector, e.g. `region in (eu,us),tier!=critical`"}
    props["gate_prometheus"] = {"anyOf": [{"type": "string", "pattern": "^https?://."},
                                          {"type": "null"}],
                                "description": "Prometheus base URL (with gate_query)"}
    props["gate_query"] = {"anyOf": [{"type": "string", "minLength": 1}, {"type": "null"}],
                           "description": "PromQL; any result rolls back (with gate_prometheus)"}
    schema["allOf"] = [
        {"not": {"required": ["strategy", "steps"]}},  # a preset or steps, not both
        {"anyOf": [  # the gate needs both its URL and its query, or neither
            {"required": ["gate_prometheus", "gate_query"],
             "properties": {"gate_prometheus": {"type": "string"},
                            "gate_query": {"type": "string"}}},
            {"properties": {"gate_prometheus": {"type": "null"},
                            "gate_query": {"type": "null"}}}]}]


def _state_models(schemas: dict[str, Any]) -> None:
    """Request models the routes check by hand (a txn's ops, restore's one target)."""
    if "TxnOp" in schemas:
        schemas["TxnOp"]["allOf"] = TXN_OP_RULES
    if "PolicyIn" in schemas:  # hub/retention.py
        limit = {"anyOf": [{"type": "integer", "minimum": 1, "maximum": 2**40},
                           {"type": "null"}]}
        schemas["PolicyIn"]["properties"] = {"keep_last": limit, "keep_for_seconds": limit}
    if "RolloutOp" in schemas:
        op = schemas["RolloutOp"]
        for name in ("namespace", "key"):
            op["properties"][name] = dict(NAME)
        op["properties"]["env"] = {"anyOf": [dict(NAME), {"type": "null"}]}
        op["allOf"] = TXN_OP_RULES[:1]


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
