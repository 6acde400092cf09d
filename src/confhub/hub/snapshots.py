"""A tenant's snapshots: labels on revisions, and restoring a past state as a new revision.

Owns ``Snapshots`` (part of ``Tenant``). Restoring never rewrites history: it compares the
state at the target revision with the current one and writes, in one transaction, a version
(``op="restore"``) for every key that differs — the old value back, or a tombstone for a key
that did not exist then.

May import: ``confhub.model``, ``confhub.errors``, ``confhub.store.base`` and the hub's
``core``, ``cache``, ``rows``, ``rollouts`` (whose records a restore leaves alone).
"""

from __future__ import annotations

import builtins

from ..errors import Gone, InvalidRequest, NotFound
from ..model import Change, Snapshot, check_name, utc_from_micros
from ..store.base import WriteTxn
from .cache import change_from_row
from .core import TenantPart
from .rollouts import ROLLOUT_NS
from .rows import born, meta, new_row


class Snapshots(TenantPart):
    """Snapshots and restore of one tenant (part of :class:`confhub.Tenant`)."""

    def snapshot(self, label: str) -> Snapshot:
        """Label the current revision. AlreadyExists if the label is taken."""
        check_name("snapshot", label)
        self._view  # noqa: B018
        name, revision, created = self._core.store.add_snapshot(self.name, label)
        return Snapshot(tenant=self.name, label=name, revision=revision,
                        created_at=utc_from_micros(created))

    def snapshots(self) -> builtins.list[Snapshot]:
        self._view  # noqa: B018
        return [Snapshot(tenant=self.name, label=label, revision=rev,
                         created_at=utc_from_micros(created))
                for label, rev, created in self._core.store.snapshots(self.name)]

    def restore(self, snapshot: str | None = None, *, revision: int | None = None,
                namespace: str | None = None, reason: str | None = None,
                author: str | None = None, dry_run: bool = False) -> builtins.list[Change]:
        """Make the current state (of the tenant, or of one namespace) equal to the state at a
        snapshot or revision, as one new transaction (``op="restore"``). Returns the changes
        written — none if nothing differs."""
        if (snapshot is None) == (revision is None):
            raise InvalidRequest("restore needs exactly one of snapshot= or revision=")
        if namespace is not None:
            check_name("namespace", namespace)
        store = self._core.store
        info = store.tenant(self.name)
        self._view  # noqa: B018
        assert info is not None
        if snapshot is not None:
            found = store.snapshot(self.name, check_name("snapshot", snapshot))
            if found is None:
                raise NotFound(f"snapshot {snapshot!r} does not exist in tenant "
                               f"{self.name!r}", tenant=self.name, snapshot=snapshot)
            target = found[1]
        else:
            if isinstance(revision, bool) or not isinstance(revision, int) or revision < 0:
                raise InvalidRequest(f"revision must be an integer >= 0, not {revision!r}")
            target = revision
        if target > info.revision:
            raise InvalidRequest(f"revision {target} is in the future: tenant {self.name!r} "
                                 f"is at revision {info.revision}")
        # A snapshot's state is kept by retention; any other old revision may be gone.
        if snapshot is None and target < info.compacted_revision:
            raise Gone(f"revision {target} of tenant {self.name!r} was removed by retention",
                       compacted_revision=info.compacted_revision)
        written = meta(reason or (f"restore snapshot {snapshot!r}" if snapshot
                                  else f"restore revision {target}"), author, None)

        def restore(txn: WriteTxn) -> None:
            wanted = {(r.env, r.namespace, r.key): r for r in txn.state_at(target, namespace)}
            now = {(r.env, r.namespace, r.key): r for r in txn.current_rows(namespace)}
            for address in sorted(set(wanted) | set(now)):
                if address[1] == ROLLOUT_NS:
                    continue  # rollout records are history, not state to go back to
                old, cur = wanted.get(address), now.get(address)
                next_version = cur.version + 1 if cur is not None else 1
                cur_live = cur is not None and not cur.deleted
                if old is not None and not old.deleted:
                    if cur is None or cur.deleted or cur.value != old.value \
                            or cur.secret != old.secret:
                        txn.append(new_row(txn, *address, next_version, "restore", old.value,
                                           False, written, secret=old.secret, born=born(cur)))
                elif cur_live:
                    txn.append(new_row(txn, *address, next_version, "restore", None, True,
                                       written))

        _, _, rows = self._core.commit(self.name, restore, dry_run=dry_run)
        return [change_from_row(row) for row in rows]
