"""The audit log's public record and who is acting.

The hub appends an audit record for every change it commits (in the same transaction), every
secret reveal, every token created or revoked and every tenant created, deleted or restored;
the server adds failed logins. Records never hold a value, so they never hold a secret.

*Who* acts is carried by a context variable, set by the server per request (token name, client
address, request id) and read by the hub; the embedded library leaves it unset and records the
write's ``author`` instead.
"""

from __future__ import annotations

import contextvars
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .model import utc_from_micros

__all__ = ["Actor", "AuditEvent", "acting_as", "current_actor", "reset_actor", "set_actor"]


@dataclass(frozen=True, slots=True)
class Actor:
    """Who a call is made for: ``name`` (a token's name), client address and request id."""

    name: str | None = None
    client: str | None = None
    request_id: str | None = None


_ACTOR: contextvars.ContextVar[Actor | None] = contextvars.ContextVar("confhub_actor",
                                                                      default=None)


def current_actor() -> Actor | None:
    return _ACTOR.get()


def set_actor(actor: Actor | None) -> contextvars.Token[Actor | None]:
    """Set the actor for the current context; undo with :func:`reset_actor` (the server's
    per-request path, cheaper than the context manager)."""
    return _ACTOR.set(actor)


def reset_actor(token: contextvars.Token[Actor | None]) -> None:
    _ACTOR.reset(token)


@contextmanager
def acting_as(actor: Actor) -> Iterator[None]:
    token = _ACTOR.set(actor)
    try:
        yield
    finally:
        _ACTOR.reset(token)


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One audit record. ``action`` is ``config.put``, ``config.delete``, ``secret.reveal``,
    ``token.create``, ``token.revoke``, ``tenant.create``, ``auth.failure``..."""

    id: int
    at: datetime
    action: str
    actor: str | None
    tenant: str | None
    target: str | None
    request_id: str | None
    client: str | None
    reason: str | None
    details: dict[str, Any]

    @classmethod
    def from_row(cls, row: Any) -> AuditEvent:
        return cls(id=row.id, at=utc_from_micros(row.at), action=row.action, actor=row.actor,
                   tenant=row.tenant, target=row.target, request_id=row.request_id,
                   client=row.client, reason=row.reason,
                   details=json.loads(row.details) if row.details else {})

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "at": self.at.isoformat(), "action": self.action,
                "actor": self.actor, "tenant": self.tenant, "target": self.target,
                "request_id": self.request_id, "client": self.client, "reason": self.reason,
                "details": self.details}
