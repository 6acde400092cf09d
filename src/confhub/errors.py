"""The confhub error tree.

Every error a user can see is one of these. Each class knows the HTTP status the server answers
with, the stable ``code`` in the JSON error body, and the CLI exit code, so no interface needs its
own mapping table::

    ConfhubError                       500  internal        exit 1
    ├── InvalidRequest (ValueError)    400  invalid_request exit 2
    │   ├── InvalidName                400  invalid_name    exit 2
    │   ├── InvalidValue               400  invalid_value   exit 2
    │   │   └── MissingVariable        400  missing_variable exit 2
    │   ├── LayoutError                400  invalid_layout  exit 2
    │   └── PlanRefused                400  plan_refused    exit 3
    ├── Unauthorized                   401  unauthorized    exit 1
    ├── Forbidden                      403  forbidden       exit 1
    ├── NotFound (LookupError)         404  not_found       exit 3
    ├── AlreadyExists                  409  already_exists  exit 4
    │   └── TenantExists               409  tenant_exists   exit 4
    │   ├── RolloutInProgress          409  rollout_in_progress exit 4
    │   └── InvalidTransition          409  invalid_transition exit 4
    ├── Gone                           410  gone            exit 3
    ├── RequestTimeout                 408  request_timeout exit 1
    ├── VersionConflict                412  version_conflict exit 4
    ├── TooLarge                       413  too_large       exit 2
    ├── ValidationFailed               422  validation_failed exit 5
    ├── TooManyRequests                429  too_many_requests exit 1
    └── Unavailable                    503  unavailable     exit 1

Errors carry data (``details``) so callers never parse messages:
``VersionConflict.current_version``, ``Gone.compacted_revision``, ``ValidationFailed.report``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

__all__ = [
    "AlreadyExists",
    "ConfhubError",
    "Forbidden",
    "Gone",
    "InvalidName",
    "InvalidRequest",
    "InvalidTransition",
    "InvalidValue",
    "LayoutError",
    "MissingVariable",
    "NotFound",
    "PlanRefused",
    "RequestTimeout",
    "RolloutInProgress",
    "TenantExists",
    "TooLarge",
    "TooManyRequests",
    "Unauthorized",
    "Unavailable",
    "ValidationFailed",
    "VersionConflict",
    "error_from_code",
]


class ConfhubError(Exception):
    """Base of every confhub error; ``details`` is JSON-serialisable context."""

    http_status: ClassVar[int] = 500
    code: ClassVar[str] = "internal"
    exit_code: ClassVar[int] = 1

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = details

    def to_dict(self) -> dict[str, Any]:
        """The JSON error body of DESIGN.md: ``{"error": {"code", "message", "details"}}``."""
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}

    def __reduce__(self) -> tuple[Any, ...]:
        # Keeps errors picklable (multiprocessing, pytest-xdist) despite keyword-only details.
        return (_rebuild, (type(self), self.message, self.details))


def _rebuild(cls: type[ConfhubError], message: str, details: dict[str, Any]) -> ConfhubError:
    error = cls.__new__(cls)
    ConfhubError.__init__(error, message, **details)
    return error


class InvalidRequest(ConfhubError, ValueError):
    """The call itself is malformed: bad arguments, a bad export document, an impossible request."""

    http_status = 400
    code = "invalid_request"
    exit_code = 2


class InvalidName(InvalidRequest):
    """A tenant, env, namespace or key name breaks ``[A-Za-z0-9][A-Za-z0-9._-]{0,127}``."""

    code = "invalid_name"


class InvalidValue(InvalidRequest):
    """A value is not plain JSON (NaN, non-string object keys, sets, bytes, too deep...)."""

    code = "invalid_value"


class MissingVariable(InvalidValue):
    """Interpolation met ``${VAR}`` without a default and VAR is not set (``variable``,
    ``path``)."""

    code = "missing_variable"


class LayoutError(InvalidRequest):
    """A file of a config directory cannot be used: unparseable, outside the layout, a bad
    name, or a second file for one key. ``details`` name the ``file`` (and ``line``)."""

    code = "invalid_layout"


class PlanRefused(InvalidRequest):
    """A config-as-code plan is riskier than ``--max-risk`` allows; nothing was applied. Exit
    3, the code ``confhub plan`` uses for it."""

    code = "plan_refused"
    exit_code = 3


class Unauthorized(ConfhubError):
    """No credentials, or credentials that are not valid."""

    http_status = 401
    code = "unauthorized"


class Forbidden(ConfhubError):
    """Valid credentials whose role does not allow the operation."""

    http_status = 403
    code = "forbidden"


class NotFound(ConfhubError, LookupError):
    """The tenant, key, version or snapshot does not exist (or is deleted)."""

    http_status = 404
    code = "not_found"
    exit_code = 3


class AlreadyExists(ConfhubError):
    """Something that must be new already exists (a snapshot label, a tenant id)."""

    http_status = 409
    code = "already_exists"
    exit_code = 4


class TenantExists(AlreadyExists):
    """``create_tenant`` or ``clone_tenant`` named a tenant that exists (possibly soft-deleted)."""

    code = "tenant_exists"


class RolloutInProgress(AlreadyExists):
    """The key is under a running rollout: direct writes (and a second rollout) wait until it
    completes or is rolled back. ``details["rollout"]`` names it."""

    code = "rollout_in_progress"


class InvalidTransition(AlreadyExists):
    """The rollout's state does not allow this (advance a completed one, resume a running
    one, report on a finished one)."""

    code = "invalid_transition"


class Gone(ConfhubError):
    """The history asked for was removed by retention; re-list and continue from now."""

    http_status = 410
    code = "gone"
    exit_code = 3

    @property
    def compacted_revision(self) -> int | None:
        value = self.details.get("compacted_revision")
        return int(value) if value is not None else None


class VersionConflict(ConfhubError):
    """A compare-and-set precondition failed; nothing was written.

    ``current_version`` is the key's version now (0 when it does not exist), so the caller can
    re-read and retry.
    """

    http_status = 412
    code = "version_conflict"
    exit_code = 4

    @property
    def current_version(self) -> int:
        return int(self.details.get("current_version", 0))

    @property
    def expected_version(self) -> int | None:
        value = self.details.get("expected_version")
        return int(value) if value is not None else None


class TooLarge(ConfhubError):
    """A value or request exceeds a configured size limit."""

    http_status = 413
    code = "too_large"
    exit_code = 2


class ValidationFailed(ConfhubError):
    """A value broke its namespace's schema or an error-severity rule; nothing was written.

    ``details`` holds ``errors`` and ``warnings`` (lists of issue dicts: path, message, rule,
    severity, and namespace/key/env); ``report`` gives them back as a ValidationReport.
    """

    http_status = 422
    code = "validation_failed"
    exit_code = 5

    @property
    def report(self) -> ValidationReport:
        return ValidationReport.from_dict(self.details)

    @property
    def errors(self) -> list[ValidationIssue]:
        return list(self.report.errors)


class RequestTimeout(ConfhubError):
    """The client took too long to send its request (headers or body); the server stopped
    waiting so a stalled client cannot hold it."""

    http_status = 408
    code = "request_timeout"


class TooManyRequests(ConfhubError):
    """A per-token limit was hit (requests per second, open watch streams); retry after
    ``retry_after`` seconds."""

    http_status = 429
    code = "too_many_requests"

    @property
    def retry_after(self) -> int:
        return int(self.details.get("retry_after", 1))


class Unavailable(ConfhubError):
    """Storage cannot be reached or is busy; the operation may be retried."""

    http_status = 503
    code = "unavailable"


# The issues a ValidationFailed carries live here, not in model.py (which re-exports them), so
# this module imports nothing of confhub's and stays the bottom layer.


@dataclass(frozen=True, slots=True)
class ValidationIssue:
    """One reason a value is invalid (or a warning): where, what, and which rule said so.

    ``path`` is a JSON pointer into the value; ``rule`` names the schema keyword
    (``schema:/properties/x/maximum``) or the CEL rule (its ``name``, else its expression).
    ``namespace``/``key``/``env`` say which value, when a write touched several.
    """

    path: str
    message: str
    rule: str | None = None
    severity: Literal["error", "warning"] = "error"
    namespace: str | None = None
    key: str | None = None
    env: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path, "message": self.message, "rule": self.rule,
                               "severity": self.severity}
        for name in ("namespace", "key", "env"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ValidationIssue:
        return cls(path=str(data.get("path", "")), message=str(data.get("message", "")),
                   rule=data.get("rule"),
                   severity="warning" if data.get("severity") == "warning" else "error",
                   namespace=data.get("namespace"), key=data.get("key"), env=data.get("env"))


@dataclass(frozen=True, slots=True)
class ValidationReport:
    """The outcome of validating a value: valid unless it has errors; warnings never block."""

    errors: tuple[ValidationIssue, ...] = ()
    warnings: tuple[ValidationIssue, ...] = ()

    @property
    def valid(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        return {
            "valid": self.valid,
            "errors": [e.to_dict() for e in self.errors],
            "warnings": [w.to_dict() for w in self.warnings],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ValidationReport:
        return cls(errors=tuple(ValidationIssue.from_dict(e) for e in data.get("errors") or ()),
                   warnings=tuple(ValidationIssue.from_dict(w)
                                  for w in data.get("warnings") or ()))

    def __str__(self) -> str:
        lines = [f"error: {e.message}" for e in self.errors]
        lines += [f"warning: {w.message}" for w in self.warnings]
        return "\n".join(lines) if lines else "valid"


_BY_CODE: dict[str, type[ConfhubError]] = {
    cls.code: cls
    for cls in (
        ConfhubError,
        InvalidRequest,
        InvalidName,
        InvalidValue,
        MissingVariable,
        LayoutError,
        PlanRefused,
        Unauthorized,
        Forbidden,
        NotFound,
        AlreadyExists,
        TenantExists,
        RolloutInProgress,
        InvalidTransition,
        Gone,
        RequestTimeout,
        VersionConflict,
        TooLarge,
        ValidationFailed,
        TooManyRequests,
        Unavailable,
    )
}


def error_from_code(code: str, message: str, details: dict[str, Any] | None = None) -> ConfhubError:
    """Rebuild the right exception from a JSON error body (used by the remote client)."""
    cls = _BY_CODE.get(code, ConfhubError)
    return cls(message, **(details or {}))
