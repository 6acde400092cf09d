"""The synchronous client: ``RemoteHub`` (what ``confhub.open("http://…")`` returns),
``RemoteTenant`` and ``RemoteTransaction``, on ``httpx.Client``."""

from __future__ import annotations

import builtins
import os
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, Literal, TypeVar
from urllib.parse import quote

import httpx

from ..audit import AuditEvent
from ..errors import InvalidRequest
from ..identity import Consumer, Identity
from ..live import MISSING, Live, default_cache_file
from ..model import (
    BASE_ENV,
    DEFAULT_TENANT,
    Change,
    Entry,
    Resolved,
    RetentionPolicy,
    Schema,
    Snapshot,
    TenantInfo,
    ValidationReport,
    Version,
    check_name,
    thaw,
)
from ..tokens import TokenInfo
from ..validation import as_model
from .plans import _Call, _HubPlans, _pages, _TenantPlans, _TxnOps
from .rollouts import RemoteRollouts
from .transport import _client_args, _decode, _health, _should_retry, _transport_error
from .watch import RemoteWatchHandle, _Watching, watch_headers
from .wire import entry_from_json

__all__ = ["RemoteHub", "RemoteTenant", "RemoteTransaction"]

T = TypeVar("T")
M = TypeVar("M")


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

    def tenant(self, name: str = DEFAULT_TENANT, *, client_id: str | None = None,
               labels: Mapping[str, str] | str | None = None) -> RemoteTenant:
        """One tenant; with ``client_id`` and/or ``labels`` this process reads it as a
        consumer (staged rollout values for its cohort; see DESIGN.md section 8)."""
        return RemoteTenant(self, check_name("tenant", name), Identity.of(client_id, labels))

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

    def export(self, tenant: str = DEFAULT_TENANT, include_history: bool = False, *,
               include_secrets: bool = False) -> dict[str, Any]:
        call = self._export(tenant, include_history)
        if include_secrets:
            call.params["include_secrets"] = True
        return self._run(call)

    # ------------------------------------------------------------------ security

    def create_token(self, *, tenant: str | None = None, role: str = "viewer",
                     namespaces: Sequence[str] | str | None = None,
                     expires_in: int | str | None = None, name: str | None = None,
                     created_by: str | None = None) -> tuple[str, TokenInfo]:
        """``POST /v1/tokens``; ``created_by`` is the calling token's name, set by the
        server."""
        if isinstance(namespaces, str):
            namespaces = [n.strip() for n in namespaces.split(",") if n.strip()]
        body = {"tenant": tenant, "role": role, "expires_in": expires_in, "name": name,
                "namespaces": list(namespaces) if namespaces is not None else None}
        data = self._run(_Call("POST", "/v1/tokens", lambda d: d, body=body))
        return data["token"], _token_info(data)

    def tokens(self, tenant: str | None = None, *, include_revoked: bool = False
               ) -> list[TokenInfo]:
        return self._run(_Call("GET", "/v1/tokens",
                               lambda d: [_token_info(i) for i in d["items"]],
                               {"tenant": tenant, "include_revoked": include_revoked or None}))

    def token_info(self, token_id: str) -> TokenInfo:
        return self._run(_Call("GET", f"/v1/tokens/{quote(token_id, safe='')}", _token_info))

    def revoke_token(self, token_id: str) -> TokenInfo:
        return self._run(_Call("DELETE", f"/v1/tokens/{quote(token_id, safe='')}",
                               _token_info))

    def audit(self, tenant: str | None = None, *, after: int = 0, limit: int = 1000,
              action: str | None = None, actor: str | None = None,
              target: str | None = None, since: datetime | None = None,
              until: datetime | None = None) -> list[AuditEvent]:
        if tenant is None:
            raise InvalidRequest("over HTTP the audit log is read per tenant: name it")
        params = {"after": after, "limit": limit, "action": action, "actor": actor,
                  "target": target, "since": since.isoformat() if since else None,
                  "until": until.isoformat() if until else None}
        return self._run(_Call("GET", f"/v1/tenants/{quote(tenant, safe='')}/audit",
                               lambda d: [_audit_event(i) for i in d["items"]], params))

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

    def retention(self, tenant: str | None = None) -> list[RetentionPolicy]:
        """Retention policies of ``tenant`` (over HTTP a tenant must be named)."""
        if tenant is None:
            raise InvalidRequest("name a tenant: a server lists retention per tenant")
        return self._run(self._retention(tenant))

    def set_retention(self, tenant: str, *, namespace: str | None = None,
                      keep_last: int | None = None, keep_for_seconds: int | None = None
                      ) -> RetentionPolicy:
        return self._run(self._set_retention(tenant, namespace, keep_last, keep_for_seconds))

    def compact(self, tenant: str | None = None) -> dict[str, Any]:
        """Apply a tenant's retention now (over HTTP a tenant must be named)."""
        if tenant is None:
            raise InvalidRequest("name a tenant: a server compacts one tenant per request")
        return self._run(self._compact(tenant))

    def doctor(self, tenant: str | None = None) -> dict[str, Any]:
        """The server's integrity checks (its own cache against its storage)."""
        return self._run(self._doctor(tenant))

    def sync(self) -> None:
        """Nothing to do: every remote read asks the server, whose cache is exact."""

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> RemoteHub:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class RemoteTenant(_Watching, _TenantPlans):
    """One tenant of a remote hub; the methods of the embedded ``Tenant``."""

    def __init__(self, hub: RemoteHub, name: str, identity: Identity | None = None) -> None:
        self._hub = hub
        self.name = name
        self.identity = identity
        self._identity_headers = identity.headers() if identity is not None else {}
        self.rollouts = RemoteRollouts(self)

    def _run(self, call: _Call[T]) -> T:
        """Run a plan as this tenant's consumer (its identity headers on every request)."""
        if self._identity_headers:
            call.headers.update(self._identity_headers)
        return self._hub._run(call)

    def _stream_source(self) -> tuple[str, dict[str, str], str]:
        return (self._hub.url, {**watch_headers(self._hub._client), **self._identity_headers},
                self.name)

    def report(self, rollout_id: str, status: str, reason: str | None = None) -> None:
        """Report on a running rollout as this consumer (see ``rollouts.report``)."""
        self.rollouts.report(rollout_id, status, reason)

    def report_health(self, ok: bool = True, reason: str | None = None) -> list[str]:
        """Report this consumer's health to every running rollout whose cohort it is in."""
        return self.rollouts.report_health(ok, reason)

    def consumers(self, client_id: str | None = None) -> builtins.list[Consumer]:
        return self.rollouts.consumers(client_id)

    def __repr__(self) -> str:
        return f"<confhub.RemoteTenant {self.name!r} on {self._hub.url}>"

    def get(self, namespace: str, key: str, *, env: str = BASE_ENV,
            version: int | None = None, reveal: bool = False) -> Entry:
        call = self._get(namespace, key, env, version)
        if reveal:
            call.params["reveal"] = True
        return self._run(call)

    def list(self, namespace: str, *, env: str = BASE_ENV, prefix: str | None = None
             ) -> builtins.list[Entry]:
        return [entry_from_json(d) for d in _pages(
            lambda cursor: self._run(self._list_page(namespace, env, prefix, cursor)))]

    def namespaces(self, *, env: str | None = None) -> builtins.list[str]:
        return list(self.namespace_counts(env=env))

    def namespace_counts(self, *, env: str | None = None) -> dict[str, int]:
        return self._run(self._namespace_counts(env))

    def resolve(self, namespace: str, key: str, *, env: str = BASE_ENV) -> Resolved:
        return self._run(self._resolve(namespace, key, env))

    def history(self, namespace: str, key: str, *, env: str = BASE_ENV, limit: int = 50,
                before: int | None = None) -> builtins.list[Version]:
        return self._run(self._history(namespace, key, env, limit, before))

    def diff(self, namespace: str, key: str, from_version: int, to_version: int, *,
             env: str = BASE_ENV) -> builtins.list[dict[str, Any]]:
        return self._run(self._diff(namespace, key, from_version, to_version, env))

    def changes(self, since: int = 0, limit: int = 1000, *,
                wait: float | None = None) -> builtins.list[Change]:
        return self._run(self._changes(since, limit, wait))

    def watch(self, callback: Callable[[Change], object], namespace: str | None = None,
              key: str | None = None, env: str | None = None,
              since: int | None = None) -> RemoteWatchHandle:
        """Call ``callback(change)`` for every change after ``since`` (None: from now), in
        a thread of its own, reconnecting and resuming by itself; ``stop()`` ends it."""
        return RemoteWatchHandle(self.watch_events(namespace, key, env, since), callback)

    def live(self, namespace: str, key: str, *, model: Callable[..., T] | None = None,
             env: str = BASE_ENV, default: Any = MISSING,
             cache_file: str | os.PathLike[str] | None | Literal[False] = None) -> Live[T]:
        """Like the embedded ``live``; the last good value is also kept in ``cache_file``
        (default under ``~/.cache/confhub``; False: none) and used, with a warning, when the
        server cannot be reached at start."""
        check_name("namespace", namespace)
        check_name("key", key)
        check_name("env", env)
        if cache_file is None:
            cache_file = default_cache_file(self._hub.url, self.name, namespace, key, env)
        return Live(self, namespace, key, env=env, model=model, default=default,
                    cache_file=cache_file or None)

    @property
    def revision(self) -> int:
        return self._run(self._revision())

    def set(self, namespace: str, key: str, value: Any, *, env: str = BASE_ENV,
            expected_version: int | None = None, reason: str | None = None,
            author: str | None = None, metadata: Mapping[str, Any] | None = None,
            dry_run: bool = False, request_id: str | None = None,
            secret: bool | Sequence[str] = False) -> Entry:
        call = self._set(namespace, key, value, env, expected_version, reason, author,
                         metadata, dry_run, request_id)
        if secret is not False and secret is not None:
            if secret is not True:
                raise InvalidRequest("over HTTP, secret=True (the whole value) is supported; "
                                     "mark fields secret with x-secret in the schema")
            call.params["secret"] = True
        return self._run(call)

    def patch(self, namespace: str, key: str, patch: Any, *, env: str = BASE_ENV,
              expected_version: int | None = None, reason: str | None = None,
              author: str | None = None, metadata: Mapping[str, Any] | None = None,
              json_patch: bool = False, dry_run: bool = False,
              request_id: str | None = None) -> Entry:
        return self._run(self._patch(namespace, key, patch, env, expected_version,
                                          reason, author, metadata, json_patch, dry_run,
                                          request_id))

    def delete(self, namespace: str, key: str, *, env: str = BASE_ENV,
               expected_version: int | None = None, reason: str | None = None,
               author: str | None = None, metadata: Mapping[str, Any] | None = None,
               dry_run: bool = False, request_id: str | None = None) -> Version:
        return self._run(self._delete(namespace, key, env, expected_version, reason,
                                           author, metadata, dry_run, request_id))

    def rollback(self, namespace: str, key: str, to_version: int, *, env: str = BASE_ENV,
                 expected_version: int | None = None, reason: str | None = None,
                 author: str | None = None, metadata: Mapping[str, Any] | None = None,
                 dry_run: bool = False, request_id: str | None = None) -> Entry:
        return self._run(self._rollback(namespace, key, to_version, env,
                                             expected_version, reason, author, metadata,
                                             dry_run, request_id))

    def transaction(self, *, reason: str | None = None, author: str | None = None,
                    metadata: Mapping[str, Any] | None = None, dry_run: bool = False
                    ) -> RemoteTransaction:
        return RemoteTransaction(self, reason, author, metadata, dry_run)

    def snapshot(self, label: str) -> Snapshot:
        return self._run(self._snapshot(label))

    def snapshots(self) -> builtins.list[Snapshot]:
        return self._run(self._snapshots())

    def restore(self, snapshot: str | None = None, *, revision: int | None = None,
                namespace: str | None = None, reason: str | None = None,
                author: str | None = None, dry_run: bool = False) -> builtins.list[Change]:
        return self._run(self._restore(snapshot, revision, namespace, reason, author,
                                            dry_run))

    def validate(self, namespace: str, key: str, value: Any, *, env: str = BASE_ENV
                 ) -> ValidationReport:
        return self._run(self._validate(namespace, key, value, env))

    def set_schema(self, namespace: str, schema: Any,
                   rules: Sequence[Mapping[str, Any]] | None = None, *,
                   key_pattern: str | None = None, all_tenants: bool = False,
                   reason: str | None = None, author: str | None = None,
                   dry_run: bool = False) -> Schema:
        return self._run(self._set_schema(namespace, schema, rules, key_pattern,
                                               all_tenants, reason, author, dry_run))

    def get_schema(self, namespace: str, *, version: int | None = None,
                   all_tenants: bool = False) -> Schema:
        return self._run(self._get_schema(namespace, version, all_tenants))

    def schemas(self, *, all_tenants: bool = False) -> builtins.list[Schema]:
        return self._run(self._schemas(all_tenants))

    def schema_history(self, namespace: str, *, all_tenants: bool = False, limit: int = 50
                       ) -> builtins.list[Schema]:
        return self._run(self._schema_history(namespace, all_tenants, limit))

    def delete_schema(self, namespace: str, *, all_tenants: bool = False,
                      reason: str | None = None, author: str | None = None) -> Schema:
        return self._run(self._delete_schema(namespace, all_tenants, reason, author))

    def rollback_schema(self, namespace: str, to_version: int, *, all_tenants: bool = False,
                        reason: str | None = None, author: str | None = None,
                        dry_run: bool = False) -> Schema:
        return self._run(self._rollback_schema(namespace, to_version, all_tenants,
                                                    reason, author, dry_run))

    def schema_annotations(self, namespace: str, key: str
                           ) -> dict[str, builtins.list[str]]:
        return self._run(self._schema_annotations(namespace, key))

    def get_typed(self, namespace: str, key: str, model: type[M], *, env: str = BASE_ENV
                  ) -> M:
        resolved = self.resolve(namespace, key, env=env)
        return as_model(model, thaw(resolved.value),
                        f"{namespace}/{key}" + ("" if env == BASE_ENV else f" (env {env})"))


class RemoteTransaction(_TxnOps):
    """``with tenant.transaction(...) as tx:`` over HTTP: committed when the block ends."""

    def commit(self) -> builtins.list[Change]:
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


def _token_info(d: Any) -> TokenInfo:
    return TokenInfo(
        id=d["id"], name=d["name"], tenant=d.get("tenant"), role=d["role"],
        namespaces=tuple(d["namespaces"]) if d.get("namespaces") is not None else None,
        created_at=datetime.fromisoformat(d["created_at"]),
        expires_at=datetime.fromisoformat(d["expires_at"]) if d.get("expires_at") else None,
        revoked_at=datetime.fromisoformat(d["revoked_at"]) if d.get("revoked_at") else None,
        created_by=d.get("created_by"))


def _audit_event(d: Any) -> AuditEvent:
    return AuditEvent(id=d["id"], at=datetime.fromisoformat(d["at"]), action=d["action"],
                      actor=d.get("actor"), tenant=d.get("tenant"), target=d.get("target"),
                      request_id=d.get("request_id"), client=d.get("client"),
                      reason=d.get("reason"), details=d.get("details") or {})
