"""Secrets: the ``Secret`` type, envelope encryption, the master key ring, and redaction.

How a secret is stored (envelope encryption)::

    master key (32 bytes, never stored; CONFHUB_MASTER_KEY or a key file)
      └── wraps a data key per tenant (AES-256, stored wrapped in confhub_data_keys)
            └── encrypts each secret value with AES-GCM (random 96-bit nonce)

A secret inside a stored value is replaced by an *envelope* object
``{"$confhub:secret": "v1:<data key id>:<base64url(nonce + ciphertext)>"}`` at its JSON
pointer (``""`` is the whole value), so the rest of the value stays plain JSON. The data key id
travels with every ciphertext; the id of the master key that wraps a data key travels with it.
Rotating the master key re-wraps the data keys only: no value is rewritten, and a process
holding old and new master keys reads throughout.

Redaction replaces every envelope by ``"***"``. The hub turns stored rows into entries and
changes through :func:`redact`, so nothing that leaves the hub carries a ciphertext or a
plaintext unless it was revealed on purpose.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import json
import os
import secrets as _random
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .errors import ConfhubError, InvalidRequest, InvalidValue

__all__ = [
    "MARKER", "REDACTED", "KeyRing", "Secret", "Vault", "generate_master_key", "has_envelope",
    "redact", "redact_change", "redact_event", "redact_text", "secret_pointers",
]

MARKER = "$confhub:secret"
REDACTED = "***"
_MARKER_JSON = json.dumps(MARKER)
NO_MASTER_KEY = ("no master key is configured, so secrets cannot be written or revealed; "
                 "set CONFHUB_MASTER_KEY (or pass --key-file); `confhub keys generate` makes one")


class Secret:
    """A secret string whose ``repr`` and ``str`` never show it (``get_secret_value`` does)."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get_secret_value(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({REDACTED!r})"

    def __str__(self) -> str:
        return REDACTED

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and _random.compare_digest(self._value, other._value)

    def __hash__(self) -> int:
        return hash(("Secret", len(self._value)))


# --------------------------------------------------------------------------- master keys


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def generate_master_key() -> str:
    """A new master key: 32 random bytes, base64url without padding (43 characters)."""
    return _b64(os.urandom(32))


class KeyRing:
    """Master keys by id; the first is the primary (it wraps new and re-wrapped data keys),
    the others still unwrap (old keys kept during a rotation)."""

    def __init__(self, keys: Sequence[Secret]) -> None:
        if not keys:
            raise InvalidRequest("a key ring needs at least one master key")
        self._keys: dict[str, AESGCM] = {}
        self.ids: list[str] = []
        for key in keys:
            try:
                raw = _unb64(key.get_secret_value().strip())
            except (binascii.Error, ValueError):
                raw = b""
            if len(raw) != 32:
                raise InvalidRequest("a master key must be 32 bytes in base64url (43 "
                                     "characters); `confhub keys generate` makes one")
            key_id = hashlib.sha256(b"confhub-master:" + raw).hexdigest()[:12]
            if key_id not in self._keys:
                self._keys[key_id] = AESGCM(raw)
                self.ids.append(key_id)
        self.primary_id = self.ids[0]

    def __repr__(self) -> str:
        return f"<KeyRing {', '.join(self.ids)}>"

    @classmethod
    def from_text(cls, text: str) -> KeyRing:
        """Keys separated by commas, spaces or newlines (``#`` starts a comment line)."""
        lines = [line for line in text.splitlines() if not line.strip().startswith("#")]
        parts = " ".join(lines).replace(",", " ").split()
        return cls([Secret(part) for part in parts])

    @classmethod
    def from_settings(cls, key: str | None = None, key_file: str | None = None,
                      environ: Mapping[str, str] | None = None) -> KeyRing | None:
        """The ring named by arguments, else ``CONFHUB_MASTER_KEY`` / ``CONFHUB_KEY_FILE``;
        None when none is set."""
        env = os.environ if environ is None else environ
        key = key or env.get("CONFHUB_MASTER_KEY") or None
        key_file = key_file or env.get("CONFHUB_KEY_FILE") or None
        text = ""
        if key_file:
            try:
                with open(key_file, encoding="utf-8") as handle:
                    text = handle.read()
            except OSError as exc:
                raise InvalidRequest(f"cannot read key file {key_file!r}: {exc.strerror}") \
                    from None
        if key:
            text = key + "\n" + text  # the explicit key is the primary
        return cls.from_text(text) if text.strip() else None

    def wrap(self, key_id: str, data_key: bytes) -> tuple[str, str]:
        """``(master_id, wrapped)`` of a data key under the primary master key."""
        nonce = os.urandom(12)
        sealed = self._keys[self.primary_id].encrypt(nonce, data_key, _aad("dek", key_id))
        return self.primary_id, _b64(nonce + sealed)

    def unwrap(self, key_id: str, master_id: str, wrapped: str) -> bytes:
        aes = self._keys.get(master_id)
        if aes is None:
            raise ConfhubError(f"data key {key_id} is wrapped by master key {master_id}, "
                               f"which is not configured (configured: {', '.join(self.ids)})",
                               key_id=key_id, master_id=master_id)
        raw = _unb64(wrapped)
        try:
            return aes.decrypt(raw[:12], raw[12:], _aad("dek", key_id))
        except InvalidTag:
            raise ConfhubError(f"data key {key_id} does not unwrap with master key "
                               f"{master_id}", key_id=key_id) from None


def _aad(kind: str, key_id: str) -> bytes:
    return f"confhub-v1:{kind}:{key_id}".encode("ascii")


# --------------------------------------------------------------------------- the vault


class KeySource(Protocol):
    """Where the vault keeps wrapped data keys (the hub adapts its store to this)."""

    def get(self, key_id: str) -> tuple[str, str] | None:
        """``(master_id, wrapped)`` of a data key, None if absent."""

    def latest(self, tenant: str) -> tuple[str, str, str] | None:
        """``(key_id, master_id, wrapped)`` of the tenant's newest data key."""

    def add(self, key_id: str, tenant: str, master_id: str, wrapped: str) -> None: ...


class Vault:
    """Seals and opens secrets of values with per-tenant data keys; thread-safe.

    Unwrapped data keys are kept in memory (a re-wrap does not change them).
    """

    def __init__(self, ring: KeyRing | None, source: KeySource) -> None:
        self.ring = ring
        self._source = source
        self._aes: dict[str, AESGCM] = {}
        self._tenant_key: dict[str, str] = {}
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.ring is not None

    def _require(self) -> KeyRing:
        if self.ring is None:
            raise InvalidRequest(NO_MASTER_KEY, reason="no_master_key")
        return self.ring

    def forget(self) -> None:
        """Drop unwrapped data keys (tests: make the next read unwrap again)."""
        with self._lock:
            self._aes.clear()
            self._tenant_key.clear()

    def ensure_tenant_key(self, tenant: str) -> str:
        """The id of the data key new secrets of ``tenant`` use; created on first need.
        Call it outside any store transaction (it may write)."""
        ring = self._require()
        key_id = self._tenant_key.get(tenant)
        if key_id is not None:
            return key_id
        found = self._source.latest(tenant)
        if found is None:
            key_id, raw = _random.token_hex(8), os.urandom(32)
            master_id, wrapped = ring.wrap(key_id, raw)
            self._source.add(key_id, tenant, master_id, wrapped)
            aes = AESGCM(raw)
        else:
            key_id, master_id, wrapped = found
            aes = AESGCM(ring.unwrap(key_id, master_id, wrapped))
        with self._lock:
            self._aes[key_id] = aes
            self._tenant_key[tenant] = key_id
        return key_id

    def _cipher(self, key_id: str) -> AESGCM:
        aes = self._aes.get(key_id)
        if aes is None:
            ring = self._require()
            found = self._source.get(key_id)
            if found is None:
                raise ConfhubError(f"data key {key_id} does not exist", key_id=key_id)
            aes = AESGCM(ring.unwrap(key_id, *found))
            with self._lock:
                self._aes[key_id] = aes
        return aes

    def seal(self, tenant: str, value: Any, pointers: Iterable[str]) -> Any:
        """``value`` with the plain JSON at each pointer replaced by an envelope (pointers
        that do not exist in the value are skipped). Needs :meth:`ensure_tenant_key` first."""
        self._require()
        key_id = self._tenant_key.get(tenant) or self.ensure_tenant_key(tenant)
        aes = self._aes[key_id]

        def envelope(plain: Any) -> dict[str, str]:
            if is_envelope(plain):
                return dict(plain)
            nonce = os.urandom(12)
            text = json.dumps(plain, ensure_ascii=False, separators=(",", ":"))
            sealed = aes.encrypt(nonce, text.encode("utf-8"), _aad("value", key_id))
            return {MARKER: f"v1:{key_id}:{_b64(nonce + sealed)}"}

        for pointer in sorted(set(pointers), key=len, reverse=True):
            value = _replace_at(value, _split_pointer(pointer), envelope)
        return value

    def open(self, value: Any) -> Any:
        """``value`` with every envelope replaced by its plaintext."""
        return _walk(value, self._open_one)

    def _open_one(self, envelope: Mapping[str, str]) -> Any:
        try:
            version, key_id, data = envelope[MARKER].split(":", 2)
            raw = _unb64(data)
        except (ValueError, AttributeError, binascii.Error):
            raise ConfhubError("a stored secret is malformed") from None
        if version != "v1":
            raise ConfhubError(f"unknown secret format {version!r}")
        try:
            plain = self._cipher(key_id).decrypt(raw[:12], raw[12:], _aad("value", key_id))
        except InvalidTag:
            raise ConfhubError(f"a secret does not decrypt with data key {key_id}") from None
        return json.loads(plain)

    def rewrap(self, rows: Iterable[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
        """``(key_id, master_id, wrapped)`` not under the primary master key, re-wrapped."""
        ring = self._require()
        out = []
        for key_id, master_id, wrapped in rows:
            if master_id != ring.primary_id:
                new_master, new_wrapped = ring.wrap(key_id,
                                                    ring.unwrap(key_id, master_id, wrapped))
                out.append((key_id, new_master, new_wrapped))
        return out


# --------------------------------------------------------------------------- pointers & walks


def _split_pointer(pointer: str) -> list[str]:
    if pointer == "":
        return []
    if not isinstance(pointer, str) or not pointer.startswith("/"):
        raise InvalidRequest(f"a secret path must be a JSON pointer like /password or \"\" "
                             f"(the whole value), not {pointer!r}")
    return [part.replace("~1", "/").replace("~0", "~") for part in pointer[1:].split("/")]


def check_pointers(pointers: Iterable[str]) -> tuple[str, ...]:
    out = tuple(sorted(set(pointers)))
    for pointer in out:
        _split_pointer(pointer)
    return out


def _replace_at(value: Any, parts: list[str], fn: Callable[[Any], Any]) -> Any:
    if not parts:
        return fn(value)
    head, rest = parts[0], parts[1:]
    if isinstance(value, dict) and head in value:
        return {**value, head: _replace_at(value[head], rest, fn)}
    if isinstance(value, list) and head.isdigit() and int(head) < len(value):
        index = int(head)
        return [*value[:index], _replace_at(value[index], rest, fn), *value[index + 1:]]
    return value


def is_envelope(value: Any) -> bool:
    return isinstance(value, Mapping) and len(value) == 1 and isinstance(value.get(MARKER), str)


def _walk(value: Any, fn: Callable[[Mapping[str, str]], Any]) -> Any:
    if is_envelope(value):
        return fn(value)
    if isinstance(value, Mapping):
        return {k: _walk(v, fn) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_walk(v, fn) for v in value]
    return value


def has_envelope(text: str | None) -> bool:
    """Cheap test on encoded JSON: may this text hold an envelope?"""
    return text is not None and _MARKER_JSON in text


def secret_pointers(value: Any, prefix: str = "") -> list[str]:
    """JSON pointers of every envelope in ``value``."""
    if is_envelope(value):
        return [prefix]
    out: list[str] = []
    if isinstance(value, Mapping):
        for k, v in value.items():
            out += secret_pointers(v, f"{prefix}/{str(k).replace('~', '~0').replace('/', '~1')}")
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            out += secret_pointers(v, f"{prefix}/{i}")
    return out


def redact(value: Any) -> Any:
    """``value`` with every envelope replaced by ``"***"``."""
    return _walk(value, lambda _: REDACTED)


def redact_text(text: str | None) -> str | None:
    """Encoded JSON with every envelope replaced by ``"***"`` (same canonical encoding)."""
    if not has_envelope(text):
        return text
    assert text is not None
    return json.dumps(redact(json.loads(text)), ensure_ascii=False, separators=(",", ":"),
                      sort_keys=True)


def diff_marks(value: Any) -> Any:
    """Envelopes replaced by a distinct mark per ciphertext, so a diff of two versions shows
    that a secret changed; :func:`redact_marks` then turns the marks into ``"***"``."""
    return _walk(value, lambda env: REDACTED + "#" +
                 hashlib.sha256(env[MARKER].encode()).hexdigest()[:16])


def redact_marks(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(REDACTED + "#"):
        return REDACTED
    if isinstance(value, Mapping):
        return {k: redact_marks(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_marks(v) for v in value]
    return value


def redact_change(change: Any) -> Any:
    """A Change/Version/Entry (any frozen dataclass with ``value``) with secrets as ``"***"``.

    The hub already redacts everything it hands out; the watch stream may call this on each
    change before encoding it, as a second line of defence (it is idempotent and cheap for
    non-secret changes)."""
    if not getattr(change, "secret", False):
        return change
    return dataclasses.replace(change, value=redact(change.value))


def redact_event(event: Any) -> Any:
    """A WatchEvent with every change passed through :func:`redact_change`."""
    if not any(getattr(c, "secret", False) for c in event.changes):
        return event
    return dataclasses.replace(event, changes=tuple(redact_change(c) for c in event.changes))


def reject_envelopes(text: str, where: str) -> None:
    """A client may not write the envelope form itself (it would pass for a secret)."""
    if has_envelope(text):
        raise InvalidValue(f"{where} uses the reserved field name {MARKER!r}")
