"""What the hub keeps in memory about credentials: bearer tokens and the vault's data keys.

Owns: ``TokenCache`` (authenticating a request is a dict lookup, a SHA-256 and a constant-time
compare, never a query) and ``StoreKeys`` (the vault's window onto the store's wrapped data
keys). The token *operations* (create, revoke, list) are in ``hub/security.py``.

May import: ``confhub.tokens``, ``confhub.model``, ``confhub.errors`` and ``confhub.store.base``.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time

from .. import tokens as _tokens
from ..errors import ConfhubError, Unauthorized
from ..model import now_micros
from ..store.base import DataKeyRow, Store, TokenRow
from ..tokens import Principal


class StoreKeys:
    """The vault's view of the store's data keys."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def get(self, key_id: str) -> tuple[str, str] | None:
        row = self._store.data_key(key_id)
        return (row.master_id, row.wrapped) if row else None

    def latest(self, tenant: str) -> tuple[str, str, str] | None:
        rows = self._store.data_keys(tenant)
        return (rows[-1].id, rows[-1].master_id, rows[-1].wrapped) if rows else None

    def add(self, key_id: str, tenant: str, master_id: str, wrapped: str) -> None:
        self._store.add_data_key(DataKeyRow(id=key_id, tenant=tenant, wrapped=wrapped,
                                            master_id=master_id, created_at=now_micros()))


class TokenCache:
    """Tokens by id, in memory: authenticating is a dict lookup, a SHA-256 and a constant-time
    compare. Reloaded by the hub's follower about every second (so a token created or revoked
    by another process counts within ~1 s) and at once after a change made through this hub."""

    RELOAD_EVERY = 1.0
    MISS_RELOAD_EVERY = 0.1

    def __init__(self, store: Store) -> None:
        self._store = store
        self._by_id: dict[str, TokenRow] = {}
        self._loaded_at = 0.0
        self._miss_at = 0.0
        self._lock = threading.Lock()
        self.any = False
        with contextlib.suppress(ConfhubError):
            self.reload()

    def reload(self) -> None:
        rows = self._store.tokens()
        with self._lock:
            self._by_id = {row.id: row for row in rows}
            self.any = bool(rows)
            self._loaded_at = time.monotonic()

    def maybe_reload(self) -> None:
        if time.monotonic() - self._loaded_at >= self.RELOAD_EVERY:
            self.reload()

    def authenticate(self, token: str, *, io: bool) -> Principal | None:
        parsed = _tokens.parse_token(token) if isinstance(token, str) else None
        if parsed is None:
            raise Unauthorized("malformed token", reason="malformed")
        token_id, secret = parsed
        row = self._by_id.get(token_id)
        if row is None:
            if not io:
                return None
            now = time.monotonic()
            if now - self._miss_at >= self.MISS_RELOAD_EVERY:  # bounded by an attacker
                self._miss_at = now
                self.reload()
                row = self._by_id.get(token_id)
        if row is None or not _tokens.token_matches(secret, row.hash):
            raise Unauthorized("unknown token", reason="unknown")
        if row.revoked_at is not None:
            raise Unauthorized(f"token {row.name!r} was revoked", reason="revoked")
        if row.expires_at is not None and row.expires_at <= now_micros():
            raise Unauthorized(f"token {row.name!r} has expired", reason="expired")
        namespaces = tuple(json.loads(row.namespaces)) if row.namespaces else None
        return Principal(name=row.name, role=row.role, tenant=row.tenant,
                         namespaces=namespaces, token_id=row.id)
