"""Mirrors: a tenant's resolved view for one env, written into Redis or etcd.

What a mirror holds, under a prefix (default ``confhub:<tenant>:<env>:`` in Redis,
``/confhub/<tenant>/<env>/`` in etcd)::

    <prefix>models/opus            {"max_tokens": 4096, ...}       the resolved value, JSON
    <prefix>models/opus@version    {"version": 3, "revision": 17, "versions": {"base": 2,
                                    "production": 3}}                its confhub version
    <prefix>@revision              17                              the last revision pushed

``push`` writes the whole view and removes what is no longer in it. ``follow`` then reads the
tenant's change feed after ``@revision`` (a long poll that never splits a transaction) and, per
committed revision, rewrites the keys it touched together with the new ``@revision`` in one
atomic batch (Redis MULTI/EXEC, an etcd transaction). A pusher that stops and starts again
resumes from ``@revision``, kept in the target itself, so no change is lost or applied twice;
if retention removed that history it pushes everything again.

Secrets are never pushed unless ``include_secrets`` (keys holding one are left out, and
removed from the mirror when they become secret).
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx

from ..errors import Gone, InvalidRequest, NotFound, Unavailable
from ..model import BASE_ENV, check_name
from .layout import INVENTORY_NAMESPACE
from .view import ResolvedKey, read_view, resolve_pair

__all__ = ["EtcdTarget", "Mirror", "PushReport", "RedisTarget", "Target", "open_target"]

REVISION_KEY = "@revision"
VERSION_SUFFIX = "@version"
ETCD_BATCH = 100  # etcd refuses transactions over --max-txn-ops (128 by default)


class Target(Protocol):
    """An external key-value store a mirror writes to."""

    url: str

    def write(self, puts: Mapping[str, str], deletes: Sequence[str]) -> None:
        """Apply the puts and deletes atomically (as far as the store allows)."""

    def read(self, key: str) -> str | None: ...

    def keys(self, prefix: str) -> list[str]: ...

    def close(self) -> None: ...


class RedisTarget:
    """Redis through redis-py; each batch is one MULTI/EXEC."""

    def __init__(self, url: str) -> None:
        import redis

        self.url = url
        self._redis = redis.Redis.from_url(url, decode_responses=True, socket_timeout=10)

    def _call(self, action: Callable[[], Any]) -> Any:
        import redis

        try:
            return action()
        except redis.RedisError as error:
            raise Unavailable(f"Redis at {self.url}: {error}") from None

    def write(self, puts: Mapping[str, str], deletes: Sequence[str]) -> None:
        def run() -> None:
            pipe = self._redis.pipeline(transaction=True)
            if deletes:
                pipe.delete(*deletes)
            if puts:
                pipe.mset(dict(puts))
            pipe.execute()
        self._call(run)

    def read(self, key: str) -> str | None:
        value = self._call(lambda: self._redis.get(key))
        return None if value is None else str(value)

    def keys(self, prefix: str) -> list[str]:
        pattern = "".join(f"[{c}]" if c in "*?[]\\" else c for c in prefix) + "*"
        return sorted(self._call(lambda: list(self._redis.scan_iter(match=pattern,
                                                                    count=1000))))

    def close(self) -> None:
        self._redis.close()


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _prefix_end(prefix: str) -> str:
    raw = bytearray(prefix.encode())
    raw[-1] += 1
    return base64.b64encode(bytes(raw)).decode()


class EtcdTarget:
    """etcd v3 through its JSON gateway (``/v3/kv/...``); each batch is a transaction of at
    most ETCD_BATCH operations."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        scheme = "https" if parts.scheme == "etcds" else "http"
        self.url = url
        self._http = httpx.Client(base_url=f"{scheme}://{parts.netloc}", timeout=10)

    def _post(self, path: str, body: dict[str, Any]) -> Any:
        try:
            response = self._http.post(path, json=body)
        except httpx.HTTPError as error:
            raise Unavailable(f"etcd at {self.url}: {error}") from None
        if response.status_code != 200:
            raise Unavailable(f"etcd at {self.url} answered {response.status_code}: "
                              f"{response.text[:200]}")
        return response.json()

    def write(self, puts: Mapping[str, str], deletes: Sequence[str]) -> None:
        ops: list[dict[str, Any]] = [{"requestDeleteRange": {"key": _b64(k)}} for k in deletes]
        ops += [{"requestPut": {"key": _b64(k), "value": _b64(v)}} for k, v in puts.items()]
        for start in range(0, len(ops), ETCD_BATCH):
            self._post("/v3/kv/txn", {"success": ops[start:start + ETCD_BATCH]})

    def read(self, key: str) -> str | None:
        kvs = self._post("/v3/kv/range", {"key": _b64(key)}).get("kvs") or []
        return base64.b64decode(kvs[0]["value"]).decode() if kvs else None

    def keys(self, prefix: str) -> list[str]:
        found = self._post("/v3/kv/range", {"key": _b64(prefix), "range_end":
                                            _prefix_end(prefix), "keys_only": True})
        return sorted(base64.b64decode(kv["key"]).decode() for kv in found.get("kvs") or [])

    def close(self) -> None:
        self._http.close()


def open_target(url: str) -> Target:
    """``redis://host:port/db`` (or ``rediss://``, ``unix://``) or ``etcd://host:port``."""
    scheme = urlsplit(url).scheme
    if scheme in ("redis", "rediss", "unix"):
        return RedisTarget(url)
    if scheme in ("etcd", "etcds"):
        return EtcdTarget(url)
    raise InvalidRequest(f"--to {url!r}: push writes to redis://HOST:PORT/DB or "
                         "etcd://HOST:PORT", url=url)


@dataclass(frozen=True)
class PushReport:
    revision: int
    written: int
    deleted: int
    skipped_secrets: int = 0
    resumed_from: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"revision": self.revision, "written": self.written, "deleted": self.deleted,
                "skipped_secrets": self.skipped_secrets, "resumed_from": self.resumed_from}


class Mirror:
    """One tenant/env pushed to one target under one prefix."""

    def __init__(self, hub: Any, tenant: str, env: str, target: Target, *,
                 prefix: str | None = None, include_secrets: bool = False) -> None:
        check_name("tenant", tenant)
        check_name("env", env)
        self.hub, self.tenant, self.env, self.target = hub, tenant, env, target
        default = (f"/confhub/{tenant}/{env}/" if isinstance(target, EtcdTarget)
                   else f"confhub:{tenant}:{env}:")
        self.prefix = default if prefix is None else prefix
        self.include_secrets = include_secrets

    def _entries(self, item: ResolvedKey) -> dict[str, str]:
        name = f"{self.prefix}{item.namespace}/{item.key}"
        stamp = {"version": item.version, "revision": item.revision, "versions": item.versions}
        return {name: json.dumps(item.value, ensure_ascii=False, separators=(",", ":")),
                name + VERSION_SUFFIX: json.dumps(stamp, separators=(",", ":"))}

    def pushed_revision(self) -> int | None:
        text = self.target.read(self.prefix + REVISION_KEY)
        return int(text) if text is not None and text.isdigit() else None

    def push_all(self) -> PushReport:
        """Write the whole resolved view and remove mirror keys no longer in it."""
        view = read_view(self.hub, self.tenant, self.env, include_secrets=self.include_secrets)
        puts: dict[str, str] = {}
        skipped = 0
        for item in view.keys.values():
            if item.secret and not self.include_secrets:
                skipped += 1
                continue
            puts.update(self._entries(item))
        marker = self.prefix + REVISION_KEY
        stale = [k for k in self.target.keys(self.prefix) if k not in puts and k != marker]
        self.target.write({**puts, marker: str(view.revision)}, stale)
        return PushReport(view.revision, len(puts) // 2, len(stale), skipped)

    def _current(self, namespace: str, key: str) -> ResolvedKey | None:
        """The key's resolved value now (None: gone, or a secret we may not push)."""
        tenant = self.hub.tenant(self.tenant)
        found: dict[str, Any] = {}
        for layer in dict.fromkeys((BASE_ENV, self.env)):
            try:
                entry = tenant.get(namespace, key, env=layer)
            except NotFound:
                continue
            if entry.secret:
                if not self.include_secrets:
                    return None
                entry = tenant.get(namespace, key, env=layer, reveal=True)
            found[layer] = entry
        if not found:
            return None
        base, top = found.get(BASE_ENV), found.get(self.env) if self.env != BASE_ENV else None
        value = resolve_pair(base.value if base else None, top.value if top else None,
                             self.env)
        return ResolvedKey(namespace, key, value, {k: e.version for k, e in found.items()},
                           max(e.revision for e in found.values()), any(
                               e.secret for e in found.values()))

    def catch_up(self, since: int, wait: float = 0) -> int:
        """Push every revision after ``since`` (waiting up to ``wait`` seconds for one);
        returns the last revision pushed."""
        tenant = self.hub.tenant(self.tenant)
        page = tenant.changes(since=since, limit=1000, wait=wait or None)
        by_revision: dict[int, set[tuple[str, str]]] = {}
        for change in page:
            if change.env in (BASE_ENV, self.env):
                by_revision.setdefault(change.revision, set()).add(
                    (change.namespace, change.key))
            else:
                by_revision.setdefault(change.revision, set())
        for revision, touched in sorted(by_revision.items()):
            puts: dict[str, str] = {}
            deletes: list[str] = []
            for namespace, key in sorted(touched):
                if namespace == INVENTORY_NAMESPACE:
                    continue
                item = self._current(namespace, key)
                name = f"{self.prefix}{namespace}/{key}"
                if item is None:
                    deletes += [name, name + VERSION_SUFFIX]
                else:
                    puts.update(self._entries(item))
            self.target.write({**puts, self.prefix + REVISION_KEY: str(revision)}, deletes)
            since = revision
        return since

    def follow(self, stop: threading.Event, report: Callable[[str], None],
               poll: float = 2.0) -> None:
        """Keep the mirror in sync until ``stop`` is set, resuming from ``@revision``."""
        since = self.pushed_revision()
        if since is None:
            pushed = self.push_all()
            since = pushed.revision
            report(f"pushed {pushed.written} keys at revision {since}")
        else:
            report(f"resuming from revision {since}")
        while not stop.is_set():
            try:
                reached = self.catch_up(since, wait=poll)
            except Gone:
                pushed = self.push_all()
                since = pushed.revision
                report(f"history was compacted: pushed everything again at revision {since}")
                continue
            if reached != since:
                since = reached
                report(f"pushed up to revision {since}")
