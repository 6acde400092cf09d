"""``doctor``: check that what is stored is what was written, and that the cache agrees.

Owns ``Integrity`` (part of ``Hub``). Each check reads and reports; none repairs anything —
a finding is for a person to judge (restore a backup, re-run a migration), never fixed
silently. The checks:

    storage     the engine's own check (SQLite ``PRAGMA integrity_check``)
    checksum    every version's stored checksum against its content (hex SHA-256 of the
                row's canonical JSON, see ``store/maintenance.py``): a value changed behind
                confhub's back, or a missing checksum
    revisions   every revision after the tenant's ``compacted_revision`` up to its current
                one is carried by at least one version (each commit wrote one), and none
                is above the current one
    current     each key's current pointer is its newest version
    cache       every tenant view this process holds in memory equals storage: the same
                keys, versions and values (compared at one revision, retried while writes
                move it)

A finding names the tenant, the key and version where there is one, never a value.

May import: ``confhub.model``, ``confhub.errors`` and the hub's ``core``, ``cache``.
"""

from __future__ import annotations

from typing import Any

from ..model import Entry
from .cache import entry_from_row
from .core import HubPart

CACHE_ATTEMPTS = 5
MAX_FINDINGS_PER_CHECK = 100


def _finding(check: str, tenant: str | None, message: str, **where: Any) -> dict[str, Any]:
    return {"check": check, "tenant": tenant, "message": message, **where}


class Integrity(HubPart):
    """The ``doctor`` checks (part of :class:`confhub.Hub`)."""

    def doctor(self, tenant: str | None = None) -> dict[str, Any]:
        """Run every check (on one tenant, or all, soft-deleted ones included) and report
        ``{"ok", "backend", "findings": [...], "checked": {...}}``. Changes nothing."""
        store = self._core.store
        findings: list[dict[str, Any]] = []
        for problem in store.integrity_findings()[:MAX_FINDINGS_PER_CHECK]:
            findings.append(_finding("storage", None, f"integrity_check: {problem}"))
        rows = [t for t in store.tenants(include_deleted=True)
                if tenant is None or t.id == tenant]
        versions = views = 0
        for info in rows:
            versions += self._checksums(info.id, findings)
            self._revisions(info.id, info.revision, info.compacted_revision, findings)
            for env, namespace, key, pointer, newest in store.stale_current_pointers(info.id):
                findings.append(_finding(
                    "current", info.id, f"{namespace}/{key}@{env} points at version "
                    f"{pointer} but its newest version is {newest or 'missing'}",
                    env=env, namespace=namespace, key=key, version=pointer))
            if self._core.cache.views.get(info.id) is not None:
                views += 1
                self._cache(info.id, findings)
        return {"ok": not findings, "backend": store.backend, "findings": findings,
                "checked": {"tenants": len(rows), "versions": versions, "cached_views": views,
                            "storage": store.backend == "sqlite"}}

    def _checksums(self, tenant: str, findings: list[dict[str, Any]]) -> int:
        store = self._core.store
        found = 0
        for row, stored in store.checksum_mismatches(tenant):
            found += 1
            if found > MAX_FINDINGS_PER_CHECK:
                continue
            problem = "has no checksum" if stored is None else \
                "does not match its checksum (changed outside confhub)"
            findings.append(_finding(
                "checksum", tenant, f"{row.namespace}/{row.key}@{row.env} version "
                f"{row.version} (revision {row.revision}) {problem}", env=row.env,
                namespace=row.namespace, key=row.key, version=row.version))
        return sum(1 for _ in store.version_index(tenant))

    def _revisions(self, tenant: str, revision: int, compacted: int,
                   findings: list[dict[str, Any]]) -> None:
        store = self._core.store
        missing = store.missing_revisions(tenant, compacted, revision, MAX_FINDINGS_PER_CHECK)
        if missing:
            shown = ", ".join(map(str, missing[:10])) + (" …" if len(missing) > 10 else "")
            findings.append(_finding(
                "revisions", tenant, f"revisions missing from the history: {shown} (expected "
                f"every revision from {compacted + 1} to {revision})", revisions=missing))
        beyond = store.revisions_beyond(tenant, revision)
        if beyond:
            findings.append(_finding(
                "revisions", tenant, f"{beyond} versions carry a revision above the tenant's "
                f"current revision {revision}"))

    def _cache(self, tenant: str, findings: list[dict[str, Any]]) -> None:
        core = self._core
        for _ in range(CACHE_ATTEMPTS):
            with core.cache.lock:
                view = core.cache.views.get(tenant)
                if view is None:
                    return
                cached = view.all_entries()
                # only the namespaces in memory (a tenant's are loaded on first use)
                scope = None if view.complete else set(view.loaded)
                at = view.revision
            before = core.store.tenant(tenant)
            stored = {(r.env, r.namespace, r.key): entry_from_row(r)
                      for r in core.store.current_rows(tenant)
                      if scope is None or r.namespace in scope}
            after = core.store.tenant(tenant)
            if before is None or after is None:
                return
            if before.revision == after.revision == at:  # one state, both sides
                break
            core.cache.refresh()  # writes moved it: bring the view up and look again
        else:
            findings.append(_finding("cache", tenant, "could not compare the cache with "
                                     "storage: writes kept moving the revision"))
            return
        for address in sorted(set(cached) | set(stored)):
            mine, theirs = cached.get(address), stored.get(address)
            if _same(mine, theirs):
                continue
            env, namespace, key = address
            if mine is not None and theirs is not None and mine.version == theirs.version:
                what = f"the cached value of version {mine.version} differs from the stored one"
            else:
                what = f"the cache holds {_describe(mine)}, storage {_describe(theirs)}"
            findings.append(_finding("cache", tenant, f"{namespace}/{key}@{env}: {what} "
                                     f"(at revision {at})", env=env, namespace=namespace,
                                     key=key))


def _same(a: Entry | None, b: Entry | None) -> bool:
    if a is None or b is None:
        return a is b
    return (a.version, a.secret, a.value) == (b.version, b.secret, b.value)


def _describe(entry: Entry | None) -> str:
    return "nothing" if entry is None else f"version {entry.version}"
