"""Tenant administration: list, create (from a template, with overrides), clone, delete,
restore.

Owns ``TenantAdmin`` (part of ``Hub``). A tenant made from a template gets the template's
current values in every env, with the overrides merge-patched onto its base layer, all as its
first revision. A soft delete hides a tenant (restorable); a hard delete purges its history and
revokes its tokens.

May import: ``confhub.layering``, ``confhub.model``, ``confhub.errors``, ``confhub.store.base``
and the hub's ``core``, ``rows``, ``tenant``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import InvalidRequest, NotFound
from ..identity import Identity
from ..layering import merge_patch
from ..model import BASE_ENV, DEFAULT_TENANT, TenantInfo, check_name, encode_value, thaw
from ..store.base import VersionRow, WriteTxn
from ..values import decode_value
from .core import HubPart
from .rollouts import ROLLOUT_NS
from .rows import meta, new_row, tenant_info
from .tenant import Tenant


class TenantAdmin(HubPart):
    """Tenants of one hub (part of :class:`confhub.Hub`)."""

    def tenant(self, name: str = DEFAULT_TENANT, *, client_id: str | None = None,
               labels: Mapping[str, str] | str | None = None) -> Tenant:
        """The API of one tenant (nothing is read until you call a method). With
        ``client_id`` and/or ``labels`` (alone: a generated client id kept in the cache
        directory) this process reads it as a consumer: the staged values of the rollouts
        whose cohort it is in (DESIGN.md section 8)."""
        return Tenant(self._core, check_name("tenant", name), Identity.of(client_id, labels))

    def tenants(self, include_deleted: bool = False) -> list[TenantInfo]:
        return [tenant_info(row) for row in self._core.store.tenants(include_deleted)]

    def tenant_info(self, name: str) -> TenantInfo:
        row = self._core.store.tenant(check_name("tenant", name))
        if row is None:
            raise NotFound(f"tenant {name!r} does not exist", tenant=name)
        return tenant_info(row)

    def create_tenant(self, name: str, template: str | None = None,
                      overrides: Mapping[str, Mapping[str, Any]] | None = None, *,
                      reason: str | None = None, author: str | None = None) -> TenantInfo:
        """Create a tenant, optionally as a copy of ``template``'s current values (every env)
        with ``overrides`` (``{namespace: {key: value}}``, merge-patched onto the base layer),
        all in the new tenant's first revision."""
        check_name("tenant", name)
        rows = self._template_rows(template) if template is not None else []
        patches = self._check_overrides(overrides)
        written = meta(reason or (f"created from template {template!r}" if template else None),
                       author, None)
        max_bytes = self._core.max_value_bytes

        def create(txn: WriteTxn) -> None:
            copied: dict[tuple[str, str, str], Any] = {}
            for row in rows:
                copied[(row.env, row.namespace, row.key)] = row
            for (namespace, key), patch in patches.items():
                base = copied.get((BASE_ENV, namespace, key))
                value = merge_patch(decode_value(base.value), patch) if base else patch
                copied[(BASE_ENV, namespace, key)] = encode_value(
                    value, max_bytes=max_bytes, where=f"override {namespace}/{key}")
            for (env, namespace, key), item in sorted(copied.items()):
                text = item if isinstance(item, str) else item.value
                secret = False if isinstance(item, str) else item.secret
                txn.append(new_row(txn, env, namespace, key, 1, "import", text, False, written,
                                   secret=secret))

        self._core.commit(name, create, create=True)
        self._core.audit("tenant.create", name, target=name, reason=written.reason,
                         details={"template": template} if template else None)
        return self.tenant_info(name)

    def _template_rows(self, template: str) -> list[VersionRow]:
        check_name("tenant", template)
        row = self._core.store.tenant(template)
        if row is None or row.deleted_at is not None:
            raise NotFound(f"template tenant {template!r} does not exist", tenant=template)
        return [r for r in self._core.store.current_rows(template) if r.namespace != ROLLOUT_NS]

    def _check_overrides(self, overrides: Mapping[str, Mapping[str, Any]] | None
                         ) -> dict[tuple[str, str], Any]:
        checked: dict[tuple[str, str], Any] = {}
        if not overrides:
            return checked
        if not isinstance(overrides, Mapping):
            raise InvalidRequest("overrides must be {namespace: {key: value}}")
        for namespace, keys in overrides.items():
            check_name("namespace", namespace)
            if not isinstance(keys, Mapping):
                raise InvalidRequest(f"overrides[{namespace!r}] must be {{key: value}}")
            for key, value in keys.items():
                check_name("key", key)
                encode_value(value, max_bytes=self._core.max_value_bytes,
                             where=f"override {namespace}/{key}")
                checked[(namespace, key)] = thaw(value)
        return checked

    def clone_tenant(self, source: str, target: str, *, reason: str | None = None,
                     author: str | None = None) -> TenantInfo:
        """A new tenant with ``source``'s current values in every env (history starts anew)."""
        return self.create_tenant(target, template=source,
                                  reason=reason or f"cloned from {source!r}", author=author)

    def delete_tenant(self, name: str, hard: bool = False) -> None:
        """Soft delete (hidden, restorable) or, with ``hard=True``, purge all of its history."""
        check_name("tenant", name)
        if name == DEFAULT_TENANT:
            raise InvalidRequest("the 'default' tenant always exists and cannot be deleted")
        core = self._core
        if hard:
            core.store.purge_tenant(name)
            core.tokens.reload()  # its tokens were revoked with it
        else:
            core.store.set_tenant_deleted(name, True)
        core.audit("tenant.purge" if hard else "tenant.delete", name, target=name)
        core.cache.evict(name)

    def restore_tenant(self, name: str) -> TenantInfo:
        """Undo a soft delete."""
        check_name("tenant", name)
        self._core.store.set_tenant_deleted(name, False)
        self._core.audit("tenant.restore", name, target=name)
        self._core.cache.evict(name)
        return self.tenant_info(name)
