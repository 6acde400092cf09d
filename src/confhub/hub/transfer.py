"""Export and import of a tenant: the ``confhub-export`` format (version 1), its strict
reader, and the ``Transfer`` part of ``Hub`` that writes and loads it.

An export is plain JSON::

    {"format": "confhub-export", "format_version": 1, "tenant": "acme", "revision": 42,
     "exported_at": "...", "entries": [{"env", "namespace", "key", "value", "version",
     "secret", ...}], "snapshots": [...], "history": [{"env", "namespace", "key", "version",
     "op", "deleted", "value", "created_at", "author", "reason", "metadata", ...}]}

``history`` is present only when exported with history. :func:`parse_export` checks the whole
document before anything is written, so a bad import changes nothing and its error names the
offending item.

An import is one transaction: a key absent from the tenant is created (with its history and
version numbers when the export has them), a key that exists is skipped or, with
``overwrite_existing``, given the exported value as a new version. Into a tenant never
written, history keeps its source revisions and the snapshot labels come along (see
``Transfer.import_``). Secrets travel redacted unless exported with ``include_secrets``
(audited); imported plain secrets are sealed again.

May import: ``confhub.secrets``, ``confhub.model``, ``confhub.errors``, ``confhub.store.base``
and the hub's ``core``, ``rows``, ``sealing``.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ..errors import InvalidRequest, NotFound
from ..model import DEFAULT_TENANT, OPS, check_name, encode_value, now_micros, utc_from_micros
from ..store.base import VersionRow, WriteTxn
from .core import HubPart
from .rollouts import ROLLOUT_NS
from .rows import born, imported_row, meta, new_row, tenant_info
from .sealing import require_key, revealed_row, seal_import, shown_row

EXPORT_FORMAT = "confhub-export"
EXPORT_FORMAT_VERSION = 1

Address = tuple[str, str, str]
Current = tuple[str, bool] | None  # (value text, secret), None when deleted in the export
Parsed = dict[Address, tuple[Current, list[dict[str, Any]]]]


def history_item(row: VersionRow) -> dict[str, Any]:
    return {
        "env": row.env, "namespace": row.namespace, "key": row.key, "version": row.version,
        "revision": row.revision, "op": row.op, "deleted": row.deleted,
        "value": json.loads(row.value) if row.value is not None else None,
        "created_at": utc_from_micros(row.created_at).isoformat(), "author": row.author,
        "reason": row.reason, "metadata": json.loads(row.metadata) if row.metadata else {},
        "rollback_of": row.rollback_of, "request_id": row.request_id, "secret": row.secret,
    }


def entry_item(row: VersionRow) -> dict[str, Any]:
    return {
        "env": row.env, "namespace": row.namespace, "key": row.key,
        "value": json.loads(row.value) if row.value is not None else None,
        "version": row.version, "revision": row.revision, "secret": row.secret,
        "created_at": utc_from_micros(row.key_created_at or row.created_at).isoformat(),
        "updated_at": utc_from_micros(row.created_at).isoformat(),
        "updated_by": row.author,
    }


def _bad(where: str, problem: str) -> InvalidRequest:
    return InvalidRequest(f"invalid export document: {where}: {problem}", where=where)


def _address(item: Any, where: str) -> Address:
    if not isinstance(item, Mapping):
        raise _bad(where, "must be an object")
    try:
        return (check_name("env", item.get("env", "base")),
                check_name("namespace", item.get("namespace")),
                check_name("key", item.get("key")))
    except InvalidRequest as exc:
        raise _bad(where, exc.message) from exc


def _optional_str(item: Mapping[str, Any], name: str, where: str) -> str | None:
    value = item.get(name)
    if value is not None and not isinstance(value, str):
        raise _bad(where, f"{name} must be a string or null")
    return value


def _micros(value: Any, where: str) -> int:
    if not isinstance(value, str):
        raise _bad(where, "created_at must be an RFC 3339 timestamp")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise _bad(where, f"created_at {value!r} is not an RFC 3339 timestamp") from exc
    if moment.tzinfo is None:
        raise _bad(where, f"created_at {value!r} has no time zone")
    return int(moment.timestamp() * 1_000_000)


def _history(items: Any, max_bytes: int) -> dict[Address, list[dict[str, Any]]]:
    if not isinstance(items, list):
        raise _bad("history", "must be a list")
    by_key: dict[Address, list[dict[str, Any]]] = {}
    for index, item in enumerate(items):
        where = f"history[{index}]"
        address = _address(item, where)
        version = item.get("version")
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise _bad(where, "version must be an integer >= 1")
        op = item.get("op")
        if op not in OPS:
            raise _bad(where, f"op must be one of {', '.join(OPS)}")
        deleted = item.get("deleted", False)
        if not isinstance(deleted, bool):
            raise _bad(where, "deleted must be true or false")
        metadata = item.get("metadata") or {}
        if not isinstance(metadata, Mapping):
            raise _bad(where, "metadata must be an object")
        revision = item.get("revision")
        if revision is not None and (isinstance(revision, bool) or not isinstance(revision, int)
                                     or revision < 1):
            raise _bad(where, "revision must be an integer >= 1 or absent")
        rollback_of = item.get("rollback_of")
        if rollback_of is not None and (isinstance(rollback_of, bool)
                                        or not isinstance(rollback_of, int)):
            raise _bad(where, "rollback_of must be an integer or null")
        by_key.setdefault(address, []).append({
            "version": version, "revision": revision, "op": op, "deleted": deleted,
            "text": None if deleted else encode_value(item.get("value"), max_bytes=max_bytes,
                                                      where=f"{where}.value"),
            "created_at": _micros(item.get("created_at"), where),
            "author": _optional_str(item, "author", where),
            "reason": _optional_str(item, "reason", where),
            "metadata": encode_value(dict(metadata), where=f"{where}.metadata")
            if metadata else None,
            "rollback_of": rollback_of,
            "request_id": _optional_str(item, "request_id", where),
            "secret": bool(item.get("secret", False)),
        })
    for address, versions in by_key.items():
        versions.sort(key=lambda v: v["version"])
        numbers = [v["version"] for v in versions]
        if numbers != list(range(1, len(numbers) + 1)):
            raise _bad("history", f"versions of {'/'.join(address)} must run 1..N without "
                       f"gaps or repeats, got {numbers[:10]}")
        revisions = [v["revision"] for v in versions if v["revision"] is not None]
        if any(later <= earlier for earlier, later in zip(revisions, revisions[1:], strict=False)):
            raise _bad("history", f"revisions of {'/'.join(address)} must grow with its "
                       f"versions, got {revisions[:10]}")
    return by_key


def parse_export(data: Mapping[str, Any], max_bytes: int) -> Parsed:
    """Check an export document and index it by (env, namespace, key)."""
    if not isinstance(data, Mapping):
        raise _bad("document", "must be a JSON object")
    if data.get("format") != EXPORT_FORMAT:
        raise _bad("format", f"must be {EXPORT_FORMAT!r}")
    if data.get("format_version") != EXPORT_FORMAT_VERSION:
        raise _bad("format_version", f"version {data.get('format_version')!r} is not "
                   f"supported (this confhub reads version {EXPORT_FORMAT_VERSION})")
    entries = data.get("entries")
    if not isinstance(entries, list):
        raise _bad("entries", "must be a list")
    history = _history(data["history"], max_bytes) if data.get("history") is not None else {}
    parsed: Parsed = {}
    for index, item in enumerate(entries):
        where = f"entries[{index}]"
        address = _address(item, where)
        if address in parsed:
            raise _bad(where, f"{'/'.join(address)} appears twice")
        if "value" not in item:
            raise _bad(where, "value is missing")
        text = encode_value(item["value"], max_bytes=max_bytes, where=f"{where}.value")
        versions = history.get(address, [])
        if versions and (versions[-1]["deleted"] or versions[-1]["text"] != text):
            raise _bad(where, "value differs from the last version in history")
        parsed[address] = ((text, bool(item.get("secret", False))), versions)
    for address, versions in history.items():
        if address not in parsed:
            if not versions[-1]["deleted"]:
                raise _bad("history", f"{'/'.join(address)} is live in history but missing "
                           "from entries")
            parsed[address] = (None, versions)
    return parsed


Snapshot = tuple[str, int, int]  # label, revision, created_at (micros)


def parse_snapshots(data: Mapping[str, Any]) -> list[Snapshot]:
    """The export's snapshot labels, checked (absent means none)."""
    items = data.get("snapshots")
    if items is None:
        return []
    if not isinstance(items, list):
        raise _bad("snapshots", "must be a list")
    found: dict[str, Snapshot] = {}
    for index, item in enumerate(items):
        where = f"snapshots[{index}]"
        if not isinstance(item, Mapping):
            raise _bad(where, "must be an object")
        try:
            label = check_name("snapshot", item.get("label"))
        except InvalidRequest as exc:
            raise _bad(where, exc.message) from exc
        if label in found:
            raise _bad(where, f"snapshot {label!r} appears twice")
        revision = item.get("revision")
        if isinstance(revision, bool) or not isinstance(revision, int) or revision < 0:
            raise _bad(where, "revision must be an integer >= 0")
        found[label] = (label, revision, _micros(item.get("created_at"), where))
    return list(found.values())


def revision_map(plan: Parsed) -> list[int] | None:
    """The source revisions the history carries, ascending — the import's revision ``i`` is
    ``result[i - 1]`` — or None when the history cannot keep its revisions (an item without
    one, or a key without history).

    Revisions are renumbered densely because the export leaves out rollout records, so
    some source revisions carry no version here, and every committed revision must carry
    one. A snapshot on source revision R lands on the number of kept revisions <= R: the
    same state, as the revisions skipped changed nothing exported. Example: history at
    source revisions 1, 2, 4, 5 (3 staged a rollout) becomes 1, 2, 3, 4; a snapshot on 3
    lands on 2, one on 5 on 4, and the tenant ends at revision 4.
    """
    if not plan:
        return None
    seen: set[int] = set()
    for _, history in plan.values():
        if not history:
            return None
        for item in history:
            if item["revision"] is None:
                return None
            seen.add(item["revision"])
    return sorted(seen)


class Transfer(HubPart):
    """Export and import of tenants (part of :class:`confhub.Hub`)."""

    def export(self, tenant: str = DEFAULT_TENANT, include_history: bool = False, *,
               include_secrets: bool = False) -> dict[str, Any]:
        """A JSON-serialisable backup of a tenant (format ``confhub-export`` version 1).

        Secrets are ``"***"`` unless ``include_secrets`` (needs the master key; audited):
        then they are in plain text, and importing the document encrypts them again."""
        check_name("tenant", tenant)
        core = self._core
        row = core.store.tenant(tenant)
        if row is None:
            raise NotFound(f"tenant {tenant!r} does not exist", tenant=tenant)
        info = tenant_info(row)
        if info.deleted:
            raise NotFound(f"tenant {tenant!r} is deleted", tenant=tenant)
        if include_secrets:
            require_key(core.vault)
            core.audit("secret.export", tenant, target=tenant)

        def shown(row: VersionRow) -> VersionRow:
            return revealed_row(core.vault, row) if include_secrets else shown_row(row)

        document: dict[str, Any] = {
            "format": EXPORT_FORMAT,
            "format_version": EXPORT_FORMAT_VERSION,
            "tenant": tenant,
            "revision": info.revision,
            "exported_at": utc_from_micros(now_micros()).isoformat(),
            "entries": [entry_item(shown(row)) for row in core.store.current_rows(tenant)
                        if row.namespace != ROLLOUT_NS],
            "snapshots": [{"label": label, "revision": rev,
                           "created_at": utc_from_micros(created).isoformat()}
                          for label, rev, created in core.store.snapshots(tenant)],
        }
        if include_history:
            rows = core.store.changes(tenant, 0, 1 << 62)
            # Rollouts are how a change was delivered, not configuration: their outcome is
            # in the ordinary versions (which carry the rollout id).
            document["history"] = [history_item(shown(row)) for row in rows
                                   if row.namespace != ROLLOUT_NS]
        return document

    def import_(self, tenant: str, data: Mapping[str, Any], overwrite_existing: bool = False,
                preserve_versions: bool = True, *, reason: str | None = None,
                author: str | None = None, dry_run: bool = False) -> dict[str, int]:
        """Load an export into ``tenant`` (created if missing) as one transaction.

        A key absent from the tenant is created — with its whole history and version numbers
        when the export has history and ``preserve_versions`` is true. A key that exists is
        skipped, or given the exported value as a new version when ``overwrite_existing``.
        Returns counts: created, updated, skipped, versions (rows written), snapshots
        (labels imported), snapshots_skipped.

        Into a tenant never written (new, or at revision 0) with history and
        ``preserve_versions``, every version keeps its place in the source's sequence of
        revisions (see :func:`revision_map`) and the export's snapshot labels come along, so
        ``restore(snapshot=label)`` gives the state it gave in the source; a label the
        tenant already has refuses the import (AlreadyExists). Otherwise the import is one
        new revision and snapshot labels are skipped (counted in ``snapshots_skipped``):
        a label would name a state this tenant never had. A watcher of the tenant sees the
        kept revisions one by one, in order, as if they had been written live.
        """
        check_name("tenant", tenant)
        core = self._core
        plan = parse_export(data, core.max_value_bytes)
        snapshots = parse_snapshots(data)
        source_revisions = revision_map(plan) if preserve_versions else None
        renumbered = {rev: index for index, rev in enumerate(source_revisions or [], 1)}
        written = meta(reason or "import", author, None)
        exists = core.store.tenant(tenant)
        if exists is not None and exists.deleted_at is not None:
            raise NotFound(f"tenant {tenant!r} is deleted (restore it first)", tenant=tenant)
        plan = seal_import(tenant, core.vault, plan)

        def load(txn: WriteTxn) -> dict[str, int]:
            if source_revisions is not None and txn.previous_revision == 0:
                return load_keeping_revisions(txn, source_revisions)
            counts = {"created": 0, "updated": 0, "skipped": 0, "versions": 0,
                      "snapshots": 0, "snapshots_skipped": len(snapshots)}
            for (env, namespace, key), (current, history) in plan.items():
                existing = txn.current(env, namespace, key)
                live = existing is not None and not existing.deleted
                if live and not overwrite_existing:
                    counts["skipped"] += 1
                    continue
                restore_history = existing is None and bool(history) and preserve_versions
                if current is None:  # deleted in the export: only history can be restored
                    if restore_history:
                        for item in history:
                            txn.append(imported_row(txn, env, namespace, key, item))
                            counts["versions"] += 1
                        counts["created"] += 1
                    else:
                        counts["skipped"] += 1
                    continue
                text, secret = current
                if restore_history:
                    for item in history:
                        txn.append(imported_row(txn, env, namespace, key, item))
                        counts["versions"] += 1
                else:
                    version = existing.version + 1 if existing is not None else 1
                    txn.append(new_row(txn, env, namespace, key, version, "import", text,
                                       False, written, secret=secret, born=born(existing)))
                    counts["versions"] += 1
                counts["updated" if live else "created"] += 1
            return counts

        def load_keeping_revisions(txn: WriteTxn, revisions: list[int]) -> dict[str, int]:
            txn.commit_as(len(revisions))
            counts = {"created": 0, "updated": 0, "skipped": 0, "versions": 0,
                      "snapshots": 0, "snapshots_skipped": 0}
            for (env, namespace, key), (_, history) in plan.items():
                for item in history:
                    txn.append(imported_row(txn, env, namespace, key, item,
                                            renumbered[item["revision"]]))
                    counts["versions"] += 1
                counts["created"] += 1
            for label, revision, created_at in snapshots:
                txn.add_snapshot(label, bisect.bisect_right(revisions, revision), created_at)
                counts["snapshots"] += 1
            return counts

        counts, _, _ = core.commit(tenant, load, create=exists is None, dry_run=dry_run)
        return counts
