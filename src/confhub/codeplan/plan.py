"""The planner: the directory (desired state) against the store (live state), key by key.

``make_plan`` reads the live values of the namespaces and env layers the directory touches
(one ``list`` per namespace and layer), diffs each key field by field (diffs.py), asks the
store's schemas about every value that would change (``validate``, only where a schema
governs the key), and rates each change by the risk rules (risk.py). It writes nothing; the
plan remembers the revision it saw, so ``apply --expect-revision`` can refuse a moved store.

Deletions come only from ownership (ownership.py): a key that an earlier apply from this
source created and that has no file any more is an *orphan*; ``--prune`` turns orphans into
deletions. Keys made by hand are never deleted.
"""

from __future__ import annotations

import dataclasses
import fnmatch
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..annotations import expand
from ..errors import NotFound
from ..model import Entry, Schema
from .diffs import MASK, FieldChange, KeyChange, field_changes, secret_match
from .gitinfo import GitInfo, git_info
from .layout import INVENTORY_NAMESPACE, Address, DesiredKey, Layout
from .ownership import Inventory, address_text, read_inventory, source_name
from .risk import Level, PlanFacts, assess

__all__ = ["Plan", "make_plan", "secret_pointers"]


@dataclass(frozen=True)
class Plan:
    """What ``apply`` would do, and how risky it is."""

    tenant: str
    source: str
    revision: int  # the tenant revision the live state was read at (0: no tenant yet)
    changes: tuple[KeyChange, ...]
    risk: Level
    plan_reasons: tuple[str, ...]
    orphans: tuple[Address, ...]  # owned keys with no file; deleted only with prune
    tenant_exists: bool
    inventory: Inventory
    layout: Layout
    git: GitInfo | None
    prune: bool = False
    max_risk: Level | None = None
    unchanged: int = 0

    @property
    def refused(self) -> bool:
        """More risky than ``max_risk`` allows."""
        return bool(self.changes) and self.max_risk is not None and self.risk > self.max_risk

    @property
    def valid(self) -> bool:
        return all(change.report.valid for change in self.changes)

    def count(self, action: str) -> int:
        return sum(1 for change in self.changes if change.action == action)

    def summary(self) -> str:
        """``3 to change, 1 to create, 0 to delete; risk HIGH``."""
        if not self.changes:
            return "no changes: the store matches the directory"
        return (f"{self.count('update')} to change, {self.count('create')} to create, "
                f"{self.count('delete')} to delete; risk {self.risk.name}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "tenant": self.tenant, "source": self.source, "revision": self.revision,
            "changes": [change.to_dict() for change in self.changes],
            "summary": {"create": self.count("create"), "update": self.count("update"),
                        "delete": self.count("delete"), "unchanged": self.unchanged},
            "risk": self.risk.name, "plan_reasons": list(self.plan_reasons),
            "max_risk": self.max_risk.name if self.max_risk is not None else None,
            "refused": self.refused, "valid": self.valid,
            "orphans": [address_text(a) for a in self.orphans], "prune": self.prune,
            "tenant_exists": self.tenant_exists,
            "git": self.git.metadata() if self.git else None,
        }


def secret_pointers(entry: Entry | None, schema: Schema | None) -> list[str]:
    """JSON pointers of the secret fields of a key: those its schema marks ``x-secret`` and
    those the store shows as ``"***"`` (fields sealed with ``secret=[...]``)."""
    found: list[str] = list(schema.annotations.get("secret", [])) if schema else []
    if entry is not None and entry.secret:
        found += _masked(entry.value, "")
    return found


def _masked(value: Any, pointer: str) -> list[str]:
    if value == MASK:
        return [pointer]
    if isinstance(value, Mapping):
        return [p for k, v in value.items()
                for p in _masked(v, f"{pointer}/{k.replace('~', '~0').replace('/', '~1')}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _masked(v, f"{pointer}/{i}")]
    return []


def _governing(schemas: Mapping[str, Schema], namespace: str, key: str) -> Schema | None:
    schema = schemas.get(namespace)
    if schema is None or (schema.key_pattern is not None
                          and not fnmatch.fnmatchcase(key, schema.key_pattern)):
        return None
    return schema


def _read_live(tenant: Any, scope: Mapping[str, set[str]]) -> dict[Address, Entry]:
    live: dict[Address, Entry] = {}
    for env, namespaces in scope.items():
        for namespace in sorted(namespaces):
            for entry in tenant.list(namespace, env=env):
                live[(env, namespace, entry.key)] = entry
    return live


def make_plan(hub: Any, tenant_name: str, layout: Layout, *, env: str | None = None,
              prune: bool = False, max_risk: Level | None = None,
              progress: Callable[[str], None] | None = None) -> Plan:
    """Compare ``layout`` with tenant ``tenant_name`` of ``hub`` (embedded or remote) and
    return the :class:`Plan`. Reads only."""
    note = progress or (lambda _: None)
    tenant = hub.tenant(tenant_name)
    git = git_info(layout.root)
    source = source_name(layout, git)
    desired = {a: k for a, k in layout.keys.items() if env is None or a[0] == env}
    try:
        revision = tenant.revision
        exists = True
    except NotFound:
        revision, exists = 0, False
    inventory = read_inventory(tenant, source) if exists else Inventory(source=source)
    candidates = [a for a in inventory.created
                  if a not in desired and (env is None or a[0] == env)]
    scope: dict[str, set[str]] = {}
    for address in list(desired) + candidates:
        scope.setdefault(address[0], set()).add(address[1])
    note(f"reading {sum(len(v) for v in scope.values())} namespaces from tenant "
         f"{tenant_name}…")
    live = _read_live(tenant, scope) if exists else {}
    schemas = {s.namespace: s for s in tenant.schemas()} if exists else {}

    changes: list[KeyChange] = []
    note(f"comparing {len(desired)} keys…")
    for address, want in sorted(desired.items()):
        change = _key_change(want, live.get(address),
                             _governing(schemas, want.namespace, want.key))
        if change is not None:
            changes.append(change)
    orphans = _owned_orphans(tenant, inventory, candidates, live)
    if prune:
        for address in orphans:
            entry = live[address]
            changes.append(KeyChange(
                *address, action="delete", expected_version=entry.version, live=entry.value,
                secret=entry.secret,
                fields=(FieldChange((), "remove", old=entry.value, secret=entry.secret),)))
    note(f"validating {len(changes)} changes…")
    changes = [_validated(tenant, c, schemas) for c in changes]

    live_keys: dict[tuple[str, str], int] = {}
    for (layer, namespace, _) in live:
        live_keys[(layer, namespace)] = live_keys.get((layer, namespace), 0) + 1
    deletions: dict[tuple[str, str], int] = {}
    for change in changes:
        if change.action == "delete":
            where = (change.env, change.namespace)
            deletions[where] = deletions.get(where, 0) + 1
    facts = PlanFacts(production_envs=layout.config.production_envs, live_keys=live_keys,
                      deletions=deletions, changed_keys=len(changes))
    assessed, risk, plan_reasons = assess(changes, facts)
    return Plan(tenant=tenant_name, source=source, revision=revision,
                changes=tuple(assessed), risk=risk, plan_reasons=tuple(plan_reasons),
                orphans=tuple(sorted(orphans)), tenant_exists=exists, inventory=inventory,
                layout=layout, git=git, prune=prune, max_risk=max_risk,
                unchanged=len(desired) - sum(1 for c in changes if c.action != "delete"))


def _key_change(want: DesiredKey, entry: Entry | None, schema: Schema | None
                ) -> KeyChange | None:
    pointers = secret_pointers(entry, schema)
    if entry is None:
        secret = bool(expand(want.value, pointers))
        return KeyChange(*want.address, action="create", file=want.file, expected_version=0,
                         desired=want.value, secret=secret, secret_paths=tuple(pointers),
                         fields=(FieldChange((), "add", new=want.value, secret=secret),))
    fields = field_changes(entry.value, want.value, pointers)
    if not fields:
        return None
    restart = tuple(p for p in (schema.annotations.get("restart_required", []) if schema
                                else []) if any(secret_match([p], f.path) for f in fields))
    return KeyChange(*want.address, action="update", file=want.file,
                     expected_version=entry.version, desired=want.value, live=entry.value,
                     fields=tuple(fields), secret=entry.secret or any(f.secret for f in fields),
                     secret_paths=tuple(pointers), restart_paths=restart)


def _validated(tenant: Any, change: KeyChange, schemas: Mapping[str, Schema]) -> KeyChange:
    if change.action == "delete" or _governing(schemas, change.namespace, change.key) is None:
        return change
    report = tenant.validate(change.namespace, change.key, change.desired, env=change.env)
    return dataclasses.replace(change, report=report)


def _owned_orphans(tenant: Any, inventory: Inventory, candidates: list[Address],
                   live: Mapping[Address, Entry]) -> list[Address]:
    """The candidates that are still the incarnation this source created: created at the
    revision the ownership record says (a key deleted and re-made by hand is not ours)."""
    found = []
    for address in candidates:
        if address not in live or address[1] == INVENTORY_NAMESPACE:
            continue
        if _created_revision(tenant, address) == inventory.created[address]:
            found.append(address)
    return found


def _created_revision(tenant: Any, address: Address) -> int | None:
    """The revision that created the key's current incarnation (its first version after the
    last tombstone)."""
    env, namespace, key = address
    before: int | None = None
    created: int | None = None
    while True:
        page = tenant.history(namespace, key, env=env, limit=100, before=before)
        for version in page:  # newest first
            if version.deleted:
                return created
            created = version.revision
        if len(page) < 100 or not page or page[-1].version == 1:
            return created
        before = page[-1].version

