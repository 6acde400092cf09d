"""Every remote call written once, as a plan (``_Call``) that does no I/O.

The sync and async clients differ only in how they run a plan, so the mapping from Python
arguments to HTTP (paths, query, headers, bodies, validation before sending) lives here once.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import quote

from ..errors import InvalidRequest
from ..model import (
    BASE_ENV,
    Change,
    Entry,
    Resolved,
    RetentionPolicy,
    Schema,
    Snapshot,
    TenantInfo,
    ValidationIssue,
    ValidationReport,
    Version,
    check_name,
    check_wait,
    encode_value,
)
from .wire import (
    change_from_json,
    entry_from_json,
    report_from_json,
    resolved_from_json,
    schema_from_json,
    snapshot_from_json,
    tenant_from_json,
    version_from_json,
)

T = TypeVar("T")

JSON = "application/json"
MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
_NO_BODY = object()



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
    timeout: float | None = None  # this call's own (a long poll outlasts the default)

    @property
    def idempotent(self) -> bool:
        return self.method == "GET"

    def request_args(self) -> dict[str, Any]:
        params = {k: _query(v) for k, v in self.params.items() if v is not None}
        args: dict[str, Any] = {"params": params, "headers": dict(self.headers)}
        if self.timeout is not None:
            args["timeout"] = self.timeout
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

    def _changes(self, since: int, limit: int, wait: float | None = None
                 ) -> _Call[list[Change]]:
        if wait is not None:
            wait = check_wait(wait)
        return _Call("GET", self._p("changes"), _items(change_from_json),
                     {"since": _int("since", since, 0),
                      "limit": min(_int("limit", limit, 1), 10_000), "wait": wait},
                     timeout=None if wait is None else wait + 10.0)

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

    def _validate(self, namespace: str, key: str, value: Any, env: str
                  ) -> _Call[ValidationReport]:
        body = {"namespace": check_name("namespace", namespace), "key": check_name("key", key),
                "value": value, "env": check_name("env", env)}
        return _Call("POST", self._p("validate"), report_from_json, body=body)

    def _schema_path(self, namespace: str, *rest: str) -> str:
        return self._p("schemas", _seg("namespace", namespace), *rest)

    def _set_schema(self, namespace: str, schema: Any, rules: Any, key_pattern: str | None,
                    all_tenants: bool, reason: str | None, author: str | None,
                    dry_run: bool) -> _Call[Schema]:
        if isinstance(schema, type) and hasattr(schema, "model_json_schema"):
            schema = schema.model_json_schema()  # a pydantic model: derived client-side
        body = {"schema": schema, "rules": [dict(r) for r in rules] if rules else None,
                "key_pattern": key_pattern, "reason": reason, "author": author}
        return _Call("PUT", self._schema_path(namespace), schema_from_json,
                     {"all_tenants": all_tenants or None, "dry_run": dry_run or None},
                     body=body)

    def _get_schema(self, namespace: str, version: int | None, all_tenants: bool
                    ) -> _Call[Schema]:
        if version is not None:
            _int("version", version, 1)
        return _Call("GET", self._schema_path(namespace), schema_from_json,
                     {"version": version, "all_tenants": all_tenants or None})

    def _schemas(self, all_tenants: bool) -> _Call[list[Schema]]:
        return _Call("GET", self._p("schemas"), _items(schema_from_json),
                     {"all_tenants": all_tenants or None})

    def _schema_history(self, namespace: str, all_tenants: bool, limit: int
                        ) -> _Call[list[Schema]]:
        return _Call("GET", self._schema_path(namespace, "history"), _items(schema_from_json),
                     {"all_tenants": all_tenants or None,
                      "limit": min(_int("limit", limit, 1), 10_000)})

    def _delete_schema(self, namespace: str, all_tenants: bool, reason: str | None,
                       author: str | None) -> _Call[Schema]:
        return _Call("DELETE", self._schema_path(namespace), schema_from_json,
                     {"all_tenants": all_tenants or None},
                     headers=_write_headers(None, reason, author, None))

    def _rollback_schema(self, namespace: str, to_version: int, all_tenants: bool,
                         reason: str | None, author: str | None, dry_run: bool
                         ) -> _Call[Schema]:
        return _Call("POST", self._schema_path(namespace, "rollback"), schema_from_json,
                     {"all_tenants": all_tenants or None, "dry_run": dry_run or None},
                     body={"to_version": _int("to_version", to_version, 1), "reason": reason,
                           "author": author})

    def _schema_annotations(self, namespace: str, key: str) -> _Call[dict[str, list[str]]]:
        return _Call("GET", self._schema_path(namespace, "annotations"),
                     lambda d: {k: list(v) for k, v in d.items()},
                     {"key": check_name("key", key)})

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

    def _retention(self, tenant: str) -> _Call[list[RetentionPolicy]]:
        return _Call("GET", f"/v1/tenants/{_seg('tenant', tenant)}/retention",
                     lambda body: [RetentionPolicy(**p) for p in body["policies"]])

    def _set_retention(self, tenant: str, namespace: str | None, keep_last: int | None,
                       keep_for_seconds: int | None) -> _Call[RetentionPolicy]:
        path = f"/v1/tenants/{_seg('tenant', tenant)}/retention"
        if namespace is not None:
            path += f"/{_seg('namespace', namespace)}"
        return _Call("PUT", path, lambda body: RetentionPolicy(**body),
                     body={"keep_last": keep_last, "keep_for_seconds": keep_for_seconds})

    def _compact(self, tenant: str) -> _Call[dict[str, Any]]:
        return _Call("POST", f"/v1/tenants/{_seg('tenant', tenant)}/compact", _same)

    def _doctor(self, tenant: str | None) -> _Call[dict[str, Any]]:
        return _Call("GET", "/v1/doctor", _same, {"tenant": tenant})


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
        self.warnings: list[ValidationIssue] = []

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
        self.warnings = [ValidationIssue.from_dict(w) for w in data.get("warnings") or ()]
        return self.changes
