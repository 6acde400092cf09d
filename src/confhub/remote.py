"""The remote client: the Hub / Tenant surface of DESIGN.md section 2 over HTTP.

``confhub.open("http://127.0.0.1:8011")`` returns a :class:`RemoteHub`; its methods take the
same arguments, return the same frozen values (``Entry``, ``Version``...) and raise the same
exceptions as the embedded hub, so code moves between the two unchanged. The server's JSON error
body is turned back into the matching exception (``VersionConflict.current_version`` and all).

Every method is written once, as a *plan* (``_Call``: method, path, query, body, how to decode
the answer); :class:`RemoteHub` runs plans with ``httpx.Client`` and :class:`AsyncRemoteHub`
with ``httpx.AsyncClient``. Both keep connections alive and reuse them.

Retries, and why only these:

* any call is retried when the connection could not be made (the request never left);
* reads (GET) are also retried after a broken connection, a timeout or a 502/503/504;
* writes are not retried once sent: a write that timed out may have committed, and sending it
  again would add a version (or fail a compare-and-set it had in fact passed). The caller gets
  ``Unavailable`` saying so and decides.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx

from .errors import (
    ConfhubError,
    InvalidRequest,
    NotFound,
    Unavailable,
    error_from_code,
)
from .model import (
    BASE_ENV,
    DEFAULT_TENANT,
    Change,
    Entry,
    Resolved,
    Snapshot,
    TenantInfo,
    Version,
    check_name,
    encode_value,
    freeze,
)

__all__ = ["AsyncRemoteHub", "AsyncRemoteTenant", "RemoteHub", "RemoteTenant",
           "RemoteTransaction"]

T = TypeVar("T")

JSON = "application/json"
MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
RETRY_STATUSES = frozenset({502, 503, 504})
_NO_BODY = object()


# --------------------------------------------------------------------------- wire -> values


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def entry_from_json(d: Mapping[str, Any]) -> Entry:
    return Entry(
        tenant=d["tenant"], env=d["env"], namespace=d["namespace"], key=d["key"],
        value=freeze(d["value"]), version=d["version"], revision=d["revision"],
        created_at=_time(d["created_at"]), updated_at=_time(d["updated_at"]),
        updated_by=d.get("updated_by"), secret=bool(d.get("secret", False)),
    )


def _version_fields(d: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "tenant": d["tenant"], "env": d["env"], "namespace": d["namespace"], "key": d["key"],
        "version": d["version"], "revision": d["revision"], "op": d["op"],
        "value": freeze(d.get("value")), "deleted": bool(d["deleted"]),
        "created_at": _time(d["created_at"]), "author": d.get("author"),
        "reason": d.get("reason"), "metadata": freeze(d.get("metadata") or {}),
        "rollback_of": d.get("rollback_of"), "request_id": d.get("request_id"),
        "secret": bool(d.get("secret", False)),
    }


def version_from_json(d: Mapping[str, Any]) -> Version:
    return Version(**_version_fields(d))


def change_from_json(d: Mapping[str, Any]) -> Change:
    return Change(**_version_fields(d))


def resolved_from_json(d: Mapping[str, Any]) -> Resolved:
    return Resolved(tenant=d["tenant"], env=d["env"], namespace=d["namespace"], key=d["key"],
                    value=freeze(d["value"]), sources=dict(d["sources"]),
                    versions=dict(d["versions"]))


def snapshot_from_json(d: Mapping[str, Any]) -> Snapshot:
    return Snapshot(tenant=d["tenant"], label=d["label"], revision=d["revision"],
                    created_at=_time(d["created_at"]))


def tenant_from_json(d: Mapping[str, Any]) -> TenantInfo:
    deleted_at = d.get("deleted_at")
    return TenantInfo(id=d["id"], revision=d["revision"], created_at=_time(d["created_at"]),
                      deleted_at=_time(deleted_at) if deleted_at else None)


def error_from_response(response: httpx.Response) -> ConfhubError:
    """The exception the embedded hub would have raised, rebuilt from the error body."""
    try:
        info = response.json()["error"]
        code, message = str(info["code"]), str(info["message"])
        details = dict(info.get("details") or {})
    except Exception:
        code, message, details = "", f"HTTP {response.status_code}: {response.text[:200]}", {}
    try:
        error = error_from_code(code, message, details)
    except TypeError:  # a details key clashing with the constructor's own parameters
        error = error_from_code(code, message)
        error.details = details
    if type(error) is ConfhubError:  # codes only the server has (415, 405, 501...)
        if response.status_code in RETRY_STATUSES:
            error = Unavailable(message, **{"status": response.status_code})
        elif 400 <= response.status_code < 500 and response.status_code != 404:
            error = InvalidRequest(message, code=code, status=response.status_code)
        elif response.status_code == 404:
            error = NotFound(message, code=code)
        error.details.update(details)
    return error


# --------------------------------------------------------------------------- call plans


@dataclass
class _Call(Generic[T]):
    """One HTTP exchange, described without doing I/O."""

    method: str
    path: str
    decode: Callable[[Any], T]
    params: dict[str, Any] = field(default_factory=dict)
    body: Any = _NO_BODY
    content_type: str = JSON
    headers: dict[str, Any] = field(default_factory=dict)

    @property
    def idempotent(self) -> bool:
        return self.method == "GET"

    def request_args(self) -> dict[str, Any]:
        params = {k: _query(v) for k, v in self.params.items() if v is not None}
        args: dict[str, Any] = {"params": params, "headers": dict(self.headers)}
        if self.body is not _NO_BODY:
            args["content"] = _encode(self.body)
            args["headers"]["content-type"] = self.content_type
        return args


def _query(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _encode(body: Any) -> bytes:
    """Check and encode a body exactly as the embedded hub checks values (same errors)."""
    return encode_value(body, max_bytes=1 << 62, where="value").encode("utf-8")


def _seg(kind: str, name: str) -> str:
    return quote(check_name(kind, name), safe="")


def _int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidRequest(f"{name} must be an integer >= {minimum}, not {value!r}")
    return value


def _write_headers(expected_version: int | None, reason: str | None, author: str | None,
                   metadata: Mapping[str, Any] | None,
                   request_id: str | None = None) -> dict[str, Any]:
    headers: dict[str, Any] = {}
    if expected_version is not None:
        expected = _int("expected_version", expected_version, 0)
        if expected == 0:
            headers["if-none-match"] = "*"
        else:
            headers["if-match"] = f'"{expected}"'
    if reason is not None:
        headers["x-confhub-reason"] = reason.encode("utf-8")
    if author is not None:
        headers["x-confhub-author"] = author.encode("utf-8")
    if metadata:
        headers["x-confhub-metadata"] = json.dumps(dict(metadata), ensure_ascii=True)
    if request_id is not None:
        headers["x-request-id"] = request_id
    return headers


def _items(decode: Callable[[Mapping[str, Any]], T]) -> Callable[[Any], list[T]]:
    return lambda data: [decode(item) for item in data["items"]]


def _changes(data: Any) -> list[Change]:
    return [change_from_json(c) for c in data["changes"]]


def _none(data: Any) -> None:
    return None


def _same(data: Any) -> Any:
    return data


class _TenantPlans:
    """The per-tenant calls as plans; the sync and async tenants run them."""

    name: str

    def _p(self, *parts: str) -> str:
        return f"/v1/tenants/{quote(self.name, safe='')}/" + "/".join(parts)

    def _key(self, namespace: str, key: str, *rest: str) -> str:
        return self._p("configs", _seg("namespace", namespace), _seg("key", key), *rest)

    def _get(self, namespace: str, key: str, env: str, version: int | None) -> _Call[Entry]:
        check_name("env", env)
        if version is not None:
            _int("version", version, 1)
        return _Call("GET", self._key(namespace, key), entry_from_json,
                     {"env": None if env == BASE_ENV else env, "version": version})

    def _list_page(self, namespace: str, env: str, prefix: str | None,
                   cursor: str | None) -> _Call[Any]:
        check_name("env", env)
        return _Call("GET", self._p("configs", _seg("namespace", namespace)), _same,
                     {"env": env, "prefix": prefix, "cursor": cursor, "limit": 10_000})

    def _namespace_counts(self, env: str | None) -> _Call[dict[str, int]]:
        if env is not None:
            check_name("env", env)
        return _Call("GET", self._p("configs"),
                     lambda d: {i["namespace"]: i["keys"] for i in d["items"]}, {"env": env})

    def _resolve(self, namespace: str, key: str, env: str) -> _Call[Resolved]:
        check_name("env", env)
        return _Call("GET", self._key(namespace, key), resolved_from_json,
                     {"env": env, "resolved": True})

    def _history(self, namespace: str, key: str, env: str, limit: int,
                 before: int | None) -> _Call[list[Version]]:
        check_name("env", env)
        limit = min(_int("limit", limit, 1), 10_000)
        if before is not None:
            _int("before", before, 0)
        return _Call("GET", self._key(namespace, key, "history"), _items(version_from_json),
                     {"env": env, "limit": limit, "before": before or None})

    def _diff(self, namespace: str, key: str, from_version: int, to_version: int,
              env: str) -> _Call[list[dict[str, Any]]]:
        check_name("env", env)
        return _Call("GET", self._key(namespace, key, "diff"), lambda d: list(d["patch"]),
                     {"env": env, "from": _int("from_version", from_version, 1),
                      "to": _int("to_version", to_version, 1)})

    def _changes(self, since: int, limit: int) -> _Call[list[Change]]:
        return _Call("GET", self._p("changes"), _items(change_from_json),
                     {"since": _int("since", since, 0),
                      "limit": min(_int("limit", limit, 1), 10_000)})

    def _revision(self) -> _Call[int]:
        return _Call("GET", f"/v1/tenants/{quote(self.name, safe='')}",
                     lambda d: int(d["revision"]))

    def _set(self, namespace: str, key: str, value: Any, env: str,
             expected_version: int | None, reason: str | None, author: str | None,
             metadata: Mapping[str, Any] | None, dry_run: bool,
             request_id: str | None) -> _Call[Entry]:
        check_name("env", env)
        return _Call("PUT", self._key(namespace, key), entry_from_json,
                     {"env": env, "dry_run": dry_run or None}, body=value,
                     headers=_write_headers(expected_version, reason, author, metadata,
                                            request_id))

    def _patch(self, namespace: str, key: str, patch: Any, env: str,
               expected_version: int | None, reason: str | None, author: str | None,
               metadata: Mapping[str, Any] | None, json_patch: bool, dry_run: bool,
               request_id: str | None) -> _Call[Entry]:
        check_name("env", env)
        if json_patch and not isinstance(patch, list):
            raise InvalidRequest("a JSON Patch (RFC 6902) must be a list of operations")
        return _Call("PATCH", self._key(namespace, key), entry_from_json,
                     {"env": env, "dry_run": dry_run or None}, body=patch,
                     content_type=JSON_PATCH if json_patch else MERGE_PATCH,
                     headers=_write_headers(expected_version, reason, author, metadata,
                                            request_id))

    def _delete(self, namespace: str, key: str, env: str, expected_version: int | None,
                reason: str | None, author: str | None, metadata: Mapping[str, Any] | None,
                dry_run: bool, request_id: str | None) -> _Call[Version]:
        check_name("env", env)
        return _Call("DELETE", self._key(namespace, key), version_from_json,
                     {"env": env, "dry_run": dry_run or None},
                     headers=_write_headers(expected_version, reason, author, metadata,
                                            request_id))

    def _rollback(self, namespace: str, key: str, to_version: int, env: str,
                  expected_version: int | None, reason: str | None, author: str | None,
                  metadata: Mapping[str, Any] | None, dry_run: bool,
                  request_id: str | None) -> _Call[Entry]:
        check_name("env", env)
        return _Call("POST", self._key(namespace, key, "rollback"), entry_from_json,
                     {"env": env, "dry_run": dry_run or None},
                     body={"to_version": _int("to_version", to_version, 1)},
                     headers=_write_headers(expected_version, reason, author, metadata,
                                            request_id))

    def _snapshot(self, label: str) -> _Call[Snapshot]:
        return _Call("POST", self._p("snapshots"), snapshot_from_json,
                     body={"label": check_name("snapshot", label)})

    def _snapshots(self) -> _Call[list[Snapshot]]:
        return _Call("GET", self._p("snapshots"), _items(snapshot_from_json))

    def _restore(self, snapshot: str | None, revision: int | None, namespace: str | None,
                 reason: str | None, author: str | None, dry_run: bool) -> _Call[list[Change]]:
        if (snapshot is None) == (revision is None):
            raise InvalidRequest("restore needs exactly one of snapshot= or revision=")
        body: dict[str, Any] = {"namespace": namespace, "reason": reason, "author": author}
        if namespace is not None:
            check_name("namespace", namespace)
        if snapshot is not None:
            body["snapshot"] = check_name("snapshot", snapshot)
        else:
            body["revision"] = _int("revision", revision, 0)
        return _Call("POST", self._p("restore-revision"), _changes,
                     {"dry_run": dry_run or None}, body=body)

    def _txn(self, ops: list[dict[str, Any]], reason: str | None, author: str | None,
             metadata: Mapping[str, Any] | None, dry_run: bool) -> _Call[Any]:
        body = {"ops": ops, "reason": reason, "author": author,
                "metadata": dict(metadata) if metadata else None, "dry_run": dry_run}
        return _Call("POST", self._p("txn"), _same, body=body)


class _HubPlans:
    """The hub-level calls as plans."""

    def _tenants(self, include_deleted: bool) -> _Call[list[TenantInfo]]:
        return _Call("GET", "/v1/tenants", _items(tenant_from_json),
                     {"include_deleted": include_deleted or None})

    def _tenant_info(self, name: str) -> _Call[TenantInfo]:
        return _Call("GET", f"/v1/tenants/{_seg('tenant', name)}", tenant_from_json)

    def _create_tenant(self, name: str, template: str | None,
                       overrides: Mapping[str, Mapping[str, Any]] | None, reason: str | None,
                       author: str | None) -> _Call[TenantInfo]:
        body: dict[str, Any] = {"id": check_name("tenant", name)}
        if template is not None:
            body["template"] = check_name("tenant", template)
        if overrides is not None:
            body["overrides"] = overrides
        return _Call("POST", "/v1/tenants", tenant_from_json, body=body,
                     headers=_write_headers(None, reason, author, None))

    def _clone_tenant(self, source: str, target: str, reason: str | None,
                      author: str | None) -> _Call[TenantInfo]:
        return _Call("POST", f"/v1/tenants/{_seg('tenant', source)}/clone", tenant_from_json,
                     body={"target": check_name("tenant", target)},
                     headers=_write_headers(None, reason, author, None))

    def _delete_tenant(self, name: str, hard: bool) -> _Call[None]:
        return _Call("DELETE", f"/v1/tenants/{_seg('tenant', name)}", _none,
                     {"hard": hard or None})

    def _restore_tenant(self, name: str) -> _Call[TenantInfo]:
        return _Call("POST", f"/v1/tenants/{_seg('tenant', name)}/restore", tenant_from_json)

    def _export(self, tenant: str, include_history: bool) -> _Call[dict[str, Any]]:
        return _Call("GET", f"/v1/tenants/{_seg('tenant', tenant)}/export", _same,
                     {"history": include_history or None})

    def _import(self, tenant: str, data: Mapping[str, Any], overwrite_existing: bool,
                preserve_versions: bool, reason: str | None, author: str | None,
                dry_run: bool) -> _Call[dict[str, int]]:
        if not isinstance(data, Mapping):
            raise InvalidRequest("an import is an export document (a mapping)")
        return _Call("POST", f"/v1/tenants/{_seg('tenant', tenant)}/import",
                     lambda d: {k: v for k, v in d.items() if k != "dry_run"},
                     {"overwrite_existing": overwrite_existing,
                      "preserve_versions": preserve_versions, "dry_run": dry_run or None},
                     body=dict(data), headers=_write_headers(None, reason, author, None))

    def _stats(self) -> _Call[dict[str, Any]]:
        return _Call("GET", "/v1/stats", _same)


# --------------------------------------------------------------------------- transport


def _client_args(url: str, token: str | None, timeout: float) -> dict[str, Any]:
    if not url.startswith(("http://", "https://")):
        raise InvalidRequest(f"a remote confhub URL starts with http:// or https://, not {url!r}")
    headers = {"accept": JSON, "user-agent": "confhub-remote"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    return {"base_url": url.rstrip("/"), "headers": headers,
            "timeout": httpx.Timeout(timeout, connect=min(timeout, 5.0))}


_CONNECT_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def _should_retry(call: _Call[Any], exc: Exception | None, status: int | None) -> bool:
    if exc is not None:
        return isinstance(exc, _CONNECT_ERRORS) or call.idempotent
    return call.idempotent and status in RETRY_STATUSES


def _transport_error(call: _Call[Any], exc: Exception, url: str) -> Unavailable:
    if isinstance(exc, _CONNECT_ERRORS):
        return Unavailable(f"cannot reach confhub at {url}: {exc}", url=url)
    maybe = "" if call.idempotent else "; the write may or may not have been applied"
    return Unavailable(f"{call.method} {call.path} failed: {type(exc).__name__}: {exc}{maybe}",
                       url=url)


def _decode(call: _Call[T], response: httpx.Response) -> T:
    if response.status_code >= 400:
        raise error_from_response(response)
    if response.status_code == 204 or not response.content:
        return call.decode(None)
    try:
        data = response.json()
    except ValueError:
        raise Unavailable(f"{call.method} {call.path}: the server answered invalid JSON") \
            from None
    return call.decode(data)


class RemoteHub(_HubPlans):
    """A confhub server, used through the same methods as an embedded ``Hub``."""

    backend = "http"

    def __init__(self, url: str, *, token: str | None = None, timeout: float = 10.0,
                 retries: int = 3, backoff: float = 0.05,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.url = url.rstrip("/")
        self.retries = retries
        self.backoff = backoff
        self._client = httpx.Client(**_client_args(url, token, timeout), transport=transport)

    def __repr__(self) -> str:  # never shows the token
        return f"<confhub.RemoteHub {self.url}>"

    def _run(self, call: _Call[T]) -> T:
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                response = self._client.request(call.method, call.path, **call.request_args())
            except httpx.TransportError as exc:
                if last or not _should_retry(call, exc, None):
                    raise _transport_error(call, exc, self.url) from exc
            else:
                if last or not _should_retry(call, None, response.status_code):
                    return _decode(call, response)
            time.sleep(self.backoff * (4 ** attempt))
        raise AssertionError("unreachable")  # pragma: no cover

    # ------------------------------------------------------------------ hub API

    def tenant(self, name: str = DEFAULT_TENANT) -> RemoteTenant:
        return RemoteTenant(self, check_name("tenant", name))

    def tenants(self, include_deleted: bool = False) -> list[TenantInfo]:
        return self._run(self._tenants(include_deleted))

    def tenant_info(self, name: str) -> TenantInfo:
        return self._run(self._tenant_info(name))

    def create_tenant(self, name: str, template: str | None = None,
                      overrides: Mapping[str, Mapping[str, Any]] | None = None, *,
                      reason: str | None = None, author: str | None = None) -> TenantInfo:
        return self._run(self._create_tenant(name, template, overrides, reason, author))

    def clone_tenant(self, source: str, target: str, *, reason: str | None = None,
                     author: str | None = None) -> TenantInfo:
        return self._run(self._clone_tenant(source, target, reason, author))

    def delete_tenant(self, name: str, hard: bool = False) -> None:
        self._run(self._delete_tenant(name, hard))

    def restore_tenant(self, name: str) -> TenantInfo:
        return self._run(self._restore_tenant(name))

    def export(self, tenant: str = DEFAULT_TENANT, include_history: bool = False
               ) -> dict[str, Any]:
        return self._run(self._export(tenant, include_history))

    def import_(self, tenant: str, data: Mapping[str, Any], overwrite_existing: bool = False,
                preserve_versions: bool = True, *, reason: str | None = None,
                author: str | None = None, dry_run: bool = False) -> dict[str, int]:
        return self._run(self._import(tenant, data, overwrite_existing, preserve_versions,
                                      reason, author, dry_run))

    def health(self) -> dict[str, Any]:
        """Never raises, like the embedded hub: ``ok`` False with ``error`` when the server
        or its storage cannot be reached."""
        try:
            response = self._client.get("/readyz")
        except httpx.TransportError as exc:
            return {"ok": False, "backend": "http", "url": self.url, "error": str(exc)}
        return _health(response, self.url)

    def stats(self) -> dict[str, Any]:
        return self._run(self._stats())

    def sync(self) -> None:
        """Nothing to do: every remote read asks the server, whose cache is exact."""

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> RemoteHub:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _health(response: httpx.Response, url: str) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        data = {}
    if response.status_code == 200 and isinstance(data, dict):
        return {**data, "url": url}
    error = data.get("error", {}) if isinstance(data, dict) else {}
    return {"ok": False, "backend": "http", "url": url,
            "error": error.get("message", f"HTTP {response.status_code}")}


class RemoteTenant(_TenantPlans):
    """One tenant of a remote hub; the methods of the embedded ``Tenant``."""

    def __init__(self, hub: RemoteHub, name: str) -> None:
        self._hub = hub
        self.name = name

    def __repr__(self) -> str:
        return f"<confhub.RemoteTenant {self.name!r} on {self._hub.url}>"

    def get(self, namespace: str, key: str, *, env: str = BASE_ENV,
            version: int | None = None) -> Entry:
        return self._hub._run(self._get(namespace, key, env, version))

    def list(self, namespace: str, *, env: str = BASE_ENV, prefix: str | None = None
             ) -> list[Entry]:
        return [entry_from_json(d) for d in _pages(
            lambda cursor: self._hub._run(self._list_page(namespace, env, prefix, cursor)))]

    def namespaces(self, *, env: str | None = None) -> list[str]:
        return list(self.namespace_counts(env=env))

    def namespace_counts(self, *, env: str | None = None) -> dict[str, int]:
        return self._hub._run(self._namespace_counts(env))

    def resolve(self, namespace: str, key: str, *, env: str = BASE_ENV) -> Resolved:
        return self._hub._run(self._resolve(namespace, key, env))

    def history(self, namespace: str, key: str, *, env: str = BASE_ENV, limit: int = 50,
                before: int | None = None) -> list[Version]:
        return self._hub._run(self._history(namespace, key, env, limit, before))

    def diff(self, namespace: str, key: str, from_version: int, to_version: int, *,
             env: str = BASE_ENV) -> list[dict[str, Any]]:
        return self._hub._run(self._diff(namespace, key, from_version, to_version, env))

    def changes(self, since: int = 0, limit: int = 1000) -> list[Change]:
        return self._hub._run(self._changes(since, limit))

    @property
    def revision(self) -> int:
        return self._hub._run(self._revision())

    def set(self, namespace: str, key: str, value: Any, *, env: str = BASE_ENV,
            expected_version: int | None = None, reason: str | None = None,
            author: str | None = None, metadata: Mapping[str, Any] | None = None,
            dry_run: bool = False, request_id: str | None = None) -> Entry:
        return self._hub._run(self._set(namespace, key, value, env, expected_version, reason,
                                        author, metadata, dry_run, request_id))

    def patch(self, namespace: str, key: str, patch: Any, *, env: str = BASE_ENV,
              expected_version: int | None = None, reason: str | None = None,
              author: str | None = None, metadata: Mapping[str, Any] | None = None,
              json_patch: bool = False, dry_run: bool = False,
              request_id: str | None = None) -> Entry:
        return self._hub._run(self._patch(namespace, key, patch, env, expected_version,
                                          reason, author, metadata, json_patch, dry_run,
                                          request_id))

    def delete(self, namespace: str, key: str, *, env: str = BASE_ENV,
               expected_version: int | None = None, reason: str | None = None,
               author: str | None = None, metadata: Mapping[str, Any] | None = None,
               dry_run: bool = False, request_id: str | None = None) -> Version:
        return self._hub._run(self._delete(namespace, key, env, expected_version, reason,
                                           author, metadata, dry_run, request_id))

    def rollback(self, namespace: str, key: str, to_version: int, *, env: str = BASE_ENV,
                 expected_version: int | None = None, reason: str | None = None,
                 author: str | None = None, metadata: Mapping[str, Any] | None = None,
                 dry_run: bool = False, request_id: str | None = None) -> Entry:
        return self._hub._run(self._rollback(namespace, key, to_version, env,
                                             expected_version, reason, author, metadata,
                                             dry_run, request_id))

    def transaction(self, *, reason: str | None = None, author: str | None = None,
                    metadata: Mapping[str, Any] | None = None, dry_run: bool = False
                    ) -> RemoteTransaction:
        return RemoteTransaction(self, reason, author, metadata, dry_run)

    def snapshot(self, label: str) -> Snapshot:
        return self._hub._run(self._snapshot(label))

    def snapshots(self) -> list[Snapshot]:
        return self._hub._run(self._snapshots())

    def restore(self, snapshot: str | None = None, *, revision: int | None = None,
                namespace: str | None = None, reason: str | None = None,
                author: str | None = None, dry_run: bool = False) -> list[Change]:
        return self._hub._run(self._restore(snapshot, revision, namespace, reason, author,
                                            dry_run))


def _pages(fetch: Callable[[str | None], Any]) -> Iterator[Mapping[str, Any]]:
    cursor: str | None = None
    while True:
        page = fetch(cursor)
        yield from page["items"]
        cursor = page.get("next_cursor")
        if not cursor:
            return


class _TxnOps:
    """Ops collected client-side, sent as one ``POST …/txn`` (the server commits them as one
    revision). Mirrors the embedded Transaction: one op per key, checked at once."""

    def __init__(self, tenant: _TenantPlans, reason: str | None, author: str | None,
                 metadata: Mapping[str, Any] | None, dry_run: bool) -> None:
        self._tenant = tenant
        self._reason, self._author, self._metadata = reason, author, metadata
        self._dry_run = dry_run
        self._ops: list[dict[str, Any]] = []
        self._seen: set[tuple[str, str, str]] = set()
        self._done = False
        self.revision: int | None = None
        self.changes: list[Change] = []

    def _add(self, op: str, namespace: str, key: str, env: str, expected_version: int | None,
             **extra: Any) -> Any:
        if self._done:
            raise InvalidRequest("this transaction has already been committed or aborted")
        address = (check_name("env", env), check_name("namespace", namespace),
                   check_name("key", key))
        if address in self._seen:
            raise InvalidRequest(f"{namespace}/{key} appears twice in one transaction; "
                                 "combine the two writes into one")
        if expected_version is not None:
            _int("expected_version", expected_version, 0)
        if "value" in extra:
            encode_value(extra["value"], max_bytes=1 << 62)
        self._seen.add(address)
        self._ops.append({"op": op, "namespace": namespace, "key": key, "env": env,
                          "expected_version": expected_version, **extra})
        return self

    def set(self, namespace: str, key: str, value: Any, *, env: str = BASE_ENV,
            expected_version: int | None = None) -> Any:
        return self._add("put", namespace, key, env, expected_version, value=value)

    def patch(self, namespace: str, key: str, patch: Any, *, env: str = BASE_ENV,
              expected_version: int | None = None, json_patch: bool = False) -> Any:
        return self._add("patch", namespace, key, env, expected_version, value=patch,
                         json_patch=json_patch)

    def delete(self, namespace: str, key: str, *, env: str = BASE_ENV,
               expected_version: int | None = None) -> Any:
        return self._add("delete", namespace, key, env, expected_version)

    def rollback(self, namespace: str, key: str, to_version: int, *, env: str = BASE_ENV,
                 expected_version: int | None = None) -> Any:
        return self._add("rollback", namespace, key, env, expected_version,
                         to_version=_int("to_version", to_version, 1))

    def _plan(self) -> _Call[Any] | None:
        if self._done:
            raise InvalidRequest("this transaction has already been committed or aborted")
        self._done = True
        if not self._ops:
            return None
        return self._tenant._txn(self._ops, self._reason, self._author, self._metadata,
                                 self._dry_run)

    def _finish(self, data: Any) -> list[Change]:
        self.revision = data["revision"]
        self.changes = [change_from_json(c) for c in data["changes"]]
        return self.changes


class RemoteTransaction(_TxnOps):
    """``with tenant.transaction(...) as tx:`` over HTTP: committed when the block ends."""

    def commit(self) -> list[Change]:
        plan = self._plan()
        if plan is None:
            return []
        assert isinstance(self._tenant, RemoteTenant)
        return self._finish(self._tenant._hub._run(plan))

    def __enter__(self) -> RemoteTransaction:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is not None:
            self._done = True
            return
        if not self._done:
            self.commit()


# --------------------------------------------------------------------------- async variant


class AsyncRemoteHub(_HubPlans):
    """The remote hub for asyncio code: the same methods, awaited."""

    backend = "http"

    def __init__(self, url: str, *, token: str | None = None, timeout: float = 10.0,
                 retries: int = 3, backoff: float = 0.05,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.url = url.rstrip("/")
        self.retries = retries
        self.backoff = backoff
        self._client = httpx.AsyncClient(**_client_args(url, token, timeout),
                                         transport=transport)

    def __repr__(self) -> str:
        return f"<confhub.AsyncRemoteHub {self.url}>"

    async def _run(self, call: _Call[T]) -> T:
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                response = await self._client.request(call.method, call.path,
                                                      **call.request_args())
            except httpx.TransportError as exc:
                if last or not _should_retry(call, exc, None):
                    raise _transport_error(call, exc, self.url) from exc
            else:
                if last or not _should_retry(call, None, response.status_code):
                    return _decode(call, response)
            await asyncio.sleep(self.backoff * (4 ** attempt))
        raise AssertionError("unreachable")  # pragma: no cover

    def tenant(self, name: str = DEFAULT_TENANT) -> AsyncRemoteTenant:
        return AsyncRemoteTenant(self, check_name("tenant", name))

    async def tenants(self, include_deleted: bool = False) -> list[TenantInfo]:
        return await self._run(self._tenants(include_deleted))

    async def tenant_info(self, name: str) -> TenantInfo:
        return await self._run(self._tenant_info(name))

    async def create_tenant(self, name: str, template: str | None = None,
                            overrides: Mapping[str, Mapping[str, Any]] | None = None, *,
                            reason: str | None = None, author: str | None = None
                            ) -> TenantInfo:
        return await self._run(self._create_tenant(name, template, overrides, reason, author))

    async def clone_tenant(self, source: str, target: str, *, reason: str | None = None,
                           author: str | None = None) -> TenantInfo:
        return await self._run(self._clone_tenant(source, target, reason, author))

    async def delete_tenant(self, name: str, hard: bool = False) -> None:
        await self._run(self._delete_tenant(name, hard))

    async def restore_tenant(self, name: str) -> TenantInfo:
        return await self._run(self._restore_tenant(name))

    async def export(self, tenant: str = DEFAULT_TENANT, include_history: bool = False
                     ) -> dict[str, Any]:
        return await self._run(self._export(tenant, include_history))

    async def import_(self, tenant: str, data: Mapping[str, Any],
                      overwrite_existing: bool = False, preserve_versions: bool = True, *,
                      reason: str | None = None, author: str | None = None,
                      dry_run: bool = False) -> dict[str, int]:
        return await self._run(self._import(tenant, data, overwrite_existing,
                                            preserve_versions, reason, author, dry_run))

    async def health(self) -> dict[str, Any]:
        try:
            response = await self._client.get("/readyz")
        except httpx.TransportError as exc:
            return {"ok": False, "backend": "http", "url": self.url, "error": str(exc)}
        return _health(response, self.url)

    async def stats(self) -> dict[str, Any]:
        return await self._run(self._stats())

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> AsyncRemoteHub:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class AsyncRemoteTenant(_TenantPlans):
    """One tenant of an :class:`AsyncRemoteHub`."""

    def __init__(self, hub: AsyncRemoteHub, name: str) -> None:
        self._hub = hub
        self.name = name

    async def get(self, namespace: str, key: str, *, env: str = BASE_ENV,
                  version: int | None = None) -> Entry:
        return await self._hub._run(self._get(namespace, key, env, version))

    async def list(self, namespace: str, *, env: str = BASE_ENV, prefix: str | None = None
                   ) -> list[Entry]:
        out: list[Entry] = []
        cursor: str | None = None
        while True:
            page = await self._hub._run(self._list_page(namespace, env, prefix, cursor))
            out.extend(entry_from_json(d) for d in page["items"])
            cursor = page.get("next_cursor")
            if not cursor:
                return out

    async def namespaces(self, *, env: str | None = None) -> list[str]:
        return list(await self.namespace_counts(env=env))

    async def namespace_counts(self, *, env: str | None = None) -> dict[str, int]:
        return await self._hub._run(self._namespace_counts(env))

    async def resolve(self, namespace: str, key: str, *, env: str = BASE_ENV) -> Resolved:
        return await self._hub._run(self._resolve(namespace, key, env))

    async def history(self, namespace: str, key: str, *, env: str = BASE_ENV,
                      limit: int = 50, before: int | None = None) -> list[Version]:
        return await self._hub._run(self._history(namespace, key, env, limit, before))

    async def diff(self, namespace: str, key: str, from_version: int, to_version: int, *,
                   env: str = BASE_ENV) -> list[dict[str, Any]]:
        return await self._hub._run(self._diff(namespace, key, from_version, to_version, env))

    async def changes(self, since: int = 0, limit: int = 1000) -> list[Change]:
        return await self._hub._run(self._changes(since, limit))

    async def set(self, namespace: str, key: str, value: Any, *, env: str = BASE_ENV,
                  expected_version: int | None = None, reason: str | None = None,
                  author: str | None = None, metadata: Mapping[str, Any] | None = None,
                  dry_run: bool = False, request_id: str | None = None) -> Entry:
        return await self._hub._run(self._set(namespace, key, value, env, expected_version,
                                              reason, author, metadata, dry_run, request_id))

    async def patch(self, namespace: str, key: str, patch: Any, *, env: str = BASE_ENV,
                    expected_version: int | None = None, reason: str | None = None,
                    author: str | None = None, metadata: Mapping[str, Any] | None = None,
                    json_patch: bool = False, dry_run: bool = False,
                    request_id: str | None = None) -> Entry:
        return await self._hub._run(self._patch(namespace, key, patch, env, expected_version,
                                                reason, author, metadata, json_patch, dry_run,
                                                request_id))

    async def delete(self, namespace: str, key: str, *, env: str = BASE_ENV,
                     expected_version: int | None = None, reason: str | None = None,
                     author: str | None = None, metadata: Mapping[str, Any] | None = None,
                     dry_run: bool = False, request_id: str | None = None) -> Version:
        return await self._hub._run(self._delete(namespace, key, env, expected_version,
                                                 reason, author, metadata, dry_run,
                                                 request_id))

    async def rollback(self, namespace: str, key: str, to_version: int, *,
                       env: str = BASE_ENV, expected_version: int | None = None,
                       reason: str | None = None, author: str | None = None,
                       metadata: Mapping[str, Any] | None = None, dry_run: bool = False,
                       request_id: str | None = None) -> Entry:
        return await self._hub._run(self._rollback(namespace, key, to_version, env,
                                                   expected_version, reason, author,
                                                   metadata, dry_run, request_id))

    def transaction(self, *, reason: str | None = None, author: str | None = None,
                    metadata: Mapping[str, Any] | None = None, dry_run: bool = False
                    ) -> AsyncRemoteTransaction:
        return AsyncRemoteTransaction(self, reason, author, metadata, dry_run)

    async def snapshot(self, label: str) -> Snapshot:
        return await self._hub._run(self._snapshot(label))

    async def snapshots(self) -> list[Snapshot]:
        return await self._hub._run(self._snapshots())

    async def restore(self, snapshot: str | None = None, *, revision: int | None = None,
                      namespace: str | None = None, reason: str | None = None,
                      author: str | None = None, dry_run: bool = False) -> list[Change]:
        return await self._hub._run(self._restore(snapshot, revision, namespace, reason,
                                                  author, dry_run))


class AsyncRemoteTransaction(_TxnOps):
    """``async with tenant.transaction(...) as tx:`` — committed when the block ends."""

    async def commit(self) -> list[Change]:
        plan = self._plan()
        if plan is None:
            return []
        assert isinstance(self._tenant, AsyncRemoteTenant)
        return self._finish(await self._tenant._hub._run(plan))

    async def __aenter__(self) -> AsyncRemoteTransaction:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        if exc_type is not None:
            self._done = True
            return
        if not self._done:
            await self.commit()

