"""JSON answers of the server turned back into confhub's values and exceptions."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import httpx

from ..errors import ConfhubError, InvalidRequest, NotFound, Unavailable, error_from_code
from ..model import (
    Change,
    Entry,
    Resolved,
    Schema,
    Snapshot,
    TenantInfo,
    ValidationIssue,
    ValidationReport,
    Version,
    freeze,
)

__all__ = [
    "RETRY_STATUSES",
    "change_from_json",
    "entry_from_json",
    "error_from_response",
    "report_from_json",
    "resolved_from_json",
    "schema_from_json",
    "snapshot_from_json",
    "tenant_from_json",
    "version_from_json",
]

RETRY_STATUSES = frozenset({502, 503, 504})


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def entry_from_json(d: Mapping[str, Any]) -> Entry:
    return Entry(
        tenant=d["tenant"], env=d["env"], namespace=d["namespace"], key=d["key"],
        value=freeze(d["value"]), version=d["version"], revision=d["revision"],
        created_at=_time(d["created_at"]), updated_at=_time(d["updated_at"]),
        updated_by=d.get("updated_by"), secret=bool(d.get("secret", False)),
        warnings=tuple(ValidationIssue.from_dict(w) for w in d.get("warnings") or ()),
        rollout=d.get("rollout"),
    )


def report_from_json(d: Mapping[str, Any]) -> ValidationReport:
    return ValidationReport.from_dict(d)


def schema_from_json(d: Mapping[str, Any]) -> Schema:
    return Schema(scope=d["scope"], namespace=d["namespace"], version=d["version"],
                  schema=freeze(d.get("schema")), rules=tuple(freeze(r) for r in d["rules"]),
                  key_pattern=d.get("key_pattern"), created_at=_time(d["created_at"]),
                  author=d.get("author"), reason=d.get("reason"),
                  deleted=bool(d.get("deleted")), rollback_of=d.get("rollback_of"),
                  annotations=freeze(d.get("annotations") or {}))


def _version_fields(d: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "tenant": d["tenant"], "env": d["env"], "namespace": d["namespace"], "key": d["key"],
        "version": d["version"], "revision": d["revision"], "op": d["op"],
        "value": freeze(d.get("value")), "deleted": bool(d["deleted"]),
        "created_at": _time(d["created_at"]), "author": d.get("author"),
        "reason": d.get("reason"), "metadata": freeze(d.get("metadata") or {}),
        "rollback_of": d.get("rollback_of"), "request_id": d.get("request_id"),
        "secret": bool(d.get("secret", False)),
    }


def version_from_json(d: Mapping[str, Any]) -> Version:
    return Version(**_version_fields(d))


def change_from_json(d: Mapping[str, Any]) -> Change:
    return Change(**_version_fields(d), restart_required=bool(d.get("restart_required")))


def resolved_from_json(d: Mapping[str, Any]) -> Resolved:
    return Resolved(tenant=d["tenant"], env=d["env"], namespace=d["namespace"], key=d["key"],
                    value=freeze(d["value"]), sources=dict(d["sources"]),
                    versions=dict(d["versions"]), rollouts=tuple(d.get("rollouts") or ()))


def snapshot_from_json(d: Mapping[str, Any]) -> Snapshot:
    return Snapshot(tenant=d["tenant"], label=d["label"], revision=d["revision"],
                    created_at=_time(d["created_at"]))


def tenant_from_json(d: Mapping[str, Any]) -> TenantInfo:
    deleted_at = d.get("deleted_at")
    return TenantInfo(id=d["id"], revision=d["revision"], created_at=_time(d["created_at"]),
                      deleted_at=_time(deleted_at) if deleted_at else None,
                      compacted_revision=int(d.get("compacted_revision", 0)))


def error_from_response(response: httpx.Response) -> ConfhubError:
    """The exception the embedded hub would have raised, rebuilt from the error body."""
    try:
        body = response.json()
    except ValueError:
        body = None
    return error_from_body(body, response.status_code, response.text)


def error_from_body(body: Any, status: int, text: str = "") -> ConfhubError:
    """The exception for an error body ``{"error": {"code", "message", "details"}}`` that came
    with HTTP ``status`` (which also decides the class of a code only the server knows)."""
    try:
        info = body["error"]
        code, message = str(info["code"]), str(info["message"])
        details = dict(info.get("details") or {})
    except Exception:
        code, message, details = "", f"HTTP {status}: {(text or str(body))[:200]}", {}
    try:
        error = error_from_code(code, message, details)
    except TypeError:  # a details key clashing with the constructor's own parameters
        error = error_from_code(code, message)
        error.details = details
    if type(error) is ConfhubError:  # codes only the server has (415, 405, 501...)
        if status in RETRY_STATUSES:
            error = Unavailable(message, **{"status": status})
        elif 400 <= status < 500 and status != 404:
            error = InvalidRequest(message, code=code, status=status)
        elif status == 404:
            error = NotFound(message, code=code)
        error.details.update(details)
    return error
