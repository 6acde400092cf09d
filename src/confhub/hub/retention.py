"""Retention policies and compaction: how much history is kept, and removing the rest.

Owns ``Retention`` (part of ``Hub``): ``set_retention``, ``retention``, ``compact`` and
``compact_in_background``. A policy belongs to a tenant (all namespaces) or to one namespace
(which then wins over the tenant's). With no policy, everything is kept (the default).

Which versions a compaction removes — worked example. Policy ``keep_last=2`` on namespace
``models``; a snapshot ``s`` at revision 4; key ``models/a``'s versions (revision in
brackets), one of them a rollback::

    v1 [1]   v2 [2]   v3 [4]   v4 [6] rollback_of=1   v5 [8]   v6 [9]   (current: v6)

    current                         v6
    the last 2                      v5 v6
    snapshot s (latest <= rev 4)    v3
    rollback_of of a kept version   (v4 is not kept, so v1 is not needed for it)
    kept                            v3 v5 v6        removed: v1 v2 v4

Each removed version is *superseded at* the revision of the key's next remaining version
(v1 at 2, v2 at 4, v4 at 8). The tenant's ``compacted_revision`` becomes the largest of these
(8): from revision 8 on, the state at every revision and every change after it are complete,
so a watcher may resume from 8 or later and an older resume gets Gone (HTTP 410) and
re-lists; restoring a revision below 8 is Gone too, but restoring snapshot ``s`` still works
(its versions were kept).

``keep_last`` counts versions (tombstones too) newest first; ``keep_for_seconds`` keeps
versions written less than that long ago; both given, a version is kept if either keeps it.

The store checks again under the tenant lock that it never removes a current version nor the
target of a remaining rollback, so a write racing with a compaction is safe. Removal goes in
batches, each a short transaction, so writers are never held up for long.

May import: ``confhub.model``, ``confhub.errors``, ``confhub.store.base`` and the hub's
``core``, ``rows``.
"""

from __future__ import annotations

import bisect
import logging
import threading
from collections.abc import Callable, Iterator
from itertools import groupby
from typing import Any

from ..errors import InvalidRequest
from ..model import RetentionPolicy, check_name, now_micros
from ..store.base import RetentionRow, VersionStub
from .core import HubPart

logger = logging.getLogger("confhub")

BATCH = 2000  # versions removed per write transaction
INDEX_PAGE = 10_000  # versions read per page of the index (each page a short read)
Address = tuple[str, str, str]  # (env, namespace, key)
Policy = tuple[int | None, int | None]  # (keep_last, keep_for microseconds)


MAX_LIMIT = 1 << 40  # ~35,000 years in seconds; far beyond any sensible policy


def _check_limit(name: str, value: int | None) -> int | None:
    if value is None:
        return None
    if (isinstance(value, bool) or not isinstance(value, int) or value < 1
            or value > MAX_LIMIT):
        raise InvalidRequest(f"{name} must be a whole number from 1 to {MAX_LIMIT} or null, "
                             f"not {value!r}", field=name)
    return value


def _policy(row: RetentionRow) -> RetentionPolicy:
    return RetentionPolicy(tenant=row.tenant, namespace=row.namespace or None,
                           keep_last=row.keep_last,
                           keep_for_seconds=row.keep_for // 1_000_000
                           if row.keep_for is not None else None)


def doomed_versions(versions: list[VersionStub], policy: Policy, now: int,
                    snapshots: list[int], needed: frozenset[int] = frozenset()
                    ) -> Iterator[tuple[int, int]]:
    """``(version, superseded_at)`` of the versions of one key that ``policy`` lets go
    (``versions`` ordered by version; ``snapshots`` sorted revisions; ``needed``: versions
    something else — a running rollout — still needs). See the module docstring."""
    keep_last, keep_for = policy
    keep: set[int] = {versions[-1].version, *needed}
    if keep_last is not None:
        keep.update(v.version for v in versions[-keep_last:])
    if keep_for is not None:
        keep.update(v.version for v in versions if v.created_at >= now - keep_for)
    revisions = [v.revision for v in versions]
    for snapshot in snapshots:  # the key's latest version at or below the snapshot
        index = bisect.bisect_right(revisions, snapshot) - 1
        if index >= 0:
            keep.add(versions[index].version)
    for v in reversed(versions):  # newest first: a target's own target is seen after it
        if v.version in keep and v.rollback_of is not None:
            keep.add(v.rollback_of)
    for index, v in enumerate(versions[:-1]):
        if v.version not in keep:
            yield v.version, versions[index + 1].revision


class Retention(HubPart):
    """Retention policies and compaction (part of :class:`confhub.Hub`)."""

    def set_retention(self, tenant: str, *, namespace: str | None = None,
                      keep_last: int | None = None, keep_for_seconds: int | None = None
                      ) -> RetentionPolicy:
        """Set the policy of a tenant (``namespace`` None) or of one namespace; both limits
        None removes it (keep everything, or fall back to the tenant's). Takes effect at the
        next compaction. Raises NotFound for a missing tenant, InvalidRequest for a bad
        limit."""
        check_name("tenant", tenant)
        if namespace is not None:
            check_name("namespace", namespace)
        keep_last = _check_limit("keep_last", keep_last)
        keep_for_seconds = _check_limit("keep_for_seconds", keep_for_seconds)
        self._core.view(tenant)  # NotFound for a missing or deleted tenant
        self._core.store.set_retention(RetentionRow(
            tenant=tenant, namespace=namespace or "", keep_last=keep_last,
            keep_for=keep_for_seconds * 1_000_000 if keep_for_seconds is not None else None,
            updated_at=now_micros()))
        self._core.audit("retention.set", tenant, target=namespace,
                         details={"keep_last": keep_last, "keep_for_seconds": keep_for_seconds})
        return RetentionPolicy(tenant, namespace, keep_last, keep_for_seconds)

    def retention(self, tenant: str | None = None) -> list[RetentionPolicy]:
        """The policies (of one tenant, or of all), tenant-wide ones first."""
        return [_policy(r) for r in self._core.store.retention_policies(tenant)]

    def protected_by_rollouts(self, tenant: str) -> dict[Address, frozenset[int]]:
        """Versions a running or paused staged rollout still needs, per key: the version each
        staged op was based on (its diff and its compare-and-set at completion read it)."""
        needed: dict[Address, set[int]] = {}
        for rollout in self._core.rollouts.active(tenant, self._core.view(tenant)):
            for op in rollout.ops:
                if op.base_version >= 1:
                    needed.setdefault(op.address, set()).add(op.base_version)
        return {address: frozenset(versions) for address, versions in needed.items()}

    def compact(self, tenant: str | None = None, *, vacuum: bool = False,
                now: int | None = None) -> dict[str, Any]:
        """Apply the retention policies now (of one tenant, or of every tenant that has
        one), then hand the freed space back to the file system where the backend can
        (``vacuum``: a full SQLite VACUUM / PostgreSQL VACUUM ANALYZE, even if nothing was
        removed).

        Returns ``{"tenants": {name: {"removed", "compacted_revision"}}, "removed",
        "space": {...}}``. Moves no revision; ``compacted_revision`` only grows.
        """
        store = self._core.store
        policies = store.retention_policies(tenant)
        if tenant is not None:
            self._core.view(check_name("tenant", tenant))
        moment = now if now is not None else now_micros()
        by_tenant: dict[str, dict[str, Policy]] = {}
        for row in policies:
            by_tenant.setdefault(row.tenant, {})[row.namespace] = (row.keep_last, row.keep_for)
        report: dict[str, Any] = {"tenants": {}, "removed": 0}
        for name, rules in sorted(by_tenant.items()):
            info = store.tenant(name)
            if info is None or info.deleted_at is not None:
                continue
            removed = self._compact_tenant(name, rules, moment)
            report["tenants"][name] = {"removed": removed,
                                       "compacted_revision": store.compacted_revision(name)}
            report["removed"] += removed
        report["space"] = store.reclaim_space(full=vacuum) if report["removed"] or vacuum \
            else None
        return report

    def _compact_tenant(self, tenant: str, rules: dict[str, Policy], now: int) -> int:
        store = self._core.store
        snapshots = sorted({revision for _, revision, _ in store.snapshots(tenant)})
        needed = self.protected_by_rollouts(tenant)
        batch: list[tuple[str, str, str, int, int]] = []
        removed = 0

        def key_of(v: VersionStub) -> Address:
            return v.env, v.namespace, v.key

        for address, group in groupby(store.version_index(tenant, INDEX_PAGE), key=key_of):
            policy = rules.get(address[1]) or rules.get("")
            if policy is None:
                continue
            versions = list(group)
            for version, superseded_at in doomed_versions(
                    versions, policy, now, snapshots, needed.get(address, frozenset())):
                batch.append((*address, version, superseded_at))
            if len(batch) >= BATCH:
                removed += store.remove_versions(tenant, batch)
                batch = []
        removed += store.remove_versions(tenant, batch)
        if removed:
            self._core.audit("retention.compact", tenant, details={"removed": removed})
        return removed

    def compact_in_background(self, interval: float = 300.0) -> Callable[[], None]:
        """Run :meth:`compact` every ``interval`` seconds in a daemon thread until the
        returned function is called (``confhub serve`` does this). Failures are logged and
        retried at the next round; they never stop the thread."""
        stop = threading.Event()

        def loop() -> None:
            while not stop.wait(interval):
                try:
                    report = self.compact()
                    if report["removed"]:
                        logger.info("compaction removed %d versions", report["removed"])
                except Exception:  # noqa: BLE001 - the next round tries again
                    logger.exception("background compaction failed")

        thread = threading.Thread(target=loop, name="confhub-compaction", daemon=True)
        thread.start()

        def stopper() -> None:
            stop.set()
            thread.join(timeout=5)

        return stopper

