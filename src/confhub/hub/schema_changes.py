"""A tenant's schema API: validate a value, read, set, delete and roll back schemas.

Owns ``SchemaChanges`` (part of ``Tenant``) and the rule that a schema change is refused when
values it would govern break it (``_check_existing``). Which schema is in force, and how writes
are validated against it, is ``hub/schemas.py``.

May import: ``confhub.validation``, ``confhub.model``, ``confhub.errors``, ``confhub.flags``,
``confhub.store.base`` and the hub's ``core``, ``rows``, ``schemas``.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import InvalidRequest, NotFound
from ..flags import FLAGS_NAMESPACE
from ..model import (
    BASE_ENV,
    Schema,
    ValidationIssue,
    ValidationReport,
    check_name,
    encode_value,
    freeze,
    thaw,
    utc_from_micros,
)
from ..store.base import ALL_TENANTS, SchemaRow, SchemaTxn
from ..validation import (
    CompiledSchema,
    check_layers,
    compile_document,
    document_text,
    make_document,
    refuse,
)
from .core import TenantPart
from .rows import check_address, check_limit, check_version, where
from .schemas import effective_schema, flag_issues


class SchemaChanges(TenantPart):
    """Schemas and validation of one tenant (part of :class:`confhub.Tenant`)."""

    def validate(self, namespace: str, key: str, value: Any, *, env: str = BASE_ENV
                 ) -> ValidationReport:
        """Check ``value`` as the new value of ``namespace/key`` in ``env`` against the schema
        in force, exactly as a write would (an env value is checked resolved over ``base``).
        Writes nothing; never raises for an invalid value: look at ``report.valid``."""
        check_address(env, namespace, key)
        encode_value(value, max_bytes=self._core.max_value_bytes,
                     where=f"value of {where(env, namespace, key)}")
        self._view  # noqa: B018 - raises NotFound for a missing tenant
        _, compiled = effective_schema(self._core.store.schema, self.name, namespace)
        governed = compiled is not None and compiled.applies_to(key)
        if not governed and namespace != FLAGS_NAMESPACE:
            return ValidationReport()
        layers: dict[str, Any] = {env: thaw(value)}
        if env != BASE_ENV:
            view = self._view
            self._core.cache.ensure(view, namespace)
            base = view.entry(BASE_ENV, namespace, key)
            if base is not None:
                layers[BASE_ENV] = thaw(base.value)
        errors = flag_issues(namespace, key, layers, [env])
        warnings: list[ValidationIssue] = []
        if governed:
            assert compiled is not None
            schema_errors, warnings = check_layers(compiled, layers, [env], namespace, key)
            errors += schema_errors
        return ValidationReport(errors=tuple(errors), warnings=tuple(warnings))

    def set_schema(self, namespace: str, schema: Any, rules: Sequence[Mapping[str, Any]]
                   | None = None, *, key_pattern: str | None = None,
                   all_tenants: bool = False, reason: str | None = None,
                   author: str | None = None, dry_run: bool = False) -> Schema:
        """Attach a JSON Schema (draft 2020-12; or a pydantic model class, whose JSON Schema is
        derived) and CEL ``rules`` to ``namespace`` (only keys matching the ``key_pattern``
        glob, when given), as its next schema version.

        ``all_tenants=True`` sets the schema every tenant without its own falls back to.
        Refused with InvalidRequest when the schema or a rule does not compile, and with
        ValidationFailed (listing the keys) when existing values would break it.
        """
        check_name("namespace", namespace)
        document = make_document(_json_schema_of(schema), rules, key_pattern)
        text = document_text(document)
        compiled = compile_document(text)
        return self._change_schema(namespace, all_tenants, text, compiled, None, reason,
                                   author, dry_run)

    def delete_schema(self, namespace: str, *, all_tenants: bool = False,
                      reason: str | None = None, author: str | None = None) -> Schema:
        """Remove the namespace's schema (a tombstone version; history stays). A tenant's
        values then fall under the all-tenants schema, if any, and are checked against it."""
        check_name("namespace", namespace)
        current = self._core.store.schema(self._scope(all_tenants), namespace)
        if current is None or current.deleted:
            raise NotFound(f"namespace {namespace!r} has no schema" + self._in(all_tenants),
                           tenant=self.name, namespace=namespace)
        return self._change_schema(namespace, all_tenants, None, None, None, reason, author,
                                   False)

    def rollback_schema(self, namespace: str, to_version: int, *, all_tenants: bool = False,
                        reason: str | None = None, author: str | None = None,
                        dry_run: bool = False) -> Schema:
        """A new schema version equal to ``to_version`` (checked against existing values like
        any schema change)."""
        check_name("namespace", namespace)
        check_version("to_version", to_version)
        old = self._core.store.schema(self._scope(all_tenants), namespace, to_version)
        if old is None:
            raise NotFound(f"schema version {to_version} of namespace {namespace!r} does not "
                           "exist", namespace=namespace, version=to_version)
        if old.deleted or old.document is None:
            raise InvalidRequest(f"schema version {to_version} of {namespace!r} is a deletion; "
                                 "use delete_schema()", version=to_version)
        return self._change_schema(namespace, all_tenants, old.document,
                                   compile_document(old.document), to_version, reason, author,
                                   dry_run)

    def get_schema(self, namespace: str, *, version: int | None = None,
                   all_tenants: bool = False) -> Schema:
        """The schema in force for ``namespace`` (the tenant's own, else the all-tenants one;
        ``scope`` tells which), or a given ``version`` of the tenant's (or, with
        ``all_tenants``, of the all-tenants) schema. NotFound if there is none."""
        check_name("namespace", namespace)
        self._view  # noqa: B018
        store = self._core.store
        if version is None and not all_tenants:
            row, _ = effective_schema(store.schema, self.name, namespace)
        else:
            if version is not None:
                check_version("version", version)
            row = store.schema(self._scope(all_tenants), namespace, version)
            if row is not None and row.deleted and version is None:
                row = None
        if row is None:
            raise NotFound(f"namespace {namespace!r} has no schema"
                           + (f" version {version}" if version else "") + self._in(all_tenants),
                           tenant=self.name, namespace=namespace)
        return _schema_from_row(row)

    def schemas(self, *, all_tenants: bool = False) -> builtins.list[Schema]:
        """Schemas in force in this tenant, one per namespace (its own, else the all-tenants
        one), sorted by namespace; with ``all_tenants``, only the all-tenants schemas."""
        self._view  # noqa: B018
        store = self._core.store
        found = {r.namespace: r for r in store.schemas(ALL_TENANTS) if not r.deleted}
        if not all_tenants:
            found.update({r.namespace: r for r in store.schemas(self.name) if not r.deleted})
        return [_schema_from_row(found[ns]) for ns in sorted(found)]

    def schema_history(self, namespace: str, *, all_tenants: bool = False, limit: int = 50
                       ) -> builtins.list[Schema]:
        """Versions of the tenant's (or the all-tenants) schema of ``namespace``, newest
        first."""
        check_name("namespace", namespace)
        self._view  # noqa: B018
        rows = self._core.store.schema_history(self._scope(all_tenants), namespace,
                                               check_limit(limit))
        if not rows:
            raise NotFound(f"namespace {namespace!r} never had a schema" + self._in(all_tenants),
                           tenant=self.name, namespace=namespace)
        return [_schema_from_row(r) for r in rows]

    def schema_annotations(self, namespace: str, key: str) -> dict[str, builtins.list[str]]:
        """JSON pointers (into the value of ``namespace/key``) that its schema marks
        ``"x-secret": true`` (key ``secret``) and ``"x-restart-required": true`` (key
        ``restart_required``); ``/*`` means every item or map value. Empty lists when no schema
        governs the key. The secrets and watch features read this."""
        check_address(BASE_ENV, namespace, key)
        self._view  # noqa: B018
        _, compiled = effective_schema(self._core.store.schema, self.name, namespace)
        if compiled is None or not compiled.applies_to(key):
            return {"secret": [], "restart_required": []}
        return {name: list(paths) for name, paths in compiled.annotations.items()}

    def _scope(self, all_tenants: bool) -> str:
        return ALL_TENANTS if all_tenants else self.name

    def _in(self, all_tenants: bool) -> str:
        return " for all tenants" if all_tenants else f" in tenant {self.name!r}"

    def _change_schema(self, namespace: str, all_tenants: bool, text: str | None,
                       compiled: CompiledSchema | None, rollback_of: int | None,
                       reason: str | None, author: str | None, dry_run: bool) -> Schema:
        """Write a schema version after checking that every value it will govern passes."""
        scope = self._scope(all_tenants)
        self._view  # noqa: B018 - NotFound for a missing tenant, even for all_tenants

        def change(txn: SchemaTxn) -> SchemaRow:
            current = txn.schema(scope, namespace)
            _check_existing(txn, scope, namespace, compiled)
            row = SchemaRow(scope=scope, namespace=namespace,
                            version=current.version + 1 if current else 1, document=text,
                            deleted=text is None, created_at=txn.now, author=author,
                            reason=reason, rollback_of=rollback_of)
            if not dry_run:
                txn.append_schema(row)
            return row

        written = self._core.store.write_schema(scope, change)
        self._core.restart_flags.forget()  # watchers flag by the new schema from now on
        return _schema_from_row(written)


def _check_existing(txn: SchemaTxn, scope: str, namespace: str,
                    compiled: CompiledSchema | None) -> None:
    """Refuse a schema change that values it will govern would break, listing the keys.

    After the change, a tenant's values in ``namespace`` fall under ``compiled`` — or, when a
    tenant schema is deleted (``compiled`` None), under the all-tenants schema. For an
    all-tenants change, tenants with their own schema are not affected.
    """
    if compiled is None and scope != ALL_TENANTS:
        _, compiled = effective_schema(lambda s, n: None if s != ALL_TENANTS
                                       else txn.schema(s, n), scope, namespace)
    if compiled is None:
        return
    own: dict[str, bool] = {}
    by_key: dict[tuple[str, str], dict[str, Any]] = {}
    for row in txn.live_rows(namespace):
        if scope == ALL_TENANTS:
            if row.tenant not in own:
                mine = txn.schema(row.tenant, namespace)
                own[row.tenant] = mine is not None and not mine.deleted
            if own[row.tenant]:
                continue
        if compiled.applies_to(row.key) and row.value is not None:
            by_key.setdefault((row.tenant, row.key), {})[row.env] = json.loads(row.value)
    errors: list[ValidationIssue] = []
    broken: list[str] = []
    for (tenant, key), layers in sorted(by_key.items()):
        found, _ = check_layers(compiled, layers, layers.keys(), namespace, key)
        if found:
            envs = sorted({e.env or BASE_ENV for e in found})
            broken.append((f"{tenant}:" if scope == ALL_TENANTS else "") + f"{namespace}/{key}"
                          + ("" if envs == [BASE_ENV] else f" (env {', '.join(envs)})"))
            errors += found
    if errors:
        error = refuse(errors, [], f"the schema change would break {len(broken)} existing "
                                   f"key(s): {', '.join(broken[:10])}"
                                   + (" ..." if len(broken) > 10 else "") + "; first")
        error.details["keys"] = broken
        raise error


def _schema_from_row(row: SchemaRow) -> Schema:
    document = json.loads(row.document) if row.document is not None else {}
    compiled = compile_document(row.document) if row.document is not None else None
    return Schema(scope=row.scope, namespace=row.namespace, version=row.version,
                  schema=freeze(document.get("schema")),
                  rules=tuple(freeze(r) for r in document.get("rules", [])),
                  key_pattern=document.get("key_pattern"),
                  created_at=utc_from_micros(row.created_at), author=row.author,
                  reason=row.reason, deleted=row.deleted, rollback_of=row.rollback_of,
                  annotations=freeze(compiled.annotations) if compiled else freeze({}))


def _json_schema_of(schema: Any) -> Any:
    """A JSON Schema given directly, or derived from a pydantic model class."""
    if isinstance(schema, type):
        derive = getattr(schema, "model_json_schema", None)
        if derive is None:
            raise InvalidRequest(f"{schema.__name__} is not a pydantic model; give a JSON "
                                 "Schema (a dict) or a pydantic BaseModel subclass")
        return derive()
    return schema
