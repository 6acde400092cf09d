"""The asyncio client: ``AsyncRemoteHub`` (``confhub.open_async``), same methods, awaited."""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, TypeVar

import httpx

from ..identity import Identity
from ..model import (
    BASE_ENV,
    DEFAULT_TENANT,
    Change,
    Entry,
    Resolved,
    Schema,
    Snapshot,
    TenantInfo,
    ValidationReport,
    Version,
    check_name,
    thaw,
)
from ..validation import as_model
from .plans import _Call, _HubPlans, _TenantPlans, _TxnOps
from .transport import _client_args, _decode, _health, _should_retry, _transport_error
from .watch import _Watching, watch_headers
from .wire import entry_from_json

__all__ = ["AsyncRemoteHub", "AsyncRemoteTenant", "AsyncRemoteTransaction"]

T = TypeVar("T")
M = TypeVar("M")


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

    def tenant(self, name: str = DEFAULT_TENANT, *, client_id: str | None = None,
               labels: Mapping[str, str] | str | None = None) -> AsyncRemoteTenant:
        """One tenant; with ``client_id`` and/or ``labels`` read as that consumer."""
        return AsyncRemoteTenant(self, check_name("tenant", name),
                                 Identity.of(client_id, labels))

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


class AsyncRemoteTenant(_Watching, _TenantPlans):
    """One tenant of an :class:`AsyncRemoteHub`."""

    def __init__(self, hub: AsyncRemoteHub, name: str, identity: Identity | None = None
                 ) -> None:
        self._hub = hub
        self.name = name
        self.identity = identity
        self._identity_headers = identity.headers() if identity is not None else {}

    async def _run(self, call: _Call[T]) -> T:
        """Run a plan as this tenant's consumer (its identity headers on every request)."""
        if self._identity_headers:
            call.headers.update(self._identity_headers)
        return await self._hub._run(call)

    def _stream_source(self) -> tuple[str, dict[str, str], str]:
        return (self._hub.url, {**watch_headers(self._hub._client), **self._identity_headers},
                self.name)

    async def get(self, namespace: str, key: str, *, env: str = BASE_ENV,
                  version: int | None = None) -> Entry:
        return await self._run(self._get(namespace, key, env, version))

    async def list(self, namespace: str, *, env: str = BASE_ENV, prefix: str | None = None
                   ) -> builtins.list[Entry]:
        out: builtins.list[Entry] = []
        cursor: str | None = None
        while True:
            page = await self._run(self._list_page(namespace, env, prefix, cursor))
            out.extend(entry_from_json(d) for d in page["items"])
            cursor = page.get("next_cursor")
            if not cursor:
                return out

    async def namespaces(self, *, env: str | None = None) -> builtins.list[str]:
        return list(await self.namespace_counts(env=env))

    async def namespace_counts(self, *, env: str | None = None) -> dict[str, int]:
        return await self._run(self._namespace_counts(env))

    async def resolve(self, namespace: str, key: str, *, env: str = BASE_ENV) -> Resolved:
        return await self._run(self._resolve(namespace, key, env))

    async def history(self, namespace: str, key: str, *, env: str = BASE_ENV,
                      limit: int = 50, before: int | None = None) -> builtins.list[Version]:
        return await self._run(self._history(namespace, key, env, limit, before))

    async def diff(self, namespace: str, key: str, from_version: int, to_version: int, *,
                   env: str = BASE_ENV) -> builtins.list[dict[str, Any]]:
        return await self._run(self._diff(namespace, key, from_version, to_version, env))

    async def changes(self, since: int = 0, limit: int = 1000, *,
                      wait: float | None = None) -> builtins.list[Change]:
        return await self._run(self._changes(since, limit, wait))

    async def set(self, namespace: str, key: str, value: Any, *, env: str = BASE_ENV,
                  expected_version: int | None = None, reason: str | None = None,
                  author: str | None = None, metadata: Mapping[str, Any] | None = None,
                  dry_run: bool = False, request_id: str | None = None) -> Entry:
        return await self._run(self._set(namespace, key, value, env, expected_version,
                                              reason, author, metadata, dry_run, request_id))

    async def patch(self, namespace: str, key: str, patch: Any, *, env: str = BASE_ENV,
                    expected_version: int | None = None, reason: str | None = None,
                    author: str | None = None, metadata: Mapping[str, Any] | None = None,
                    json_patch: bool = False, dry_run: bool = False,
                    request_id: str | None = None) -> Entry:
        return await self._run(self._patch(namespace, key, patch, env, expected_version,
                                                reason, author, metadata, json_patch, dry_run,
                                                request_id))

    async def delete(self, namespace: str, key: str, *, env: str = BASE_ENV,
                     expected_version: int | None = None, reason: str | None = None,
                     author: str | None = None, metadata: Mapping[str, Any] | None = None,
                     dry_run: bool = False, request_id: str | None = None) -> Version:
        return await self._run(self._delete(namespace, key, env, expected_version,
                                                 reason, author, metadata, dry_run,
                                                 request_id))

    async def rollback(self, namespace: str, key: str, to_version: int, *,
                       env: str = BASE_ENV, expected_version: int | None = None,
                       reason: str | None = None, author: str | None = None,
                       metadata: Mapping[str, Any] | None = None, dry_run: bool = False,
                       request_id: str | None = None) -> Entry:
        return await self._run(self._rollback(namespace, key, to_version, env,
                                                   expected_version, reason, author,
                                                   metadata, dry_run, request_id))

    def transaction(self, *, reason: str | None = None, author: str | None = None,
                    metadata: Mapping[str, Any] | None = None, dry_run: bool = False
                    ) -> AsyncRemoteTransaction:
        return AsyncRemoteTransaction(self, reason, author, metadata, dry_run)

    async def snapshot(self, label: str) -> Snapshot:
        return await self._run(self._snapshot(label))

    async def snapshots(self) -> builtins.list[Snapshot]:
        return await self._run(self._snapshots())

    async def restore(self, snapshot: str | None = None, *, revision: int | None = None,
                      namespace: str | None = None, reason: str | None = None,
                      author: str | None = None, dry_run: bool = False) -> builtins.list[Change]:
        return await self._run(self._restore(snapshot, revision, namespace, reason,
                                                  author, dry_run))

    async def validate(self, namespace: str, key: str, value: Any, *, env: str = BASE_ENV
                 ) -> ValidationReport:
        return await self._run(self._validate(namespace, key, value, env))

    async def set_schema(self, namespace: str, schema: Any,
                   rules: Sequence[Mapping[str, Any]] | None = None, *,
                   key_pattern: str | None = None, all_tenants: bool = False,
                   reason: str | None = None, author: str | None = None,
                   dry_run: bool = False) -> Schema:
        return await self._run(self._set_schema(namespace, schema, rules, key_pattern,
                                               all_tenants, reason, author, dry_run))

    async def get_schema(self, namespace: str, *, version: int | None = None,
                   all_tenants: bool = False) -> Schema:
        return await self._run(self._get_schema(namespace, version, all_tenants))

    async def schemas(self, *, all_tenants: bool = False) -> builtins.list[Schema]:
        return await self._run(self._schemas(all_tenants))

    async def schema_history(self, namespace: str, *, all_tenants: bool = False, limit: int = 50
                       ) -> builtins.list[Schema]:
        return await self._run(self._schema_history(namespace, all_tenants, limit))

    async def delete_schema(self, namespace: str, *, all_tenants: bool = False,
                      reason: str | None = None, author: str | None = None) -> Schema:
        return await self._run(self._delete_schema(namespace, all_tenants, reason, author))

    async def rollback_schema(self, namespace: str, to_version: int, *, all_tenants: bool = False,
                        reason: str | None = None, author: str | None = None,
                        dry_run: bool = False) -> Schema:
        return await self._run(self._rollback_schema(namespace, to_version, all_tenants,
                                                    reason, author, dry_run))

    async def schema_annotations(self, namespace: str, key: str
                           ) -> dict[str, builtins.list[str]]:
        return await self._run(self._schema_annotations(namespace, key))

    async def get_typed(self, namespace: str, key: str, model: type[M], *, env: str = BASE_ENV
                  ) -> M:
        resolved = await self.resolve(namespace, key, env=env)
        return as_model(model, thaw(resolved.value),
                        f"{namespace}/{key}" + ("" if env == BASE_ENV else f" (env {env})"))


class AsyncRemoteTransaction(_TxnOps):
    """``async with tenant.transaction(...) as tx:`` — committed when the block ends."""

    async def commit(self) -> builtins.list[Change]:
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
