"""The schema in force for a key, and what the write pipeline and watchers do with it.

A namespace's schema is looked up by scope in the order of ``PRECEDENCE``: the tenant's own
live schema first, else the one set for all tenants, else none. Three readers use it:

* every write, inside its transaction (``validate_appended``, ``schema_secrets``): the
  transaction holds the tenant's lock, which schema writes take too, so it reads each
  namespace's schemas once and no schema change can slip in between;
* watchers, to flag a change that touches an ``x-restart-required`` field
  (``RestartFlags``): outside any transaction, so the lookup is cached for a second;
* reads of the schema API (``hub/schema_changes.py``).

The ``flags`` namespace of every tenant also has a built-in schema, flagd's flag-definition
format (``confhub.flags.definition``): it applies on top of any schema set there, cannot be
removed, and its problems name the flag (``flag_issues``).

Worked example — tenant ``acme`` has no schema of its own for ``models``; the all-tenants
schema v1 marks ``/endpoint`` ``x-restart-required``::

    t=0.0  set models/a {"endpoint": "x"}         lookup: acme none, "*" v1 -> cached 1 s;
                                                   endpoint absent -> "x": restart_required
    t=0.3  set models/a {"endpoint": "x", "n": 2} cache hit; endpoint unchanged: not flagged
    t=0.5  acme.set_schema("models", v2 unmarked) through this hub: the cache is cleared
    t=0.6  set models/a {"endpoint": "y"}         lookup: acme v2 -> no marks: not flagged

A schema changed by another process is seen by the flags within a second (writes always see
it at once: they read it in their transaction).

May import: ``confhub.validation``, ``confhub.annotations``, ``confhub.model``,
``confhub.secrets`` (Vault), ``confhub.flags``, ``confhub.layering``, ``confhub.store.base``
and ``hub.sealing``, ``hub.rows``.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Sequence
from typing import Any

from ..annotations import expand, touches
from ..flags import FLAGS_NAMESPACE, check_entry
from ..layering import merge_patch
from ..model import BASE_ENV, Change, ValidationIssue
from ..secrets import Vault
from ..store.base import ALL_TENANTS, SchemaRow, StoreReader, VersionRow, WriteTxn
from ..validation import CompiledSchema, check_layers, compile_document, refuse
from .rows import where
from .sealing import opened, scrubbed

#: Scopes searched for a namespace's schema, first live one wins. ``None`` stands for the
#: tenant asking; ``ALL_TENANTS`` is the fallback every tenant shares.
PRECEDENCE: tuple[str | None, ...] = (None, ALL_TENANTS)

SchemaLookup = Callable[[str, str], SchemaRow | None]  # (scope, namespace) -> latest row
RESTART_LOOKUP_TTL = 1.0  # seconds a watcher's schema lookup is reused


def effective_schema(read: SchemaLookup, tenant: str, namespace: str
                     ) -> tuple[SchemaRow | None, CompiledSchema | None]:
    """The schema in force for a tenant's namespace and its compiled form (None, None when
    there is none). ``read(scope, namespace)`` gives a scope's latest row."""
    for scope in PRECEDENCE:
        row = read(tenant if scope is None else scope, namespace)
        if row is not None and not row.deleted:
            assert row.document is not None
            return row, compile_document(row.document)
    return None, None


def schema_in_txn(txn: WriteTxn, namespace: str) -> CompiledSchema | None:
    """The compiled schema in force for ``namespace`` as seen by a write transaction."""
    rows = txn.schemas_in_force(namespace)
    if not rows:
        return None  # no schema: asked once per key written, so answered at once
    found = {row.scope: row for row in rows}
    return effective_schema(lambda scope, _: found.get(scope), txn.tenant, namespace)[1]


def schema_secrets(txn: WriteTxn, namespace: str, key: str, value: Any) -> list[str]:
    """The fields of ``value`` its schema marks ``"x-secret": true`` (concrete pointers)."""
    compiled = schema_in_txn(txn, namespace)
    if compiled is None or not compiled.applies_to(key):
        return []
    marked = compiled.annotations.get("secret", ())
    return expand(value, marked) if marked else []


def validate_appended(txn: WriteTxn, appended: Sequence[VersionRow],
                      vault: Vault) -> list[ValidationIssue]:
    """Check every key ``appended`` touched; raise ValidationFailed, or return the warnings.

    Secrets are checked in plain text (a password's ``minLength`` applies to the password,
    not to its ciphertext) and then scrubbed from every message, which may quote values.
    """
    # The schema in force once per namespace, and only rows of the namespaces that have one
    # (or the flags' built-in one) looked at: a bulk load of 10,000 keys into namespaces
    # without a schema costs a set of namespaces here, not a grouping of every row.
    schemas: dict[str, CompiledSchema | None] = {
        namespace: schema_in_txn(txn, namespace)
        for namespace in {row.namespace for row in appended}}
    checked_ns = {namespace for namespace, compiled in schemas.items()
                  if compiled is not None or namespace == FLAGS_NAMESPACE}
    if not checked_ns:
        return []
    touched: dict[tuple[str, str], set[str]] = {}
    for row in appended:
        if row.namespace in checked_ns:
            touched.setdefault((row.namespace, row.key), set()).add(row.env)
    errors: list[ValidationIssue] = []
    warnings: list[ValidationIssue] = []
    for (namespace, key), envs in touched.items():
        compiled = schemas[namespace]
        governed = compiled is not None and compiled.applies_to(key)
        if not governed and namespace != FLAGS_NAMESPACE:
            continue
        plain_secrets: list[Any] = []
        layers = {r.env: opened(json.loads(r.value), r.secret, vault, plain_secrets)
                  for r in txn.layers(namespace, key) if not r.deleted and r.value is not None}
        # A base write changes what every env resolves to; an env write only its own env.
        checked = layers.keys() if BASE_ENV in envs else envs
        found_errors = flag_issues(namespace, key, layers, checked)
        found_warnings: list[ValidationIssue] = []
        if governed:
            assert compiled is not None
            schema_errors, found_warnings = check_layers(compiled, layers, checked, namespace,
                                                         key)
            found_errors += schema_errors
        errors += scrubbed(found_errors, plain_secrets)
        warnings += scrubbed(found_warnings, plain_secrets)
    if errors:
        what = ("value of " + where(errors[0].env or BASE_ENV, errors[0].namespace or "",
                                    errors[0].key or "")
                if len(touched) == 1 else f"a write of {len(touched)} keys")
        raise refuse(errors, warnings, f"{what} breaks its schema")
    return warnings


def flag_issues(namespace: str, key: str, layers: dict[str, Any], envs: Any
                ) -> list[ValidationIssue]:
    """The built-in schema of the ``flags`` namespace: the problems of the flag definition
    each env in ``envs`` resolves to (``layers`` maps env -> its layer's value)."""
    if namespace != FLAGS_NAMESPACE:
        return []
    issues: list[ValidationIssue] = []
    base = layers.get(BASE_ENV)
    for env in sorted(set(envs)):
        if env not in layers:
            continue
        value = layers[env] if env == BASE_ENV else merge_patch(base, layers[env])
        issues += [ValidationIssue(path, message, rule="flagd", namespace=namespace, key=key,
                                   env=env) for path, message in check_entry(key, value)]
    return issues


class RestartFlags:
    """Marks changes that alter an ``x-restart-required`` field (see the worked example)."""

    def __init__(self, store: StoreReader) -> None:
        self._store = store
        self._compiled: dict[tuple[str, str], tuple[float, CompiledSchema | None]] = {}

    def paths(self, change: Change) -> Sequence[str]:
        """The fields of ``change``'s key its schema marks ``x-restart-required``."""
        scope = (change.tenant, change.namespace)
        now = time.monotonic()
        cached = self._compiled.get(scope)
        if cached is None or now - cached[0] > RESTART_LOOKUP_TTL:
            _, compiled = effective_schema(self._store.schema, *scope)
            cached = self._compiled[scope] = (now, compiled)
        compiled = cached[1]
        if compiled is None or not compiled.applies_to(change.key):
            return ()
        paths: Sequence[str] = compiled.annotations.get("restart_required", ())
        return paths

    def flag(self, change: Change, old_value: Any) -> Change:
        """``change``, marked restart_required if it alters a restart-required field."""
        paths = self.paths(change)
        if paths and touches(paths, old_value, change.value):
            return dataclasses.replace(change, restart_required=True)
        return change

    def forget(self) -> None:
        """Look schemas up afresh (a schema was changed through this hub)."""
        self._compiled.clear()
