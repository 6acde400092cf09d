"""confhub: versioned, multi-tenant configuration for Python teams.

>>> import confhub
>>> hub = confhub.open()              # embedded SQLite ./confhub.db
>>> cfg = hub.tenant("acme")
>>> cfg.set("models", "claude-opus", {"max_tokens": 8192}).version
1
"""

from .connect import open
from .errors import (
    AlreadyExists,
    ConfhubError,
    Forbidden,
    Gone,
    InvalidName,
    InvalidRequest,
    InvalidTransition,
    InvalidValue,
    NotFound,
    RolloutInProgress,
    TenantExists,
    TooLarge,
    TooManyRequests,
    Unauthorized,
    Unavailable,
    ValidationFailed,
    VersionConflict,
)
from .hub import Hub, Tenant, Transaction
from .model import (
    Change,
    Entry,
    FrozenDict,
    FrozenList,
    Resolved,
    RetentionPolicy,
    Schema,
    Snapshot,
    TenantInfo,
    ValidationIssue,
    ValidationReport,
    Version,
    thaw,
)
from .rollout import Rollout, Strategy

__version__ = "0.1.0"

__all__ = [
    "AlreadyExists",
    "Change",
    "ConfhubError",
    "Entry",
    "Forbidden",
    "FrozenDict",
    "FrozenList",
    "Gone",
    "Hub",
    "InvalidName",
    "InvalidRequest",
    "InvalidTransition",
    "InvalidValue",
    "NotFound",
    "Resolved",
    "RetentionPolicy",
    "Rollout",
    "RolloutInProgress",
    "Schema",
    "Snapshot",
    "Strategy",
    "Tenant",
    "TenantExists",
    "TenantInfo",
    "TooLarge",
    "TooManyRequests",
    "Transaction",
    "Unauthorized",
    "Unavailable",
    "ValidationFailed",
    "ValidationIssue",
    "ValidationReport",
    "Version",
    "VersionConflict",
    "__version__",
    "open",
    "thaw",
]
