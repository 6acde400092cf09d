"""Sealing and revealing secrets on their way into and out of the store.

A value with secrets is stored with each secret field replaced by an envelope (``secrets.py``
does the cryptography); everything that reads it back either redacts (``"***"``) or, when
someone allowed to asks, opens the envelopes. This module owns those crossings: sealing a
write's secret fields, opening a stored value for validation (and scrubbing the plaintexts
from the messages validation writes), revealing one entry (audited), and the secret forms of
rows in exports and imports.

May import: ``confhub.secrets``, ``confhub.model``, ``confhub.errors``,
``confhub.store.base`` (row types) and ``hub.rows``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from typing import Any

import jsonpatch

from .. import secrets as _secrets
from ..errors import InvalidRequest
from ..model import ValidationIssue, encode_value
from ..secrets import Vault
from ..store.base import VersionRow

Plan = Any  # transfer.Parsed: {(env, namespace, key): ((text, secret) | None, history)}


def require_key(vault: Vault, where: str | None = None) -> None:
    """InvalidRequest (``no_master_key``) unless the vault can seal and open."""
    if not vault.enabled:
        prefix = f"{where} holds secrets: " if where else ""
        raise InvalidRequest(prefix + _secrets.NO_MASTER_KEY, reason="no_master_key")


def seal(tenant: str, vault: Vault, value: Any, paths: Sequence[str], max_bytes: int,
         where: str) -> str:
    """``value`` encoded with the fields at ``paths`` sealed (``""``: the whole value)."""
    require_key(vault, where)
    sealed = vault.seal(tenant, value, paths)
    return encode_value(sealed, max_bytes=max_bytes + 4096 * len(paths), where=where)


def opened(value: Any, secret: bool, vault: Vault, plain: list[Any]) -> Any:
    """``value`` with its envelopes decrypted (their plaintexts added to ``plain``); without a
    master key they read as ``"***"``."""
    if not secret:
        return value
    for pointer in _secrets.secret_pointers(value):
        envelope = jsonpatch.JsonPointer(pointer).resolve(value) if pointer else value
        plain.append(vault.open(envelope) if vault.enabled else _secrets.REDACTED)
    return vault.open(value) if vault.enabled else _secrets.redact(value)


def scrubbed(issues: Sequence[ValidationIssue], plain: Sequence[Any]) -> list[ValidationIssue]:
    """``issues`` with every secret plaintext in their messages replaced by ``***``."""
    if not plain:
        return list(issues)
    texts = sorted({t for p in plain for t in (str(p), json.dumps(p, ensure_ascii=False))
                    if len(t) > 1}, key=len, reverse=True)

    def scrub(message: str) -> str:
        for text in texts:
            message = message.replace(text, _secrets.REDACTED)
        return message

    return [dataclasses.replace(issue, message=scrub(issue.message)) for issue in issues]


def shown_row(row: VersionRow) -> VersionRow:
    """``row`` as an export shows it by default: secret fields redacted."""
    if not row.secret:
        return row
    return dataclasses.replace(row, value=_secrets.redact_text(row.value))


def revealed_row(vault: Vault, row: VersionRow) -> VersionRow:
    """``row`` with its secrets in plain text (an export with ``include_secrets``)."""
    if not row.secret or row.value is None:
        return row
    value = vault.open(json.loads(row.value))
    return dataclasses.replace(row, value=json.dumps(value, ensure_ascii=False,
                                                     separators=(",", ":"), sort_keys=True))


def seal_import(tenant: str, vault: Vault, plan: Plan) -> Plan:
    """Secret items of an export arrive in plain text (``--include-secrets``): encrypt them
    (whole value) before they are stored. A redacted export cannot restore secrets."""
    def sealed_text(text: str | None, secret: bool, where: str) -> str | None:
        if not secret or text is None or _secrets.has_envelope(text):
            return text
        if f'"{_secrets.REDACTED}"' in text:
            raise InvalidRequest(f"{where} is a redacted secret; export with "
                                 "include_secrets to back secrets up", where=where)
        vault.ensure_tenant_key(tenant)
        return encode_value(vault.seal(tenant, json.loads(text), [""]))

    if not any(cur is not None and cur[1] for cur, _ in plan.values()) and not any(
            item.get("secret") for _, history in plan.values() for item in history):
        return plan
    result: dict[Any, Any] = {}
    for address, (current, history) in plan.items():
        where = "/".join(address)
        if current is not None:
            current = (sealed_text(current[0], current[1], where), current[1])
        history = [{**item, "text": sealed_text(item["text"], item["secret"], where)}
                   for item in history]
        result[address] = (current, history)
    return result
