"""JSON answers, ETags and conditional requests.

Entries are encoded once per version and kept (``EntryBytes``): the hub's cache hands out the
same frozen ``Entry`` object until the key changes, so the identity check ``cached is entry`` is
enough to know the bytes are still right. That is what makes the hot GET path a dict lookup.
"""

from __future__ import annotations

import hashlib
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ..errors import InvalidRequest
from ..model import Entry
from ..values import compact_json

__all__ = [
    "Encoded",
    "EntryBytes",
    "dumps",
    "entry_etag",
    "entry_json",
    "json_response",
    "matches",
    "parse_version_tag",
]

JSON_MEDIA = "application/json"


def dumps(data: Any) -> bytes:
    """Compact UTF-8 JSON; values were checked by the hub, so this cannot fail on them."""
    return compact_json(data).encode("utf-8")


def body_etag(body: bytes) -> str:
    """A weak validator for composite answers (lists, pages, resolved values)."""
    return 'W/"' + hashlib.blake2b(body, digest_size=10).hexdigest() + '"'


def entry_etag(version: int) -> str:
    """DESIGN.md: the ETag of an entry is its version, quoted."""
    return f'"{version}"'


def matches(header: str | None, etag: str) -> bool:
    """Does an If-None-Match / If-Match header list this ETag (weak comparison) or ``*``?"""
    if not header:
        return False
    bare = etag[2:] if etag.startswith("W/") else etag
    for tag in header.split(","):
        tag = tag.strip()
        if tag == "*":
            return True
        if tag.startswith("W/"):
            tag = tag[2:]
        if tag == bare:
            return True
    return False


def parse_version_tag(header: str, name: str = "If-Match") -> int:
    """``"3"`` (or ``W/"3"``, or bare ``3``) -> 3; anything else is a 400."""
    tag = header.strip()
    if tag.startswith("W/"):
        tag = tag[2:]
    tag = tag.strip('"')
    if not tag.isascii() or not tag.isdigit() or len(tag) > 18:
        raise InvalidRequest(f'{name} must be a version ETag like "3", got {header!r}',
                             header=name)
    return int(tag)


def json_response(data: Any, *, status: int = 200, request: Request | None = None,
                  etag: str | None = None, headers: dict[str, str] | None = None,
                  body: bytes | None = None) -> Response:
    """Encode ``data`` (or send ``body`` as is) with an ETag; 304 when the client has it.

    With ``request`` given and no explicit ``etag``, a weak body hash is used, so every read
    answers with a validator.
    """
    payload = body if body is not None else dumps(data)
    all_headers = dict(headers or {})
    if request is not None or etag is not None:
        tag = etag or body_etag(payload)
        all_headers["etag"] = tag
        if request is not None and status == 200 and matches(
            request.headers.get("if-none-match"), tag
        ):
            return Response(status_code=304, headers=all_headers)
    return Response(payload, status_code=status, media_type=JSON_MEDIA, headers=all_headers)


def entry_json(entry: Entry) -> dict[str, Any]:
    """``entry.to_dict()`` spelled out: the generic version walks ``dataclasses.fields`` and
    costs a tenth of a millisecond per write (a test pins the two equal)."""
    return {
        "tenant": entry.tenant,
        "env": entry.env,
        "namespace": entry.namespace,
        "key": entry.key,
        "value": entry.value,
        "version": entry.version,
        "revision": entry.revision,
        "created_at": entry.created_at.isoformat(),
        "updated_at": entry.updated_at.isoformat(),
        "updated_by": entry.updated_by,
        "secret": entry.secret,
        **({"warnings": [w.to_dict() for w in entry.warnings]} if entry.warnings else {}),
        **({"rollout": entry.rollout} if entry.rollout is not None else {}),
    }


class EntryBytes:
    """Encoded JSON of current entries, reused while the hub returns the same Entry object."""

    def __init__(self, max_items: int = 50_000) -> None:
        self._items: dict[tuple[str, str, str, str], Encoded] = {}
        self._max = max_items

    def encode(self, entry: Entry) -> bytes:
        return self.encoded(entry).body

    def encoded(self, entry: Entry) -> Encoded:
        """The entry's bytes and the headers of a 200 answering them, made once per
        version of a cached entry."""
        if entry.warnings or entry.rollout is not None:  # not the shared cached entry
            return Encoded(entry, dumps(entry_json(entry)))
        k = (entry.tenant, entry.env, entry.namespace, entry.key)
        hit = self._items.get(k)
        if hit is not None and hit.entry is entry:
            return hit
        encoded = Encoded(entry, dumps(entry_json(entry)))
        if len(self._items) >= self._max:
            self._items.clear()  # crude but bounded; a hot working set refills at once
        self._items[k] = encoded
        return encoded


class Encoded:
    """An entry's JSON and what a 200 of it says in its headers (``FastReads.answer``)."""

    __slots__ = ("body", "entry", "etag", "headers")

    def __init__(self, entry: Entry, body: bytes) -> None:
        self.entry = entry
        self.body = body
        self.etag = entry_etag(entry.version)
        self.headers = ((b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                        (b"etag", self.etag.encode()))
