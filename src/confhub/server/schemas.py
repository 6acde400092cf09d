"""Pydantic shapes of request and response bodies, for the OpenAPI document only.

Routes answer with pre-encoded ``Response`` objects (the domain values already know their JSON
form via ``to_dict()``), so these models never sit on the request path; they exist so that
``/openapi.json`` describes every answer accurately and schemathesis can check us against it.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..model import MAX_AUTHOR_CHARS, MAX_REASON_CHARS

# The body of PATCH with application/json-patch+json, and of a txn op's JSON Patch.
_POINTER = r"^(/([^~/]|~[01])*)*$"
JSON_PATCH_OPS: dict[str, Any] = {
    "type": "array",
    "description": "RFC 6902 operations",
    "items": {
        "type": "object",
        "required": ["op", "path"],
        "properties": {
            "op": {"enum": ["add", "remove", "replace", "move", "copy", "test"]},
            "path": {"type": "string", "pattern": _POINTER},
            "from": {"type": "string", "pattern": _POINTER},
        },
        "allOf": [
            {"if": {"properties": {"op": {"enum": ["add", "replace", "test"]}}},
             "then": {"required": ["value"]}},
            {"if": {"properties": {"op": {"enum": ["move", "copy"]}}},
             "then": {"required": ["from"]}},
        ],
    },
}

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
MAX_INT = 2**62  # larger query integers would overflow SQLite's 64-bit integers


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class ErrorInfo(BaseModel):
    code: str = Field(examples=["version_conflict"])
    message: str
    details: dict[str, Any] = Field(default_factory=dict)


class ErrorOut(BaseModel):
    """Every error answer: ``{"error": {"code", "message", "details"}}``."""

    error: ErrorInfo


class EntryOut(BaseModel):
    tenant: str
    env: str
    namespace: str
    key: str
    value: Any
    version: int
    revision: int
    created_at: str
    updated_at: str
    updated_by: str | None
    secret: bool
    warnings: list[dict[str, Any]] | None = Field(
        default=None, description="warning-severity rules the written value broke (writes)")


class VersionOut(BaseModel):
    tenant: str
    env: str
    namespace: str
    key: str
    version: int
    revision: int
    op: str
    value: Any
    deleted: bool
    created_at: str
    author: str | None
    reason: str | None
    metadata: dict[str, Any]
    rollback_of: int | None
    request_id: str | None
    secret: bool


class ResolvedOut(BaseModel):
    tenant: str
    env: str
    namespace: str
    key: str
    value: Any
    sources: dict[str, str]
    versions: dict[str, int]


class EntryPage(BaseModel):
    items: list[EntryOut]
    next_cursor: str | None


class ResolvedPage(BaseModel):
    items: list[ResolvedOut]
    next_cursor: str | None


class VersionPage(BaseModel):
    items: list[VersionOut]


class NamespaceCount(BaseModel):
    namespace: str
    keys: int


class NamespacePage(BaseModel):
    items: list[NamespaceCount]


class ChangePage(BaseModel):
    items: list[VersionOut]
    revision: int = Field(description="the last revision included (``since`` if none)")


class DiffOut(BaseModel):
    from_version: int
    to_version: int
    patch: list[dict[str, Any]]


class RollbackIn(BaseModel):
    to_version: int = Field(ge=1, le=MAX_INT)
    reason: str | None = None
    author: str | None = None


Name = Annotated[str, Field(pattern=NAME_PATTERN)]


class TxnOp(BaseModel):
    op: Literal["put", "patch", "delete", "rollback"]
    namespace: Name
    key: Name
    env: Name | None = None
    value: Any = Field(default=None, description="put: the value; patch: the patch (both "
                       "required; null is a value)")
    expected_version: int | None = Field(default=None, ge=0, le=MAX_INT)
    json_patch: bool = Field(default=False, description="patch: RFC 6902 instead of RFC 7386")
    to_version: int | None = Field(default=None, ge=1, le=MAX_INT, description="rollback")


class TxnIn(BaseModel):
    ops: list[TxnOp]
    reason: Annotated[str, Field(max_length=MAX_REASON_CHARS)] | None = None
    author: Annotated[str, Field(max_length=MAX_AUTHOR_CHARS)] | None = None
    metadata: dict[str, Any] | None = None
    dry_run: bool = False


class TxnOut(BaseModel):
    revision: int | None = Field(description="the commit's revision; null if nothing written")
    dry_run: bool
    changes: list[VersionOut]
    warnings: list[dict[str, Any]] = Field(
        default_factory=list, description="warning-severity rules the values broke")


class TenantOut(BaseModel):
    id: str
    revision: int
    created_at: str
    deleted_at: str | None
    deleted: bool


class TenantDeletedOut(BaseModel):
    id: str
    deleted: Literal[True]
    hard: bool


class TenantPage(BaseModel):
    items: list[TenantOut]


class TenantIn(BaseModel):
    id: Name
    template: Name | None = None
    overrides: dict[str, Any] | None = None


class CloneIn(BaseModel):
    target: Name


class SnapshotOut(BaseModel):
    tenant: str
    label: str
    revision: int
    created_at: str


class SnapshotPage(BaseModel):
    items: list[SnapshotOut]


class SnapshotIn(BaseModel):
    label: Name


class RestoreIn(BaseModel):
    revision: int | None = Field(default=None, ge=0, le=MAX_INT)
    snapshot: Name | None = None
    namespace: Name | None = None
    reason: str | None = None
    author: str | None = None


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` entries documenting error answers with the one error shape."""
    text = {
        400: "bad input (names, JSON, query parameters)",
        404: "tenant, key, version or snapshot not found",
        409: "already exists",
        410: "history removed by retention",
        412: "version precondition (If-Match / expected_version) failed",
        413: "body or value too large",
        415: "unsupported Content-Type",
        422: "validation failed",
        503: "storage unavailable; retry later",
    }
    return {s: {"model": ErrorOut, "description": text.get(s, "error")}
            for s in sorted({400, 503, *statuses})}


class IssueOut(BaseModel):
    path: str
    message: str
    rule: str | None
    severity: Literal["error", "warning"]
    namespace: str | None = None
    key: str | None = None
    env: str | None = None


class ValidationOut(BaseModel):
    valid: bool
    errors: list[IssueOut]
    warnings: list[IssueOut]


class ValidateIn(BaseModel):
    namespace: Name
    key: Name
    value: Any = Field(description="the value to check (any JSON value)")
    env: Name | None = None


class SchemaIn(BaseModel):
    schema_: Any = Field(alias="schema", description="JSON Schema (draft 2020-12)")
    rules: list[dict[str, Any]] | None = Field(
        default=None, description="CEL rules: {expr, message, severity, name?, path?}")
    key_pattern: str | None = Field(default=None, description="glob of the keys it governs")
    reason: str | None = None
    author: str | None = None


class SchemaOut(BaseModel):
    scope: str = Field(description='the tenant, or "*" for every tenant')
    namespace: str
    version: int
    schema_: Any = Field(alias="schema")
    rules: list[dict[str, Any]]
    key_pattern: str | None
    created_at: str
    author: str | None
    reason: str | None
    deleted: bool
    rollback_of: int | None
    annotations: dict[str, Any]
    all_tenants: bool
    dry_run: bool | None = None


class SchemaPage(BaseModel):
    items: list[SchemaOut]


class AnnotationsOut(BaseModel):
    secret: list[str]
    restart_required: list[str]
