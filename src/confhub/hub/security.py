"""Tokens, the audit log and master-key rotation: the ``Security`` part of ``Hub``.

Tokens are stored hashed (only ``create_token`` ever sees one in clear) and authenticated
from memory (``hub/credentials.py``). Every change to configuration is audited inside its own
transaction (``Core.commit``); the other audited actions — tenant admin, token changes,
secret reveals and exports, failed logins — are appended here through ``Core.audit``.

May import: ``confhub.tokens``, ``confhub.audit``, ``confhub.model``, ``confhub.errors``,
``confhub.store.base`` and the hub's ``core``, ``rows``.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from .. import tokens as _tokens
from ..audit import AuditEvent
from ..errors import InvalidRequest, NotFound
from ..model import check_name, now_micros
from ..store.base import DataKeyRow, TokenRow
from ..tokens import Principal, TokenInfo
from .core import HubPart
from .rows import actor_name, check_limit, micros


class Security(HubPart):
    """Tokens, audit and keys of one hub (part of :class:`confhub.Hub`)."""

    def record_audit(self, action: str, tenant: str | None, *, target: str | None = None,
                     reason: str | None = None, details: Mapping[str, Any] | None = None,
                     actor: str | None = None) -> None:
        """Append an audit record (the server records failed logins with this)."""
        self._core.audit(action, tenant, target=target, reason=reason, details=details,
                         actor=actor)

    def audit(self, tenant: str | None = None, *, after: int = 0, limit: int = 1000,
              action: str | None = None, actor: str | None = None,
              target: str | None = None, since: datetime | None = None,
              until: datetime | None = None) -> builtins.list[AuditEvent]:
        """Audit records oldest first (of ``tenant``; None: every tenant), after record id
        ``after``; ``target`` matches a prefix (``models/`` for a namespace)."""
        if tenant is not None:
            check_name("tenant", tenant)
        if isinstance(after, bool) or not isinstance(after, int) or after < 0:
            raise InvalidRequest(f"after must be an integer >= 0, not {after!r}")
        rows = self._core.store.audit(
            tenant, after=after, limit=check_limit(limit), action=action, actor=actor,
            target_prefix=target,
            since_at=micros(since) if since is not None else None,
            until_at=micros(until) if until is not None else None)
        return [AuditEvent.from_row(row) for row in rows]

    def create_token(self, *, tenant: str | None = None, role: str = "viewer",
                     namespaces: Sequence[str] | str | None = None,
                     expires_in: int | str | None = None, name: str | None = None,
                     created_by: str | None = None) -> tuple[str, TokenInfo]:
        """Create a bearer token; returns ``(token, info)``. The token is not stored (only a
        hash): this is the one time it is shown. ``role="superadmin"`` takes no tenant;
        every other role needs one. ``expires_in`` is seconds or a duration like ``30d``."""
        _tokens.role_rank(role)
        if (role == "superadmin") != (tenant is None):
            raise InvalidRequest("a superadmin token has no tenant; every other role needs one",
                                 role=role)
        store = self._core.store
        if tenant is not None:
            check_name("tenant", tenant)
            info = store.tenant(tenant)
            if info is None or info.deleted_at is not None:
                raise NotFound(f"tenant {tenant!r} does not exist", tenant=tenant)
        limited = _tokens.check_namespaces(namespaces)
        if limited is not None and role == "superadmin":
            raise InvalidRequest("a superadmin token cannot be limited to namespaces")
        if isinstance(expires_in, str):
            expires_in = _tokens.parse_duration(expires_in)
        if expires_in is not None and (isinstance(expires_in, bool) or expires_in <= 0):
            raise InvalidRequest(f"expires_in must be a positive number of seconds, "
                                 f"not {expires_in!r}")
        if name is not None:
            check_name("token name", name)
        token, token_id, digest = _tokens.new_token()
        created = now_micros()
        row = TokenRow(
            id=token_id, name=name or f"token-{token_id}", hash=digest, tenant=tenant,
            role=role, namespaces=json.dumps(list(limited)) if limited else None,
            created_at=created,
            expires_at=created + int(expires_in) * 1_000_000 if expires_in else None,
            created_by=created_by or actor_name(),
        )
        store.add_token(row)
        self._core.tokens.reload()
        self._core.audit("token.create", tenant, target=row.name,
                         details={"token_id": token_id, "role": role,
                                  "namespaces": list(limited) if limited else None})
        return token, TokenInfo.from_row(row)

    def tokens(self, tenant: str | None = None, *, include_revoked: bool = False
               ) -> builtins.list[TokenInfo]:
        """Tokens (of one tenant, or all); never the tokens themselves."""
        rows = self._core.store.tokens()
        return [TokenInfo.from_row(r) for r in rows
                if (tenant is None or r.tenant == tenant)
                and (include_revoked or r.revoked_at is None)]

    def token_info(self, token_id: str) -> TokenInfo:
        row = self._core.store.token(token_id)
        if row is None:
            raise NotFound(f"token {token_id!r} does not exist", token_id=token_id)
        return TokenInfo.from_row(row)

    def revoke_token(self, token_id: str) -> TokenInfo:
        """Revoke a token at once in this process (other processes within about a second)."""
        row = self._core.store.revoke_token(token_id, now_micros())
        self._core.tokens.reload()
        self._core.audit("token.revoke", row.tenant, target=row.name,
                         details={"token_id": token_id})
        return TokenInfo.from_row(row)

    @property
    def auth_enabled(self) -> bool:
        """True once any token exists in this database (then every request needs one)."""
        return self._core.tokens.any

    def authenticate(self, token: str, *, io: bool = True) -> Principal | None:
        """The principal a bearer token stands for. Raises Unauthorized (malformed, unknown,
        expired, revoked). With ``io=False`` it never touches storage and returns None when
        it would need to (a token created by another process in the last second)."""
        return self._core.tokens.authenticate(token, io=io)

    @property
    def master_key_ids(self) -> tuple[str, ...]:
        """Ids of the configured master keys, primary first (empty: secrets are refused)."""
        ring = self._core.vault.ring
        return tuple(ring.ids) if ring is not None else ()

    def rotate_keys(self) -> dict[str, int]:
        """Re-wrap every data key under the primary master key (the first of the ring);
        every other key of the ring must still be configured so old wraps can be opened.
        Values are not rewritten; readers keep working throughout."""
        store, vault = self._core.store, self._core.vault
        rows = [(r.id, r.master_id, r.wrapped) for r in store.data_keys()]
        updated = vault.rewrap(rows)
        by_id = {r.id: r for r in store.data_keys()}
        changed = store.rewrap_data_keys([
            DataKeyRow(id=key_id, tenant=by_id[key_id].tenant, wrapped=wrapped,
                       master_id=master_id, created_at=by_id[key_id].created_at)
            for key_id, master_id, wrapped in updated])
        ring = vault.ring
        assert ring is not None
        self._core.audit("keys.rotate", None, details={"rewrapped": changed,
                                                       "primary": ring.primary_id})
        return {"data_keys": len(rows), "rewrapped": changed}
