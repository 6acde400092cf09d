"""Bearer tokens, roles and the principal a request acts as.

A token reads ``chub_<id>_<secret>``: ``id`` (12 hex digits) names the stored record and is
safe to show; ``secret`` is 32 random bytes (base64url) of which only a SHA-256 is stored. A
presented token is checked by looking its id up and comparing the SHA-256 of what was sent with
the stored one using :func:`hmac.compare_digest`, so the time taken does not depend on how many
leading characters were right. A fast hash is the right one here: the secret has 256 bits of
entropy, so there is nothing for a slow password hash to protect.

Roles, per tenant: ``viewer`` < ``editor`` < ``admin``; ``superadmin`` is global. A token may be
limited to some namespaces of its tenant.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets as _random
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .errors import InvalidRequest
from .model import check_name, utc_from_micros

__all__ = [
    "ANONYMOUS", "ROLES", "Principal", "TokenInfo", "hash_secret", "new_token", "parse_duration",
    "parse_token", "role_rank", "token_matches",
]

ROLES = ("viewer", "editor", "admin", "superadmin")
_RANK = {role: rank for rank, role in enumerate(ROLES)}
PREFIX = "chub_"
_TOKEN = re.compile(r"^chub_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
_DURATION = re.compile(r"^(\d{1,6})([smhdw])$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def role_rank(role: str) -> int:
    try:
        return _RANK[role]
    except KeyError:
        raise InvalidRequest(f"unknown role {role!r}; use one of {', '.join(ROLES)}",
                             role=role) from None


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def new_token() -> tuple[str, str, str]:
    """A fresh token: ``(token, id, hash)``; only the id and the hash are ever stored."""
    token_id = _random.token_hex(6)
    secret = base64.urlsafe_b64encode(_random.token_bytes(32)).decode("ascii").rstrip("=")
    return f"{PREFIX}{token_id}_{secret}", token_id, hash_secret(secret)


def parse_token(token: str) -> tuple[str, str] | None:
    """``(id, secret)`` of a well-formed token, None for anything else."""
    match = _TOKEN.match(token)
    return (match.group(1), match.group(2)) if match else None


def token_matches(secret: str, stored_hash: str) -> bool:
    """Constant-time comparison of a presented secret with a stored hash."""
    return hmac.compare_digest(hash_secret(secret).encode("ascii"), stored_hash.encode("ascii"))


def parse_duration(text: str) -> int:
    """``30d``, ``12h``, ``90m``, ``45s``, ``2w`` -> seconds."""
    match = _DURATION.match(text.strip())
    if not match or int(match.group(1)) == 0:
        raise InvalidRequest(f"bad duration {text!r}: use a number and a unit, like 30d, 12h, "
                             "90m, 45s or 2w")
    return int(match.group(1)) * _SECONDS[match.group(2)]


def check_namespaces(namespaces: Any) -> tuple[str, ...] | None:
    if namespaces is None:
        return None
    if isinstance(namespaces, str):
        namespaces = [n.strip() for n in namespaces.split(",") if n.strip()]
    if not isinstance(namespaces, list | tuple) or not namespaces:
        raise InvalidRequest("namespaces must be a non-empty list of namespace names")
    return tuple(sorted({check_name("namespace", n) for n in namespaces}))


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """What can be shown about a token: everything but the token itself."""

    id: str
    name: str
    tenant: str | None
    role: str
    namespaces: tuple[str, ...] | None
    created_at: datetime
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    created_by: str | None = None

    @classmethod
    def from_row(cls, row: Any) -> TokenInfo:
        return cls(
            id=row.id, name=row.name, tenant=row.tenant, role=row.role,
            namespaces=tuple(json.loads(row.namespaces)) if row.namespaces else None,
            created_at=utc_from_micros(row.created_at),
            expires_at=utc_from_micros(row.expires_at) if row.expires_at else None,
            revoked_at=utc_from_micros(row.revoked_at) if row.revoked_at else None,
            created_by=row.created_by,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "name": self.name, "tenant": self.tenant, "role": self.role,
            "namespaces": list(self.namespaces) if self.namespaces is not None else None,
            "created_at": self.created_at.isoformat(),
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
            "created_by": self.created_by,
        }


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request acts as: a token's grants, or ``ANONYMOUS`` on an open server."""

    name: str
    role: str
    tenant: str | None = None  # None: every tenant (superadmin / open server)
    namespaces: tuple[str, ...] | None = None
    token_id: str | None = None

    @property
    def superadmin(self) -> bool:
        return self.role == "superadmin"

    def sees_tenant(self, tenant: str) -> bool:
        return self.superadmin or self.tenant == tenant

    def has_role(self, tenant: str, role: str) -> bool:
        return self.sees_tenant(tenant) and _RANK[self.role] >= _RANK[role]

    def sees_namespace(self, namespace: str | None) -> bool:
        """``namespace`` None means "the whole tenant", which a limited token may not see."""
        if self.namespaces is None or self.superadmin:
            return True
        return namespace is not None and namespace in self.namespaces


ANONYMOUS = Principal(name="anonymous", role="superadmin")
