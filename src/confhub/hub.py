"""The service layer: every rule of the product lives here, whatever the interface.

``Hub`` owns one store and its cache; ``Tenant`` is the per-tenant API of DESIGN.md section 2;
``Transaction`` batches writes into one revision. Only this module imports ``store/``.

Compare-and-set, worked through (``expected_version``; a key that does not exist, or whose
latest version is a tombstone, has current version 0)::

    set(a, 1, expected_version=0)   -> version 1           (must not exist: ok)
    set(a, 2, expected_version=0)   -> VersionConflict(current_version=1), nothing written
    set(a, 2, expected_version=1)   -> version 2
    delete(a, expected_version=2)   -> version 3, a tombstone
    set(a, 4, expected_version=0)   -> version 4           (deleted counts as absent)

Every write goes the same way: names and values are checked before any lock is taken, then one
store transaction reads the current versions, checks every precondition, computes the new
values (patch, rollback, restore need the stored value) and appends the versions; only when
all ops succeed does it commit, as one revision. A dry run takes the same path and rolls back.
"""

from __future__ import annotations

import builtins
import contextlib
import dataclasses
import functools
import json
import logging
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any, Literal, TypeVar

import jsonpatch

from . import secrets as _secrets
from . import tokens as _tokens
from .audit import AuditEvent, current_actor
from .backup import EXPORT_FORMAT, EXPORT_FORMAT_VERSION, entry_item, history_item, parse_export
from .cache import EMPTY_VIEW, Cache, TenantView, change_from_row, entry_from_row
from .errors import (
    ConfhubError,
    Gone,
    InvalidRequest,
    NotFound,
    TenantExists,
    Unauthorized,
    Unavailable,
    VersionConflict,
)
from .layering import diff as json_diff
from .layering import merge_patch, resolve_layers
from .live import MISSING, Live
from .model import (
    BASE_ENV,
    DEFAULT_TENANT,
    MAX_VALUE_BYTES,
    Change,
    Entry,
    Resolved,
    Schema,
    Snapshot,
    TenantInfo,
    ValidationIssue,
    ValidationReport,
    Version,
    check_name,
    check_wait,
    decode_value,
    encode_value,
    freeze,
    now_micros,
    thaw,
    utc_from_micros,
)
from .secrets import KeyRing, Vault
from .store.base import (
    ALL_TENANTS,
    AuditRow,
    DataKeyRow,
    SchemaRow,
    SchemaTxn,
    Store,
    TokenRow,
    VersionRow,
    WriteTxn,
)
from .tokens import Principal, TokenInfo
from .validation import (
    CompiledSchema,
    as_model,
    check_layers,
    compile_document,
    document_text,
    expand,
    make_document,
    refuse,
    touches,
)
from .watch import AsyncWatch, Broadcaster, Subscription, WatchFilter, WatchHandle

__all__ = ["Hub", "Tenant", "Transaction", "open"]

T = TypeVar("T")
M = TypeVar("M")
logger = logging.getLogger("confhub")
MAX_PAGE = 10_000


def open(url: str | None = None, *, token: str | None = None,
         max_value_bytes: int = MAX_VALUE_BYTES, master_key: str | None = None,
         key_file: str | None = None) -> Any:
    """Open a confhub: embedded SQLite (default ``./confhub.db``), PostgreSQL, or a server.

    ``url`` forms: ``None`` or a file path; ``sqlite:///relative/path.db`` and
    ``sqlite:////absolute/path.db`` (SQLAlchemy's convention); ``postgresql://...``;
    ``http(s)://host:port`` for a confhub server (``token`` is its bearer token).

    An embedded hub encrypts and reveals secrets with the master key(s) given by
    ``master_key`` / ``key_file``, else ``CONFHUB_MASTER_KEY`` / ``CONFHUB_KEY_FILE``
    (see :mod:`confhub.secrets`); without one, writing or revealing a secret is refused.
    """
    if url is not None and url.startswith(("http://", "https://")):
        from .remote import RemoteHub

        return RemoteHub(url, token=token)
    keyring = KeyRing.from_settings(master_key, key_file)
    return Hub(_open_store(url), max_value_bytes=max_value_bytes, keyring=keyring)


def _open_store(url: str | None) -> Store:
    target = url if url is not None else "confhub.db"
    if target.startswith(("postgresql://", "postgres://")):
        from .store.postgres import PostgresStore

        return PostgresStore(target)
    if target.startswith("sqlite://"):
        target = target[len("sqlite://"):]
        if not target.startswith("/") or target in ("", "/"):
            raise InvalidRequest(f"bad SQLite URL {url!r}: use sqlite:///relative.db or "
                                 "sqlite:////absolute/path.db")
        target = target[1:]
    elif "://" in target:
        raise InvalidRequest(f"unsupported URL {url!r}: use a file path, sqlite://, "
                             "postgresql:// or http(s)://")
    if target == ":memory:":
        raise InvalidRequest("in-memory SQLite is not supported (every connection would see "
                             "a different database); use a file in a temporary directory")
    from .store.sqlite import SqliteStore

    return SqliteStore(target)


# --------------------------------------------------------------------------- write ops


@dataclass(frozen=True, slots=True)
class _Op:
    """One write of a batch, checked before the transaction starts."""

    kind: Literal["put", "patch", "json_patch", "delete", "rollback"]
    env: str
    namespace: str
    key: str
    value: Any = None
    encoded: str | None = None
    expected_version: int | None = None
    to_version: int | None = None
    secret_paths: tuple[str, ...] | None = None  # JSON pointers to encrypt ("" = all)


@dataclass(frozen=True, slots=True)
class _Meta:
    reason: str | None = None
    author: str | None = None
    metadata: str | None = None
    request_id: str | None = None


class _DryRun(Exception):
    """Raised inside a transaction to roll it back while keeping what it computed."""

    def __init__(self, result: Any) -> None:
        self.result = result


def _meta(reason: str | None, author: str | None, metadata: Mapping[str, Any] | None,
          request_id: str | None = None) -> _Meta:
    text = encode_value(dict(metadata), where="metadata") if metadata else None
    return _Meta(reason=reason, author=author, metadata=text,
                 request_id=request_id or uuid.uuid4().hex)


def _where(env: str, namespace: str, key: str) -> str:
    return f"{namespace}/{key}" + ("" if env == BASE_ENV else f" (env {env})")


def _check_expected(expected: int | None) -> int | None:
    if expected is None:
        return None
    if isinstance(expected, bool) or not isinstance(expected, int) or expected < 0:
        raise InvalidRequest(f"expected_version must be an integer >= 0, not {expected!r}")
    return expected


def _effective_schema(read: Callable[[str, str], SchemaRow | None], tenant: str,
                      namespace: str) -> tuple[SchemaRow | None, CompiledSchema | None]:
    """The schema in force for a tenant's namespace: its own live one, else the live one of
    all tenants, else none. ``read(scope, namespace)`` gives a scope's latest row."""
    for scope in (tenant, ALL_TENANTS):
        row = read(scope, namespace)
        if row is not None and not row.deleted:
            assert row.document is not None
            return row, compile_document(row.document)
    return None, None


def _opened(value: Any, secret: bool, vault: Vault, plain: list[Any]) -> Any:
    """``value`` with its envelopes decrypted (their plaintexts added to ``plain``); without a
    master key they read as ``"***"``."""
    if not secret:
        return value
    for pointer in _secrets.secret_pointers(value):
        envelope = jsonpatch.JsonPointer(pointer).resolve(value) if pointer else value
        plain.append(vault.open(envelope) if vault.enabled else _secrets.REDACTED)
    return vault.open(value) if vault.enabled else _secrets.redact(value)


def _scrubbed(issues: Sequence[ValidationIssue], plain: Sequence[Any]
              ) -> list[ValidationIssue]:
    """``issues`` with every secret plaintext in their messages replaced by ``***``."""
    if not plain:
        return list(issues)
    texts = sorted({t for p in plain for t in (str(p), json.dumps(p, ensure_ascii=False))
                    if len(t) > 1}, key=len, reverse=True)

    def scrub(message: str) -> str:
        for text in texts:
            message = message.replace(text, _secrets.REDACTED)
        return message

    return [dataclasses.replace(issue, message=scrub(issue.message)) for issue in issues]


def _pick(rows: dict[str, SchemaRow], scope: str, namespace: str) -> SchemaRow | None:
    return rows.get(scope)


def _validate_appended(txn: WriteTxn, appended: Sequence[VersionRow],
                       vault: Vault) -> list[ValidationIssue]:
    """Check every key ``appended`` touched; raise ValidationFailed, or return the warnings.

    Secrets are checked in plain text (a password's ``minLength`` applies to the password,
    not to its ciphertext) and then scrubbed from every message, which may quote values.
    """
    touched: dict[tuple[str, str], set[str]] = {}
    for row in appended:
        touched.setdefault((row.namespace, row.key), set()).add(row.env)
    schemas: dict[str, CompiledSchema | None] = {}
    errors: list[ValidationIssue] = []
    warnings: list[ValidationIssue] = []
    for (namespace, key), envs in touched.items():
        if namespace not in schemas:
            found = {row.scope: row for row in txn.schemas_in_force(namespace)}
            schemas[namespace] = _effective_schema(functools.partial(_pick, found),
                                                   txn.tenant, namespace)[1]
        compiled = schemas[namespace]
        if compiled is None or not compiled.applies_to(key):
            continue
        plain_secrets: list[Any] = []
        layers = {r.env: _opened(json.loads(r.value), r.secret, vault, plain_secrets)
                  for r in txn.layers(namespace, key) if not r.deleted and r.value is not None}
        # A base write changes what every env resolves to; an env write only its own env.
        found_errors, found_warnings = check_layers(
            compiled, layers, layers.keys() if BASE_ENV in envs else envs, namespace, key)
        errors += _scrubbed(found_errors, plain_secrets)
        warnings += _scrubbed(found_warnings, plain_secrets)
    if errors:
        what = ("value of " + _where(errors[0].env or BASE_ENV, errors[0].namespace or "",
                                     errors[0].key or "")
                if len(touched) == 1 else f"a write of {len(touched)} keys")
        raise refuse(errors, warnings, f"{what} breaks its schema")
    return warnings


class Hub:
    """An open confhub: tenants, export/import, health and stats on one store.

    Thread-safe. A follower thread keeps the read cache exact when other processes write the
    same database; ``close()`` stops it.
    """

    def __init__(self, store: Store, *, max_value_bytes: int = MAX_VALUE_BYTES,
                 keyring: KeyRing | None = None) -> None:
        self._store = store
        self.max_value_bytes = max_value_bytes
        self._vault = Vault(keyring, _StoreKeys(store))
        self._tokens = _TokenCache(store)
        self._watchers = Broadcaster()
        self._restart_paths: dict[tuple[str, str], tuple[float, CompiledSchema | None]] = {}
        self._cache = Cache(store, on_revision=self._publish, on_evict=self._tenant_gone)
        self._closed = threading.Event()
        try:
            if store.tenant(DEFAULT_TENANT) is None:
                with contextlib.suppress(TenantExists):  # another process may be first
                    store.create_tenant(DEFAULT_TENANT)
        except BaseException:
            store.close()
            raise
        self._follower = threading.Thread(target=self._follow, name="confhub-follower",
                                          daemon=True)
        self._follower.start()

    # ------------------------------------------------------------------ plumbing

    @property
    def backend(self) -> str:
        return self._store.backend

    def _follow(self) -> None:
        """Wake on any commit to the database and bring loaded tenant views up to date."""
        idle_rounds = 0
        while not self._closed.is_set():
            try:
                # Short waits so close() returns promptly; a periodic refresh covers a
                # missed wake-up.
                woke = self._store.wait_for_commit(0.05)
                idle_rounds = 0 if woke else idle_rounds + 1
                if not self._closed.is_set() and (woke or idle_rounds >= 20):
                    idle_rounds = 0
                    self._cache.refresh()
                    self._tokens.maybe_reload()
            except ConfhubError:
                self._closed.wait(0.5)  # storage is down; the next round catches up
            except Exception:  # pragma: no cover - never let the follower die silently
                logger.exception("cache follower failed; retrying")
                self._closed.wait(0.5)

    def sync(self) -> None:
        """Bring the cache up to storage now (it otherwise lags other processes by ~ms)."""
        self._cache.refresh()

    def close(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        self._watchers.end(None, Unavailable("the hub was closed"))
        self._follower.join(timeout=5)
        self._store.close()

    def __enter__(self) -> Hub:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _view(self, tenant: str) -> TenantView:
        view = self._cache.view(tenant)
        if view is None:
            row = self._store.tenant(tenant)
            raise NotFound(
                f"tenant {tenant!r} " + ("is deleted" if row is not None else "does not exist"),
                tenant=tenant,
            )
        return view

    def _publish(self, tenant: str, revision: int, rows: builtins.list[VersionRow],
                 before: builtins.list[Entry | None]) -> None:
        self._watchers.publish(tenant, revision, lambda: [
            self._flag_restart(change_from_row(row), old.value if old else None)
            for row, old in zip(rows, before, strict=True)])

    def _restart_paths_of(self, change: Change) -> Sequence[str]:
        """The fields of ``change``'s key its schema marks ``x-restart-required`` (schemas are
        looked up at most once a second per namespace, and afresh after a schema change made
        through this hub)."""
        key = (change.tenant, change.namespace)
        now = time.monotonic()
        cached = self._restart_paths.get(key)
        if cached is None or now - cached[0] > 1.0:
            _, compiled = _effective_schema(self._store.schema, *key)
            cached = self._restart_paths[key] = (now, compiled)
        compiled = cached[1]
        if compiled is None or not compiled.applies_to(change.key):
            return ()
        return compiled.annotations.get("restart_required", ())

    def _flag_restart(self, change: Change, old_value: Any) -> Change:
        """``change``, marked restart_required if it alters a restart-required field."""
        paths = self._restart_paths_of(change)
        if paths and touches(paths, old_value, change.value):
            return dataclasses.replace(change, restart_required=True)
        return change

    def _tenant_gone(self, tenant: str) -> None:
        self._watchers.end(tenant, NotFound(f"tenant {tenant!r} was deleted", tenant=tenant))

    def _subscribe(self, tenant: str, filter: WatchFilter, since: int | None,
                   wake: Callable[[], None]) -> Subscription:
        """Register a watcher of ``tenant`` starting after ``since`` (None: from now)."""
        if since is not None:
            _check_since(since)
        while True:
            view = self._view(tenant)  # loads the tenant outside the lock if needed
            with self._cache.lock:
                if not view.valid:
                    continue  # deleted or reloaded meanwhile: look again
                position = view.revision if since is None else since
                subscription = Subscription(tenant, filter, position, view.revision, wake)
                self._watchers.add(subscription)
                break
        if since is not None and since < view.revision:
            try:
                self.tenant(tenant)._check_retained(since)
            except ConfhubError:
                self._watchers.remove(subscription)
                raise
        return subscription

    def _commit(self, tenant: str, fn: Callable[[WriteTxn], T], *, create: bool = False,
                dry_run: bool = False, warnings: list[ValidationIssue] | None = None
                ) -> tuple[T, int, list[VersionRow]]:
        """Run ``fn`` in one store transaction; apply the commit to the cache once durable.

        Every write of every kind comes through here, so this is where values are validated:
        after ``fn`` appended its versions and before the commit, each key it touched is checked
        (resolved per env) against its namespace's schema, inside the same transaction and
        lock, so a refused write changes nothing and no schema change can slip in between.
        The write's warnings (rules of severity warning it broke) go to ``warnings``.
        """
        appended: list[VersionRow] = []
        sink: list[ValidationIssue] = warnings if warnings is not None else []

        def run(txn: WriteTxn) -> tuple[T, int]:
            recording = _Recording(txn, appended)
            result = fn(recording)
            if appended:
                sink.extend(_validate_appended(recording, appended, self._vault))
            if dry_run:
                raise _DryRun((result, txn.revision))
            for row in appended:  # in the same transaction: no change goes unaudited
                txn.append_audit(_change_audit(row))
            return result, txn.revision

        try:
            result, revision = self._store.write(tenant, run, create=create)
        except _DryRun as dry:
            result, revision = dry.result
            return result, revision, appended
        if appended:
            # In feed order, so a watcher sees a revision the same whether it arrives live or
            # is read back from storage.
            self._cache.applied(tenant, revision, sorted(appended, key=_feed_order))
        return result, revision, appended

    # ------------------------------------------------------------------ tenants

    def tenant(self, name: str = DEFAULT_TENANT) -> Tenant:
        """The API of one tenant (nothing is read until you call a method)."""
        return Tenant(self, check_name("tenant", name))

    def tenants(self, include_deleted: bool = False) -> list[TenantInfo]:
        return [_tenant_info(row) for row in self._store.tenants(include_deleted)]

    def tenant_info(self, name: str) -> TenantInfo:
        row = self._store.tenant(check_name("tenant", name))
        if row is None:
            raise NotFound(f"tenant {name!r} does not exist", tenant=name)
        return _tenant_info(row)

    def create_tenant(self, name: str, template: str | None = None,
                      overrides: Mapping[str, Mapping[str, Any]] | None = None, *,
                      reason: str | None = None, author: str | None = None) -> TenantInfo:
        """Create a tenant, optionally as a copy of ``template``'s current values (every env)
        with ``overrides`` (``{namespace: {key: value}}``, merge-patched onto the base layer),
        all in the new tenant's first revision."""
        check_name("tenant", name)
        rows = self._template_rows(template) if template is not None else []
        patches = self._check_overrides(overrides)
        meta = _meta(reason or (f"created from template {template!r}" if template else None),
                     author, None)

        def create(txn: WriteTxn) -> None:
            copied: dict[tuple[str, str, str], Any] = {}
            for row in rows:
                copied[(row.env, row.namespace, row.key)] = row
            for (namespace, key), patch in patches.items():
                base = copied.get((BASE_ENV, namespace, key))
                value = merge_patch(decode_value(base.value), patch) if base else patch
                copied[(BASE_ENV, namespace, key)] = encode_value(
                    value, max_bytes=self.max_value_bytes, where=f"override {namespace}/{key}")
            for (env, namespace, key), item in sorted(copied.items()):
                text = item if isinstance(item, str) else item.value
                secret = False if isinstance(item, str) else item.secret
                txn.append(_row(txn, env, namespace, key, 1, "import", text, False, meta,
                                secret=secret))

        self._commit(name, create, create=True)
        self._audit("tenant.create", name, target=name, reason=meta.reason,
                    details={"template": template} if template else None)
        return self.tenant_info(name)

    def _template_rows(self, template: str) -> list[VersionRow]:
        check_name("tenant", template)
        row = self._store.tenant(template)
        if row is None or row.deleted_at is not None:
            raise NotFound(f"template tenant {template!r} does not exist", tenant=template)
        return list(self._store.current_rows(template))

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
                encode_value(value, max_bytes=self.max_value_bytes,
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
        if hard:
            self._store.purge_tenant(name)
            self._tokens.reload()  # its tokens were revoked with it
        else:
            self._store.set_tenant_deleted(name, True)
        self._audit("tenant.purge" if hard else "tenant.delete", name, target=name)
        self._cache.evict(name)

    def restore_tenant(self, name: str) -> TenantInfo:
        """Undo a soft delete."""
        check_name("tenant", name)
        self._store.set_tenant_deleted(name, False)
        self._audit("tenant.restore", name, target=name)
        self._cache.evict(name)
        return self.tenant_info(name)

    # ------------------------------------------------------------------ export / import

    def export(self, tenant: str = DEFAULT_TENANT, include_history: bool = False, *,
               include_secrets: bool = False) -> dict[str, Any]:
        """A JSON-serialisable backup of a tenant (format ``confhub-export`` version 1).

        Secrets are ``"***"`` unless ``include_secrets`` (needs the master key; audited):
        then they are in plain text, and importing the document encrypts them again."""
        check_name("tenant", tenant)
        info = self.tenant_info(tenant)
        if info.deleted:
            raise NotFound(f"tenant {tenant!r} is deleted", tenant=tenant)
        if include_secrets:
            if not self._vault.enabled:
                raise InvalidRequest(_secrets.NO_MASTER_KEY, reason="no_master_key")
            self._audit("secret.export", tenant, target=tenant)
        shown = self._shown_row if not include_secrets else self._revealed_row
        entries = [entry_item(shown(row)) for row in self._store.current_rows(tenant)]
        document: dict[str, Any] = {
            "format": EXPORT_FORMAT,
            "format_version": EXPORT_FORMAT_VERSION,
            "tenant": tenant,
            "revision": info.revision,
            "exported_at": utc_from_micros(now_micros()).isoformat(),
            "entries": entries,
            "snapshots": [{"label": label, "revision": rev,
                           "created_at": utc_from_micros(created).isoformat()}
                          for label, rev, created in self._store.snapshots(tenant)],
        }
        if include_history:
            rows = self._store.changes(tenant, 0, 1 << 62)
            document["history"] = [history_item(shown(row)) for row in rows]
        return document

    @staticmethod
    def _shown_row(row: VersionRow) -> VersionRow:
        if not row.secret:
            return row
        return dataclasses.replace(row, value=_secrets.redact_text(row.value))

    def _revealed_row(self, row: VersionRow) -> VersionRow:
        if not row.secret or row.value is None:
            return row
        value = self._vault.open(json.loads(row.value))
        return dataclasses.replace(row, value=json.dumps(value, ensure_ascii=False,
                                                         separators=(",", ":"), sort_keys=True))

    def import_(self, tenant: str, data: Mapping[str, Any], overwrite_existing: bool = False,
                preserve_versions: bool = True, *, reason: str | None = None,
                author: str | None = None, dry_run: bool = False) -> dict[str, int]:
        """Load an export into ``tenant`` (created if missing) as one transaction.

        A key absent from the tenant is created — with its whole history and version numbers
        when the export has history and ``preserve_versions`` is true. A key that exists is
        skipped, or given the exported value as a new version when ``overwrite_existing``.
        Returns counts: created, updated, skipped, versions (rows written).
        """
        check_name("tenant", tenant)
        plan = parse_export(data, self.max_value_bytes)
        meta = _meta(reason or "import", author, None)
        exists = self._store.tenant(tenant)
        if exists is not None and exists.deleted_at is not None:
            raise NotFound(f"tenant {tenant!r} is deleted (restore it first)", tenant=tenant)
        plan = self._seal_import(tenant, plan)

        def load(txn: WriteTxn) -> dict[str, int]:
            counts = {"created": 0, "updated": 0, "skipped": 0, "versions": 0}
            for (env, namespace, key), (current, history) in plan.items():
                existing = txn.current(env, namespace, key)
                live = existing is not None and not existing.deleted
                if live and not overwrite_existing:
                    counts["skipped"] += 1
                    continue
                if current is None:  # deleted in the export: only history can be restored
                    if existing is None and history and preserve_versions:
                        for item in history:
                            txn.append(_imported_row(txn, env, namespace, key, item))
                            counts["versions"] += 1
                        counts["created"] += 1
                    else:
                        counts["skipped"] += 1
                    continue
                text, secret = current
                if existing is None and history and preserve_versions:
                    for item in history:
                        txn.append(_imported_row(txn, env, namespace, key, item))
                        counts["versions"] += 1
                else:
                    version = existing.version + 1 if existing is not None else 1
                    txn.append(_row(txn, env, namespace, key, version, "import", text, False,
                                    meta, secret=secret, born=_born(existing)))
                    counts["versions"] += 1
                counts["updated" if live else "created"] += 1
            return counts

        counts, _, _ = self._commit(tenant, load, create=exists is None, dry_run=dry_run)
        return counts

    def _seal_import(self, tenant: str, plan: Any) -> Any:
        """Secret items of an export arrive in plain text (``--include-secrets``): encrypt them
        (whole value) before they are stored. A redacted export cannot restore secrets."""
        def seal(text: str | None, secret: bool, where: str) -> str | None:
            if not secret or text is None or _secrets.has_envelope(text):
                return text
            if f'"{_secrets.REDACTED}"' in text:
                raise InvalidRequest(f"{where} is a redacted secret; export with "
                                     "include_secrets to back secrets up", where=where)
            self._vault.ensure_tenant_key(tenant)
            return encode_value(self._vault.seal(tenant, json.loads(text), [""]))

        if not any(cur is not None and cur[1] for cur, _ in plan.values()) and not any(
                item.get("secret") for _, history in plan.values() for item in history):
            return plan
        sealed: dict[Any, Any] = {}
        for address, (current, history) in plan.items():
            where = "/".join(address)
            if current is not None:
                current = (seal(current[0], current[1], where), current[1])
            history = [{**item, "text": seal(item["text"], item["secret"], where)}
                       for item in history]
            sealed[address] = (current, history)
        return sealed

    # ------------------------------------------------------------------ security

    def _audit(self, action: str, tenant: str | None, *, target: str | None = None,
               reason: str | None = None, details: Mapping[str, Any] | None = None,
               actor: str | None = None) -> None:
        """Append one audit record outside any tenant transaction."""
        who = current_actor()
        self._store.append_audit([AuditRow(
            at=now_micros(), action=action, tenant=tenant, target=target, reason=reason,
            actor=actor or (who.name if who else None),
            client=who.client if who else "embedded",
            request_id=who.request_id if who else None,
            details=json.dumps(dict(details), sort_keys=True) if details else None)])

    def record_audit(self, action: str, tenant: str | None, *, target: str | None = None,
                     reason: str | None = None, details: Mapping[str, Any] | None = None,
                     actor: str | None = None) -> None:
        """Append an audit record (the server records failed logins with this)."""
        self._audit(action, tenant, target=target, reason=reason, details=details,
                    actor=actor)

    def audit(self, tenant: str | None = None, *, after: int = 0, limit: int = 1000,
              action: str | None = None, actor: str | None = None,
              target: str | None = None, since: datetime | None = None,
              until: datetime | None = None) -> builtins.list[AuditEvent]:
        """Audit records oldest first (of ``tenant``; None: every tenant), after record id
        ``after``; ``target`` matches a prefix (``models/`` for a namespace)."""
        if tenant is not None:
            check_name("tenant", tenant)
        if isinstance(after, bool) or not isinstance(after, int) or after < 0:
            raise InvalidRequest(f"after must be an integer >= 0, not {after!r}")
        rows = self._store.audit(
            tenant, after=after, limit=_check_limit(limit), action=action, actor=actor,
            target_prefix=target,
            since_at=_micros(since) if since is not None else None,
            until_at=_micros(until) if until is not None else None)
        return [AuditEvent.from_row(row) for row in rows]

    def create_token(self, *, tenant: str | None = None, role: str = "viewer",
                     namespaces: Sequence[str] | str | None = None,
                     expires_in: int | str | None = None, name: str | None = None,
                     created_by: str | None = None) -> tuple[str, TokenInfo]:
        """Create a bearer token; returns ``(token, info)``. The token is not stored (only a
        hash): this is the one time it is shown. ``role="superadmin"`` takes no tenant;
        every other role needs one. ``expires_in`` is seconds or a duration like ``30d``."""
        _tokens.role_rank(role)
        if (role == "superadmin") != (tenant is None):
            raise InvalidRequest("a superadmin token has no tenant; every other role needs one",
                                 role=role)
        if tenant is not None:
            check_name("tenant", tenant)
            info = self._store.tenant(tenant)
            if info is None or info.deleted_at is not None:
                raise NotFound(f"tenant {tenant!r} does not exist", tenant=tenant)
        limited = _tokens.check_namespaces(namespaces)
        if limited is not None and role == "superadmin":
            raise InvalidRequest("a superadmin token cannot be limited to namespaces")
        if isinstance(expires_in, str):
            expires_in = _tokens.parse_duration(expires_in)
        if expires_in is not None and (isinstance(expires_in, bool) or expires_in <= 0):
            raise InvalidRequest(f"expires_in must be a positive number of seconds, "
                                 f"not {expires_in!r}")
        if name is not None:
            check_name("token name", name)
        token, token_id, digest = _tokens.new_token()
        created = now_micros()
        row = TokenRow(
            id=token_id, name=name or f"token-{token_id}", hash=digest, tenant=tenant,
            role=role, namespaces=json.dumps(list(limited)) if limited else None,
            created_at=created,
            expires_at=created + int(expires_in) * 1_000_000 if expires_in else None,
            created_by=created_by or _actor_name(),
        )
        self._store.add_token(row)
        self._tokens.reload()
        self._audit("token.create", tenant, target=row.name,
                    details={"token_id": token_id, "role": role,
                             "namespaces": list(limited) if limited else None})
        return token, TokenInfo.from_row(row)

    def tokens(self, tenant: str | None = None, *, include_revoked: bool = False
               ) -> builtins.list[TokenInfo]:
        """Tokens (of one tenant, or all); never the tokens themselves."""
        rows = self._store.tokens()
        return [TokenInfo.from_row(r) for r in rows
                if (tenant is None or r.tenant == tenant)
                and (include_revoked or r.revoked_at is None)]

    def token_info(self, token_id: str) -> TokenInfo:
        row = self._store.token(token_id)
        if row is None:
            raise NotFound(f"token {token_id!r} does not exist", token_id=token_id)
        return TokenInfo.from_row(row)

    def revoke_token(self, token_id: str) -> TokenInfo:
        """Revoke a token at once in this process (other processes within about a second)."""
        row = self._store.revoke_token(token_id, now_micros())
        self._tokens.reload()
        self._audit("token.revoke", row.tenant, target=row.name,
                    details={"token_id": token_id})
        return TokenInfo.from_row(row)

    @property
    def auth_enabled(self) -> bool:
        """True once any token exists in this database (then every request needs one)."""
        return self._tokens.any

    def authenticate(self, token: str, *, io: bool = True) -> Principal | None:
        """The principal a bearer token stands for. Raises Unauthorized (malformed, unknown,
        expired, revoked). With ``io=False`` it never touches storage and returns None when
        it would need to (a token created by another process in the last second)."""
        return self._tokens.authenticate(token, io=io)

    def rotate_keys(self) -> dict[str, int]:
        """Re-wrap every data key under the primary master key (the first of the ring);
        every other key of the ring must still be configured so old wraps can be opened.
        Values are not rewritten; readers keep working throughout."""
        rows = [(r.id, r.master_id, r.wrapped) for r in self._store.data_keys()]
        updated = self._vault.rewrap(rows)
        by_id = {r.id: r for r in self._store.data_keys()}
        changed = self._store.rewrap_data_keys([
            DataKeyRow(id=key_id, tenant=by_id[key_id].tenant, wrapped=wrapped,
                       master_id=master_id, created_at=by_id[key_id].created_at)
            for key_id, master_id, wrapped in updated])
        ring = self._vault.ring
        assert ring is not None
        self._audit("keys.rotate", None, details={"rewrapped": changed,
                                                  "primary": ring.primary_id})
        return {"data_keys": len(rows), "rewrapped": changed}

    # ------------------------------------------------------------------ operations

    def health(self) -> dict[str, Any]:
        """Never raises: ``ok`` is False (with ``error``) when storage cannot be reached."""
        try:
            latency = self._store.ping()
            row = self._store.tenant(DEFAULT_TENANT)
            return {"ok": True, "backend": self.backend,
                    "revision": row.revision if row else 0,
                    "latency_ms": round(latency * 1000, 3),
                    "cached_tenants": len(self._cache.views)}
        except ConfhubError as exc:
            return {"ok": False, "backend": self.backend, "error": exc.message}

    def stats(self) -> dict[str, Any]:
        return self._store.stats()


class _Recording:
    """Wraps a WriteTxn to remember what was appended (the cache applies exactly that)."""

    def __init__(self, txn: WriteTxn, sink: list[VersionRow]) -> None:
        self._txn = txn
        self._sink = sink
        self._schemas: dict[str, list[SchemaRow]] = {}
        self.tenant = txn.tenant
        self.revision = txn.revision
        self.previous_revision = txn.previous_revision
        self.now = txn.now

    def current(self, env: str, namespace: str, key: str) -> VersionRow | None:
        return self._txn.current(env, namespace, key)

    def version(self, env: str, namespace: str, key: str, version: int) -> VersionRow | None:
        return self._txn.version(env, namespace, key, version)

    def current_rows(self, namespace: str | None = None) -> list[VersionRow]:
        return self._txn.current_rows(namespace)

    def state_at(self, revision: int, namespace: str | None = None) -> list[VersionRow]:
        return self._txn.state_at(revision, namespace)

    def append(self, row: VersionRow) -> None:
        self._txn.append(row)
        self._sink.append(row)

    def changes_since(self, since: int) -> list[VersionRow]:
        return self._txn.changes_since(since)

    def append_audit(self, row: AuditRow) -> None:
        self._txn.append_audit(row)

    def layers(self, namespace: str, key: str) -> list[VersionRow]:
        return self._txn.layers(namespace, key)

    def schema(self, scope: str, namespace: str) -> SchemaRow | None:
        return self._txn.schema(scope, namespace)

    def schemas_in_force(self, namespace: str) -> list[SchemaRow]:
        # Asked for by every op (x-secret fields) and by validation: once per namespace is
        # enough, as schema writes take the tenant's lock, which this transaction holds.
        found = self._schemas.get(namespace)
        if found is None:
            found = self._schemas[namespace] = self._txn.schemas_in_force(namespace)
        return found


def _row(txn: WriteTxn, env: str, namespace: str, key: str, version: int, op: str,
         value: str | None, deleted: bool, meta: _Meta, *, rollback_of: int | None = None,
         secret: bool = False, born: int | None = None) -> VersionRow:
    """A new version row; ``born`` is when the key's live incarnation began (default: now)."""
    return VersionRow(
        tenant=txn.tenant, env=env, namespace=namespace, key=key, version=version,
        revision=txn.revision, op=op, deleted=deleted, value=None if deleted else value,
        created_at=txn.now, author=meta.author, reason=meta.reason, metadata=meta.metadata,
        rollback_of=rollback_of, request_id=meta.request_id, secret=secret,
        key_created_at=born if born is not None else txn.now,
    )


def _feed_order(row: VersionRow) -> tuple[str, str, str, int]:
    return row.env, row.namespace, row.key, row.version


def _actor_name() -> str | None:
    who = current_actor()
    return who.name if who else None


def _micros(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000)


def _change_audit(row: VersionRow) -> AuditRow:
    """The audit record of one committed change: who, what, why; never the value."""
    who = current_actor()
    target = f"{row.namespace}/{row.key}" + ("" if row.env == BASE_ENV else f"@{row.env}")
    return AuditRow(
        at=row.created_at, action=f"config.{row.op}", tenant=row.tenant, target=target,
        actor=(who.name if who else None) or row.author, reason=row.reason,
        request_id=row.request_id, client=who.client if who else "embedded",
        details=json.dumps({"version": row.version, "revision": row.revision,
                            "secret": row.secret}),
    )


class _StoreKeys:
    """The vault's view of the store's data keys."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def get(self, key_id: str) -> tuple[str, str] | None:
        row = self._store.data_key(key_id)
        return (row.master_id, row.wrapped) if row else None

    def latest(self, tenant: str) -> tuple[str, str, str] | None:
        rows = self._store.data_keys(tenant)
        return (rows[-1].id, rows[-1].master_id, rows[-1].wrapped) if rows else None

    def add(self, key_id: str, tenant: str, master_id: str, wrapped: str) -> None:
        self._store.add_data_key(DataKeyRow(id=key_id, tenant=tenant, wrapped=wrapped,
                                            master_id=master_id, created_at=now_micros()))


class _TokenCache:
    """Tokens by id, in memory: authenticating is a dict lookup, a SHA-256 and a constant-time
    compare. Reloaded by the hub's follower about every second (so a token created or revoked
    by another process counts within ~1 s) and at once after a change made through this hub."""

    RELOAD_EVERY = 1.0
    MISS_RELOAD_EVERY = 0.1

    def __init__(self, store: Store) -> None:
        self._store = store
        self._by_id: dict[str, TokenRow] = {}
        self._loaded_at = 0.0
        self._miss_at = 0.0
        self._lock = threading.Lock()
        self.any = False
        with contextlib.suppress(ConfhubError):
            self.reload()

    def reload(self) -> None:
        rows = self._store.tokens()
        with self._lock:
            self._by_id = {row.id: row for row in rows}
            self.any = bool(rows)
            self._loaded_at = time.monotonic()

    def maybe_reload(self) -> None:
        if time.monotonic() - self._loaded_at >= self.RELOAD_EVERY:
            self.reload()

    def authenticate(self, token: str, *, io: bool) -> Principal | None:
        parsed = _tokens.parse_token(token) if isinstance(token, str) else None
        if parsed is None:
            raise Unauthorized("malformed token", reason="malformed")
        token_id, secret = parsed
        row = self._by_id.get(token_id)
        if row is None:
            if not io:
                return None
            now = time.monotonic()
            if now - self._miss_at >= self.MISS_RELOAD_EVERY:  # bounded by an attacker
                self._miss_at = now
                self.reload()
                row = self._by_id.get(token_id)
        if row is None or not _tokens.token_matches(secret, row.hash):
            raise Unauthorized("unknown token", reason="unknown")
        if row.revoked_at is not None:
            raise Unauthorized(f"token {row.name!r} was revoked", reason="revoked")
        if row.expires_at is not None and row.expires_at <= now_micros():
            raise Unauthorized(f"token {row.name!r} has expired", reason="expired")
        namespaces = tuple(json.loads(row.namespaces)) if row.namespaces else None
        return Principal(name=row.name, role=row.role, tenant=row.tenant,
                         namespaces=namespaces, token_id=row.id)


def _born(cur: VersionRow | None) -> int | None:
    """When the live key ``cur`` was created; None (meaning now) if absent or deleted."""
    return cur.key_created_at if cur is not None and not cur.deleted else None


def _tenant_info(row: Any) -> TenantInfo:
    return TenantInfo(
        id=row.id, revision=row.revision, created_at=utc_from_micros(row.created_at),
        deleted_at=utc_from_micros(row.deleted_at) if row.deleted_at is not None else None,
    )


def _imported_row(txn: WriteTxn, env: str, namespace: str, key: str,
                  item: dict[str, Any]) -> VersionRow:
    """A historical version re-written under the import's revision, times and authors kept."""
    return VersionRow(
        tenant=txn.tenant, env=env, namespace=namespace, key=key, version=item["version"],
        revision=txn.revision, op=item["op"], deleted=item["deleted"], value=item["text"],
        created_at=item["created_at"], author=item["author"], reason=item["reason"],
        metadata=item["metadata"], rollback_of=item["rollback_of"],
        request_id=item["request_id"], secret=item["secret"],
    )


# --------------------------------------------------------------------------- tenant API


class Tenant:
    """Everything one tenant offers: reads from the cache, writes through the store."""

    def __init__(self, hub: Hub, name: str) -> None:
        self._hub = hub
        self.name = name
        self._cached_view: TenantView = EMPTY_VIEW

    def __repr__(self) -> str:
        return f"<confhub.Tenant {self.name!r} on {self._hub.backend}>"

    @property
    def _view(self) -> TenantView:
        view = self._cached_view
        if not view.valid:
            view = self._cached_view = self._hub._view(self.name)
        return view

    # ------------------------------------------------------------------ reads

    def get(self, namespace: str, key: str, *, env: str = BASE_ENV,
            version: int | None = None, reveal: bool = False) -> Entry:
        """The key's current value (a dict lookup), or an old ``version`` (a query).

        Secrets read ``"***"``; ``reveal=True`` decrypts them (needs the master key) and
        records the reveal in the audit log. Raises NotFound if the key, or that version of
        it, does not exist or is deleted.
        """
        if reveal:
            return self._reveal(self._get_slow(namespace, key, env, version))
        if version is None:
            entry = self._cached_view.entries.get((env, namespace, key))
            if entry is not None:
                return entry
        return self._get_slow(namespace, key, env, version)

    def _reveal(self, entry: Entry) -> Entry:
        if not entry.secret:
            return entry
        hub = self._hub
        if not hub._vault.enabled:
            raise InvalidRequest(_secrets.NO_MASTER_KEY, reason="no_master_key")
        row = hub._store.version(self.name, entry.env, entry.namespace, entry.key,
                                 entry.version)
        if row is None or row.value is None:
            raise NotFound(f"{_where(entry.env, entry.namespace, entry.key)} not found in "
                           f"tenant {self.name!r}", tenant=self.name)
        value = freeze(hub._vault.open(json.loads(row.value)))
        hub._audit("secret.reveal", self.name,
                   target=f"{entry.namespace}/{entry.key}"
                   + ("" if entry.env == BASE_ENV else f"@{entry.env}"),
                   details={"version": entry.version})
        return dataclasses.replace(entry, value=value)

    def _get_slow(self, namespace: str, key: str, env: str, version: int | None) -> Entry:
        _check_address(env, namespace, key)
        if version is None:
            entry = self._view.entries.get((env, namespace, key))
            if entry is None:
                raise NotFound(f"{_where(env, namespace, key)} not found in tenant "
                               f"{self.name!r}", tenant=self.name, env=env,
                               namespace=namespace, key=key)
            return entry
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise InvalidRequest(f"version must be an integer >= 1, not {version!r}")
        self._view  # noqa: B018 - raises NotFound for a missing tenant
        row = self._hub._store.version(self.name, env, namespace, key, version)
        if row is None or row.deleted:
            what = "is a deletion" if row is not None else "does not exist"
            raise NotFound(f"version {version} of {_where(env, namespace, key)} {what} in "
                           f"tenant {self.name!r}", tenant=self.name, env=env,
                           namespace=namespace, key=key, version=version)
        current = self._view.entries.get((env, namespace, key))
        return entry_from_row(row, current.created_at if current else None)

    def list(self, namespace: str, *, env: str = BASE_ENV, prefix: str | None = None
             ) -> builtins.list[Entry]:
        """Live entries of a namespace in one env layer, sorted by key."""
        check_name("env", env)
        check_name("namespace", namespace)
        # Other threads apply commits to the view while we read: copy it under the cache
        # lock, so the list holds whole transactions (never half of one) and cannot change
        # size while we sort it.
        view = self._view
        with self._hub._cache.lock:
            bucket = view.by_namespace.get((env, namespace), {}).copy()
        keys = sorted(k for k in bucket if prefix is None or k.startswith(prefix))
        return [bucket[k] for k in keys]

    def namespaces(self, *, env: str | None = None) -> builtins.list[str]:
        """Namespaces with at least one live key (in ``env``, or in any env)."""
        view = self._view
        with self._hub._cache.lock:
            return sorted({ns for (e, ns), bucket in view.by_namespace.items()
                           if bucket and (env is None or e == env)})

    def namespace_counts(self, *, env: str | None = None) -> dict[str, int]:
        """Live keys per namespace (summed over envs unless ``env`` is given)."""
        counts: dict[str, int] = {}
        view = self._view
        with self._hub._cache.lock:
            for (e, ns), bucket in view.by_namespace.items():
                if env is None or e == env:
                    counts[ns] = counts.get(ns, 0) + len(bucket)
        return dict(sorted(counts.items()))

    def envs(self) -> builtins.list[str]:
        """Env layers that hold at least one live key."""
        view = self._view
        with self._hub._cache.lock:
            return sorted({e for (e, _), bucket in view.by_namespace.items() if bucket})

    def resolve(self, namespace: str, key: str, *, env: str = BASE_ENV) -> Resolved:
        """The ``base`` layer deep-merged with ``env``'s layer (see :mod:`confhub.layering`)."""
        _check_address(env, namespace, key)
        view = self._view
        layers = (BASE_ENV,) if env == BASE_ENV else (BASE_ENV, env)
        with self._hub._cache.lock:  # both layers from the same revision
            found = [(layer, entry) for layer in layers
                     if (entry := view.entries.get((layer, namespace, key))) is not None]
        if not found:
            raise NotFound(f"{namespace}/{key} has no value in "
                           f"{' or '.join(repr(layer) for layer in layers)} in tenant "
                           f"{self.name!r}", tenant=self.name, env=env, namespace=namespace,
                           key=key)
        values = [(layer, entry.value) for layer, entry in found]
        if values[0][0] != BASE_ENV:  # only the overlay exists: it patches an empty base
            values = [(values[0][0], merge_patch(None, values[0][1]))]
        value, sources = resolve_layers(values)
        return Resolved(tenant=self.name, env=env, namespace=namespace, key=key,
                        value=freeze(value), sources=sources,
                        versions={layer: entry.version for layer, entry in found})

    def history(self, namespace: str, key: str, *, env: str = BASE_ENV, limit: int = 50,
                before: int | None = None) -> builtins.list[Version]:
        """Versions newest first (tombstones included); ``before`` pages back from a version."""
        _check_address(env, namespace, key)
        limit = _check_limit(limit)
        if before is not None and (isinstance(before, bool) or not isinstance(before, int)):
            raise InvalidRequest(f"before must be an integer version, not {before!r}")
        self._view  # noqa: B018 - raises NotFound for a missing tenant
        rows = self._hub._store.history(self.name, env, namespace, key, limit, before)
        if not rows and before is None:
            raise NotFound(f"{_where(env, namespace, key)} has no history in tenant "
                           f"{self.name!r}", tenant=self.name, env=env, namespace=namespace,
                           key=key)
        return [_version_from_row(row) for row in rows]

    def diff(self, namespace: str, key: str, from_version: int, to_version: int, *,
             env: str = BASE_ENV) -> builtins.list[dict[str, Any]]:
        """RFC 6902 JSON Patch turning ``from_version``'s value into ``to_version``'s
        (a deletion counts as ``null``)."""
        _check_address(env, namespace, key)
        self._view  # noqa: B018
        values = []
        for number in (from_version, to_version):
            if isinstance(number, bool) or not isinstance(number, int) or number < 1:
                raise InvalidRequest(f"versions must be integers >= 1, not {number!r}")
            row = self._hub._store.version(self.name, env, namespace, key, number)
            if row is None:
                raise NotFound(f"version {number} of {_where(env, namespace, key)} does not "
                               f"exist in tenant {self.name!r}", tenant=self.name,
                               namespace=namespace, key=key, version=number)
            values.append(None if row.deleted else
                          _secrets.diff_marks(json.loads(row.value or "null")))
        # A secret that changed shows as changed, never with its values.
        return [_secrets.redact_marks(op) for op in json_diff(values[0], values[1])]

    def changes(self, since: int = 0, limit: int = 1000, *,
                wait: float | None = None) -> builtins.list[Change]:
        """Changes after revision ``since`` in revision order; a page never splits a
        transaction. Raises Gone if retention removed revisions after ``since``.

        With ``wait`` (seconds), an empty answer is held until a change commits or the time
        is up: a long poll for clients that cannot keep a stream open.
        """
        since = _check_since(since)
        limit = _check_limit(limit)
        if wait is not None:
            self._wait_for_change(since, check_wait(wait))
        self._check_retained(since)
        return [change_from_row(r) for r in self._hub._store.changes(self.name, since, limit)]

    def _check_retained(self, since: int) -> None:
        """NotFound for a missing or deleted tenant; Gone when retention removed revisions
        after ``since``."""
        info = self._hub._store.tenant(self.name)
        if info is None or info.deleted_at is not None:
            self._hub._view(self.name)  # raises the right NotFound
        assert info is not None
        if since < info.compacted_revision:
            raise Gone(f"history before revision {info.compacted_revision} of tenant "
                       f"{self.name!r} was removed by retention; re-list and continue from "
                       f"revision {info.revision}", compacted_revision=info.compacted_revision,
                       current_revision=info.revision)

    def _wait_for_change(self, since: int, timeout: float) -> None:
        arrived = threading.Event()
        subscription = self._hub._subscribe(self.name, WatchFilter(), since, arrived.set)
        try:
            if not subscription.catching_up:
                arrived.wait(timeout)
        finally:
            self._hub._watchers.remove(subscription)

    # ------------------------------------------------------------------ watch

    def watch(self, callback: Callable[[Change], object], namespace: str | None = None,
              key: str | None = None, env: str | None = None,
              since: int | None = None) -> WatchHandle:
        """Call ``callback(change)`` for every change after revision ``since`` (None: from
        now on), in revision order, exactly once, in a thread of its own; ``stop()`` ends it.

        The changes of one transaction arrive consecutively and share its revision. A
        callback that raises is logged and the watch carries on.
        """
        arrived = threading.Event()
        subscription = self._hub._subscribe(self.name, WatchFilter.of(namespace, key, env),
                                            since, arrived.set)
        return WatchHandle(subscription, self._feed, arrived, callback,
                           lambda: self._hub._watchers.remove(subscription))

    def watch_events(self, namespace: str | None = None, key: str | None = None,
                     env: str | None = None, since: int | None = None) -> AsyncWatch:
        """``async for event in cfg.watch_events(...)``: one WatchEvent per revision (the
        form the HTTP stream sends). ``await w.start()`` subscribes and raises early."""
        watch_filter = WatchFilter.of(namespace, key, env)
        return AsyncWatch(
            lambda wake: self._hub._subscribe(self.name, watch_filter, since, wake),
            self._feed, self._hub._watchers.remove)

    async def watch_async(self, namespace: str | None = None, key: str | None = None,
                          env: str | None = None, since: int | None = None
                          ) -> AsyncIterator[Change]:
        """``async for change in cfg.watch_async(...)``: the changes ``watch`` would deliver."""
        async with self.watch_events(namespace, key, env, since) as events:
            async for event in events:
                for change in event.changes:
                    yield change

    def live(self, namespace: str, key: str, *, model: Callable[..., T] | None = None,
             env: str = BASE_ENV, default: Any = MISSING) -> Live[T]:
        """The key's resolved value for ``env``, kept current: ``live.value`` (an instance of
        ``model`` when given, e.g. a pydantic model), ``live.on_change(cb)``; see live.py.
        Raises NotFound if the key is missing and no ``default`` is given."""
        check_name("namespace", namespace)
        check_name("key", key)
        check_name("env", env)
        return Live(self, namespace, key, env=env, model=model, default=default)

    def _feed(self, since: int, limit: int) -> builtins.list[Change]:
        """The feed as watchers get it: restart-required changes flagged, as when live."""
        hub, flagged = self._hub, []
        for change in self.changes(since, limit):
            if change.version > 1 and hub._restart_paths_of(change):
                row = hub._store.version(self.name, change.env, change.namespace, change.key,
                                         change.version - 1)
                change = hub._flag_restart(change, change_from_row(row).value if row else None)
            elif change.version == 1:
                change = hub._flag_restart(change, None)
            flagged.append(change)
        return flagged

    @property
    def revision(self) -> int:
        """The tenant's latest committed revision."""
        info = self._hub._store.tenant(self.name)
        if info is None:
            raise NotFound(f"tenant {self.name!r} does not exist", tenant=self.name)
        return info.revision

    # ------------------------------------------------------------------ writes

    def _write(self, ops: Sequence[_Op], meta: _Meta, dry_run: bool = False
               ) -> tuple[builtins.list[VersionRow], int, builtins.list[ValidationIssue]]:
        hub = self._hub
        warnings: builtins.list[ValidationIssue] = []

        vault = hub._vault
        if vault.enabled:  # a write may touch a secret: have the data key before locking
            vault.ensure_tenant_key(self.name)
        elif any(op.secret_paths for op in ops):
            raise InvalidRequest(_secrets.NO_MASTER_KEY, reason="no_master_key")

        def apply(txn: WriteTxn) -> None:
            for op in ops:
                _apply_op(txn, op, meta, hub.max_value_bytes, vault)

        _, revision, rows = hub._commit(self.name, apply, dry_run=dry_run, warnings=warnings)
        return rows, revision, warnings

    def _entry(self, row: VersionRow, warnings: Sequence[ValidationIssue] = ()) -> Entry:
        existing = self._cached_view.entries.get((row.env, row.namespace, row.key))
        entry = (existing if existing is not None and existing.version == row.version
                 else entry_from_row(row))
        # The cached Entry is shared: warnings go on a copy (they belong to this write only).
        return dataclasses.replace(entry, warnings=tuple(warnings)) if warnings else entry

    def _put_op(self, namespace: str, key: str, value: Any, env: str,
                expected_version: int | None,
                secret: bool | Sequence[str] = False) -> _Op:
        _check_address(env, namespace, key)
        where = f"value of {_where(env, namespace, key)}"
        encoded = encode_value(value, max_bytes=self._hub.max_value_bytes, where=where)
        _secrets.reject_envelopes(encoded, where)
        paths: tuple[str, ...] | None = None
        if secret is True:
            paths = ("",)
        elif secret is not False and secret is not None:
            if isinstance(secret, str):
                raise InvalidRequest("secret= takes True or a list of JSON pointers")
            paths = _secrets.check_pointers(secret) or None
        return _Op("put", env, namespace, key, encoded=encoded,
                   expected_version=_check_expected(expected_version), secret_paths=paths)

    def set(self, namespace: str, key: str, value: Any, *, env: str = BASE_ENV,
            expected_version: int | None = None, reason: str | None = None,
            author: str | None = None, metadata: Mapping[str, Any] | None = None,
            dry_run: bool = False, request_id: str | None = None,
            secret: bool | Sequence[str] = False) -> Entry:
        """Write a new version of the key (creating it if needed) and return the new Entry.

        ``expected_version`` makes it a compare-and-set (0: must not exist); a mismatch raises
        VersionConflict and writes nothing. ``dry_run`` checks and returns, committing nothing.
        ``secret=True`` encrypts the whole value, a list of JSON pointers (``["/password"]``)
        encrypts those fields; a key that holds secrets keeps them encrypted on later writes.
        The returned entry shows secrets as ``"***"`` (see ``get(reveal=True)``).
        """
        op = self._put_op(namespace, key, value, env, expected_version, secret)
        rows, _, warnings = self._write([op], _meta(reason, author, metadata, request_id),
                                        dry_run)
        return self._entry(rows[0], warnings)

    def patch(self, namespace: str, key: str, patch: Any, *, env: str = BASE_ENV,
              expected_version: int | None = None, reason: str | None = None,
              author: str | None = None, metadata: Mapping[str, Any] | None = None,
              json_patch: bool = False, dry_run: bool = False,
              request_id: str | None = None) -> Entry:
        """Apply an RFC 7386 merge patch (or, with ``json_patch=True``, an RFC 6902 JSON Patch
        list) to the current value, as a new version. NotFound if the key does not exist."""
        op = self._patch_op(namespace, key, patch, env, expected_version, json_patch)
        rows, _, warnings = self._write([op], _meta(reason, author, metadata, request_id),
                                        dry_run)
        return self._entry(rows[0], warnings)

    def _patch_op(self, namespace: str, key: str, patch: Any, env: str,
                  expected_version: int | None, json_patch: bool) -> _Op:
        _check_address(env, namespace, key)
        _secrets.reject_envelopes(
            encode_value(patch, max_bytes=self._hub.max_value_bytes, where="patch"), "patch")
        if json_patch:
            if not isinstance(patch, list):
                raise InvalidRequest("a JSON Patch (RFC 6902) must be a list of operations")
            try:
                jsonpatch.JsonPatch(thaw(patch))
            except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException, TypeError,
                    KeyError) as exc:
                raise InvalidRequest(f"invalid JSON Patch: {exc}") from exc
        return _Op("json_patch" if json_patch else "patch", env, namespace, key,
                   value=thaw(patch), expected_version=_check_expected(expected_version))

    def delete(self, namespace: str, key: str, *, env: str = BASE_ENV,
               expected_version: int | None = None, reason: str | None = None,
               author: str | None = None, metadata: Mapping[str, Any] | None = None,
               dry_run: bool = False, request_id: str | None = None) -> Version:
        """Write a tombstone version; the key can be re-created and its history continues.
        NotFound if it does not exist."""
        _check_address(env, namespace, key)
        op = _Op("delete", env, namespace, key,
                 expected_version=_check_expected(expected_version))
        rows, _, _ = self._write([op], _meta(reason, author, metadata, request_id), dry_run)
        return _version_from_row(rows[0])

    def rollback(self, namespace: str, key: str, to_version: int, *, env: str = BASE_ENV,
                 expected_version: int | None = None, reason: str | None = None,
                 author: str | None = None, metadata: Mapping[str, Any] | None = None,
                 dry_run: bool = False, request_id: str | None = None) -> Entry:
        """Write a new version whose value equals ``to_version``'s (``op="rollback"``,
        ``rollback_of=to_version``). History is never rewritten."""
        _check_address(env, namespace, key)
        if isinstance(to_version, bool) or not isinstance(to_version, int) or to_version < 1:
            raise InvalidRequest(f"to_version must be an integer >= 1, not {to_version!r}")
        op = _Op("rollback", env, namespace, key, to_version=to_version,
                 expected_version=_check_expected(expected_version))
        rows, _, warnings = self._write([op], _meta(reason, author, metadata, request_id),
                                        dry_run)
        return self._entry(rows[0], warnings)

    def transaction(self, *, reason: str | None = None, author: str | None = None,
                    metadata: Mapping[str, Any] | None = None, dry_run: bool = False
                    ) -> Transaction:
        """A batch of writes committed atomically as one revision when the ``with`` block
        ends without an exception (nothing is written otherwise)."""
        return Transaction(self, _meta(reason, author, metadata), dry_run)

    # ------------------------------------------------------------------ snapshots

    def snapshot(self, label: str) -> Snapshot:
        """Label the current revision. AlreadyExists if the label is taken."""
        check_name("snapshot", label)
        self._view  # noqa: B018
        name, revision, created = self._hub._store.add_snapshot(self.name, label)
        return Snapshot(tenant=self.name, label=name, revision=revision,
                        created_at=utc_from_micros(created))

    def snapshots(self) -> builtins.list[Snapshot]:
        self._view  # noqa: B018
        return [Snapshot(tenant=self.name, label=label, revision=rev,
                         created_at=utc_from_micros(created))
                for label, rev, created in self._hub._store.snapshots(self.name)]

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
        info = self._hub._store.tenant(self.name)
        self._view  # noqa: B018
        assert info is not None
        if snapshot is not None:
            found = self._hub._store.snapshot(self.name, check_name("snapshot", snapshot))
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
        if target < info.compacted_revision:
            raise Gone(f"revision {target} of tenant {self.name!r} was removed by retention",
                       compacted_revision=info.compacted_revision)
        meta = _meta(reason or (f"restore snapshot {snapshot!r}" if snapshot
                                else f"restore revision {target}"), author, None)

        def restore(txn: WriteTxn) -> None:
            wanted = {(r.env, r.namespace, r.key): r for r in txn.state_at(target, namespace)}
            now = {(r.env, r.namespace, r.key): r for r in txn.current_rows(namespace)}
            for address in sorted(set(wanted) | set(now)):
                old, cur = wanted.get(address), now.get(address)
                old_live = old is not None and not old.deleted
                cur_live = cur is not None and not cur.deleted
                next_version = cur.version + 1 if cur is not None else 1
                if old_live and (not cur_live or cur.value != old.value  # type: ignore[union-attr]
                                 or cur.secret != old.secret):  # type: ignore[union-attr]
                    assert old is not None
                    txn.append(_row(txn, *address, next_version, "restore", old.value, False,
                                    meta, secret=old.secret, born=_born(cur)))
                elif not old_live and cur_live:
                    txn.append(_row(txn, *address, next_version, "restore", None, True, meta))

        _, _, rows = self._hub._commit(self.name, restore, dry_run=dry_run)
        return [change_from_row(row) for row in rows]

    # ------------------------------------------------------------------ validation

    def validate(self, namespace: str, key: str, value: Any, *, env: str = BASE_ENV
                 ) -> ValidationReport:
        """Check ``value`` as the new value of ``namespace/key`` in ``env`` against the schema
        in force, exactly as a write would (an env value is checked resolved over ``base``).
        Writes nothing; never raises for an invalid value: look at ``report.valid``."""
        _check_address(env, namespace, key)
        encode_value(value, max_bytes=self._hub.max_value_bytes,
                     where=f"value of {_where(env, namespace, key)}")
        self._view  # noqa: B018 - raises NotFound for a missing tenant
        _, compiled = _effective_schema(self._hub._store.schema, self.name, namespace)
        if compiled is None or not compiled.applies_to(key):
            return ValidationReport()
        layers: dict[str, Any] = {env: thaw(value)}
        if env != BASE_ENV:
            base = self._view.entries.get((BASE_ENV, namespace, key))
            if base is not None:
                layers[BASE_ENV] = thaw(base.value)
        errors, warnings = check_layers(compiled, layers, [env], namespace, key)
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
        current = self._hub._store.schema(self._scope(all_tenants), namespace)
        if current is None or current.deleted:
            raise NotFound(f"namespace {namespace!r} has no schema"
                           + (" for all tenants" if all_tenants else f" in tenant {self.name!r}"),
                           tenant=self.name, namespace=namespace)
        return self._change_schema(namespace, all_tenants, None, None, None, reason, author,
                                   False)

    def rollback_schema(self, namespace: str, to_version: int, *, all_tenants: bool = False,
                        reason: str | None = None, author: str | None = None,
                        dry_run: bool = False) -> Schema:
        """A new schema version equal to ``to_version`` (checked against existing values like
        any schema change)."""
        check_name("namespace", namespace)
        if isinstance(to_version, bool) or not isinstance(to_version, int) or to_version < 1:
            raise InvalidRequest(f"to_version must be an integer >= 1, not {to_version!r}")
        old = self._hub._store.schema(self._scope(all_tenants), namespace, to_version)
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
        store = self._hub._store
        if version is None and not all_tenants:
            row, _ = _effective_schema(store.schema, self.name, namespace)
        else:
            if version is not None and (isinstance(version, bool)
                                        or not isinstance(version, int) or version < 1):
                raise InvalidRequest(f"version must be an integer >= 1, not {version!r}")
            row = store.schema(self._scope(all_tenants), namespace, version)
            if row is not None and row.deleted and version is None:
                row = None
        if row is None:
            raise NotFound(f"namespace {namespace!r} has no schema"
                           + (f" version {version}" if version else "")
                           + (" for all tenants" if all_tenants else f" in tenant {self.name!r}"),
                           tenant=self.name, namespace=namespace)
        return _schema_from_row(row)

    def schemas(self, *, all_tenants: bool = False) -> builtins.list[Schema]:
        """Schemas in force in this tenant, one per namespace (its own, else the all-tenants
        one), sorted by namespace; with ``all_tenants``, only the all-tenants schemas."""
        self._view  # noqa: B018
        store = self._hub._store
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
        rows = self._hub._store.schema_history(self._scope(all_tenants), namespace,
                                               _check_limit(limit))
        if not rows:
            raise NotFound(f"namespace {namespace!r} never had a schema"
                           + (" for all tenants" if all_tenants else f" in tenant {self.name!r}"),
                           tenant=self.name, namespace=namespace)
        return [_schema_from_row(r) for r in rows]

    def schema_annotations(self, namespace: str, key: str) -> dict[str, builtins.list[str]]:
        """JSON pointers (into the value of ``namespace/key``) that its schema marks
        ``"x-secret": true`` (key ``secret``) and ``"x-restart-required": true`` (key
        ``restart_required``); ``/*`` means every item or map value. Empty lists when no schema
        governs the key. The secrets and watch features read this."""
        _check_address(BASE_ENV, namespace, key)
        self._view  # noqa: B018
        _, compiled = _effective_schema(self._hub._store.schema, self.name, namespace)
        if compiled is None or not compiled.applies_to(key):
            return {"secret": [], "restart_required": []}
        return {name: list(paths) for name, paths in compiled.annotations.items()}

    def get_typed(self, namespace: str, key: str, model: type[M], *, env: str = BASE_ENV
                  ) -> M:
        """The key's value (resolved for ``env``) as an instance of the pydantic ``model``.
        Raises NotFound, or ValidationFailed when the value does not fit the model."""
        value = self.resolve(namespace, key, env=env).value
        return as_model(model, thaw(value), _where(env, namespace, key))

    def _scope(self, all_tenants: bool) -> str:
        return ALL_TENANTS if all_tenants else self.name

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

        written = self._hub._store.write_schema(scope, change)
        self._hub._restart_paths.clear()  # watchers flag by the new schema from now on
        return _schema_from_row(written)


def _check_existing(txn: SchemaTxn, scope: str, namespace: str,
                    compiled: CompiledSchema | None) -> None:
    """Refuse a schema change that values it will govern would break, listing the keys.

    After the change, a tenant's values in ``namespace`` fall under ``compiled`` — or, when a
    tenant schema is deleted (``compiled`` None), under the all-tenants schema. For an
    all-tenants change, tenants with their own schema are not affected.
    """
    if compiled is None and scope != ALL_TENANTS:
        _, compiled = _effective_schema(lambda s, n: None if s != ALL_TENANTS
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


def _check_address(env: str, namespace: str, key: str) -> None:
    check_name("env", env)
    check_name("namespace", namespace)
    check_name("key", key)


def _check_since(since: object) -> int:
    if isinstance(since, bool) or not isinstance(since, int) or since < 0:
        raise InvalidRequest(f"since must be an integer revision >= 0, not {since!r}")
    return since


def _check_limit(limit: int) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise InvalidRequest(f"limit must be an integer >= 1, not {limit!r}")
    return min(limit, MAX_PAGE)


def _version_from_row(row: VersionRow) -> Version:
    change = change_from_row(row)
    return Version(**{name: getattr(change, name) for name in Version.__dataclass_fields__})


def _schema_secrets(txn: WriteTxn, namespace: str, key: str, value: Any) -> list[str]:
    """The fields of ``value`` its schema marks ``"x-secret": true`` (concrete pointers)."""
    found = {row.scope: row for row in txn.schemas_in_force(namespace)}
    compiled = _effective_schema(functools.partial(_pick, found), txn.tenant, namespace)[1]
    if compiled is None or not compiled.applies_to(key):
        return []
    marked = compiled.annotations.get("secret", ())
    return expand(value, marked) if marked else []


def _seal(txn: WriteTxn, vault: Vault, value: Any, paths: Sequence[str], max_bytes: int,
          where: str) -> str:
    if not vault.enabled:
        raise InvalidRequest(f"{where} holds secrets: " + _secrets.NO_MASTER_KEY,
                             reason="no_master_key")
    sealed = vault.seal(txn.tenant, value, paths)
    return encode_value(sealed, max_bytes=max_bytes + 4096 * len(paths), where=where)


def _apply_op(txn: WriteTxn, op: _Op, meta: _Meta, max_bytes: int, vault: Vault) -> None:
    """Check one op's precondition against storage and append its new version."""
    where = _where(op.env, op.namespace, op.key)
    cur = txn.current(op.env, op.namespace, op.key)
    live = cur is not None and not cur.deleted
    current_version = cur.version if cur is not None and live else 0
    if op.expected_version is not None and op.expected_version != current_version:
        raise VersionConflict(
            f"{where} in tenant {txn.tenant!r} is at version {current_version}"
            + (" (does not exist)" if current_version == 0 else "")
            + f", not the expected {op.expected_version}; nothing was written",
            tenant=txn.tenant, env=op.env, namespace=op.namespace, key=op.key,
            current_version=current_version, expected_version=op.expected_version,
        )
    next_version = cur.version + 1 if cur is not None else 1
    if op.kind == "put":
        paths = op.secret_paths
        if paths is None and live and cur is not None and cur.secret:
            paths = tuple(_secrets.secret_pointers(json.loads(cur.value or "null")))
        text = op.encoded
        plain = json.loads(op.encoded or "null")
        paths = (*(paths or ()), *_schema_secrets(txn, op.namespace, op.key, plain))
        if paths:
            text = _seal(txn, vault, plain, paths, max_bytes, where)
        txn.append(_row(txn, op.env, op.namespace, op.key, next_version, "put", text,
                        False, meta, secret=_secrets.has_envelope(text), born=_born(cur)))
        return
    if op.kind == "rollback":  # allowed on a deleted key: it brings the key back
        if cur is None:
            raise _key_not_found(txn.tenant, op)
        _append_rollback(txn, op, meta, next_version, cur)
        return
    if not live or cur is None:
        raise _key_not_found(txn.tenant, op)
    if op.kind == "delete":
        txn.append(_row(txn, op.env, op.namespace, op.key, next_version, "delete", None, True,
                        meta, secret=cur.secret))
        return
    current = json.loads(cur.value) if cur.value is not None else None
    paths = ()
    if cur.secret:
        paths = tuple(_secrets.secret_pointers(current))
        if paths and not vault.enabled:
            raise InvalidRequest(f"{where} holds secrets: " + _secrets.NO_MASTER_KEY,
                                 reason="no_master_key")
        current = vault.open(current) if paths else current
    if op.kind == "patch":
        new = merge_patch(current, op.value)
    else:
        try:
            new = jsonpatch.apply_patch(current, op.value)
        except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as exc:
            if paths:  # the library's message may quote the (decrypted) value
                raise InvalidRequest(f"JSON Patch does not apply to {where} (a value with "
                                     "secrets; details withheld)", tenant=txn.tenant,
                                     namespace=op.namespace, key=op.key) from None
            raise InvalidRequest(f"JSON Patch does not apply to {where}: {exc}",
                                 tenant=txn.tenant, namespace=op.namespace, key=op.key) from exc
    text = encode_value(new, max_bytes=max_bytes, where=f"patched value of {where}")
    paths = (*paths, *_schema_secrets(txn, op.namespace, op.key, new))
    if paths:
        text = _seal(txn, vault, new, paths, max_bytes, f"patched value of {where}")
    txn.append(_row(txn, op.env, op.namespace, op.key, next_version, "patch", text, False,
                    meta, secret=_secrets.has_envelope(text), born=_born(cur)))


def _key_not_found(tenant: str, op: _Op) -> NotFound:
    return NotFound(f"{_where(op.env, op.namespace, op.key)} not found in tenant {tenant!r}",
                    tenant=tenant, env=op.env, namespace=op.namespace, key=op.key)


def _append_rollback(txn: WriteTxn, op: _Op, meta: _Meta, next_version: int,
                     cur: VersionRow) -> None:
    where = _where(op.env, op.namespace, op.key)
    assert op.to_version is not None
    target = txn.version(op.env, op.namespace, op.key, op.to_version)
    if target is None:
        raise NotFound(f"version {op.to_version} of {where} does not exist in tenant "
                       f"{txn.tenant!r} (latest is {cur.version})", tenant=txn.tenant,
                       namespace=op.namespace, key=op.key, version=op.to_version)
    if target.deleted:
        raise InvalidRequest(f"version {op.to_version} of {where} is a deletion; use delete() "
                             "to delete the key", version=op.to_version)
    txn.append(_row(txn, op.env, op.namespace, op.key, next_version, "rollback", target.value,
                    False, meta, rollback_of=op.to_version, secret=target.secret,
                    born=_born(cur)))


# --------------------------------------------------------------------------- transactions


class Transaction:
    """Writes collected in a ``with`` block and committed as one revision at its end.

    Each key may appear once per transaction (a second op on it raises InvalidRequest at once),
    so every op's ``expected_version`` means what it says. After commit, ``revision`` and
    ``changes`` tell what was written.
    """

    def __init__(self, tenant: Tenant, meta: _Meta, dry_run: bool) -> None:
        self._tenant = tenant
        self._meta = meta
        self._dry_run = dry_run
        self._ops: builtins.list[_Op] = []
        self._seen: set[tuple[str, str, str]] = set()
        self.revision: int | None = None
        self.changes: builtins.list[Change] = []
        self.warnings: builtins.list[ValidationIssue] = []
        self._done = False

    def _add(self, op: _Op) -> Transaction:
        if self._done:
            raise InvalidRequest("this transaction has already been committed or aborted")
        address = (op.env, op.namespace, op.key)
        if address in self._seen:
            raise InvalidRequest(f"{_where(*address)} appears twice in one transaction; "
                                 "combine the two writes into one")
        self._seen.add(address)
        self._ops.append(op)
        return self

    def set(self, namespace: str, key: str, value: Any, *, env: str = BASE_ENV,
            expected_version: int | None = None,
            secret: bool | Sequence[str] = False) -> Transaction:
        return self._add(self._tenant._put_op(namespace, key, value, env, expected_version,
                                              secret))

    def patch(self, namespace: str, key: str, patch: Any, *, env: str = BASE_ENV,
              expected_version: int | None = None, json_patch: bool = False) -> Transaction:
        return self._add(self._tenant._patch_op(namespace, key, patch, env, expected_version,
                                                json_patch))

    def delete(self, namespace: str, key: str, *, env: str = BASE_ENV,
               expected_version: int | None = None) -> Transaction:
        _check_address(env, namespace, key)
        return self._add(_Op("delete", env, namespace, key,
                             expected_version=_check_expected(expected_version)))

    def rollback(self, namespace: str, key: str, to_version: int, *, env: str = BASE_ENV,
                 expected_version: int | None = None) -> Transaction:
        _check_address(env, namespace, key)
        if isinstance(to_version, bool) or not isinstance(to_version, int) or to_version < 1:
            raise InvalidRequest(f"to_version must be an integer >= 1, not {to_version!r}")
        return self._add(_Op("rollback", env, namespace, key, to_version=to_version,
                             expected_version=_check_expected(expected_version)))

    def commit(self) -> builtins.list[Change]:
        """Commit now (``with`` does this for you). An empty transaction writes nothing."""
        if self._done:
            raise InvalidRequest("this transaction has already been committed or aborted")
        self._done = True
        if not self._ops:
            return []
        rows, revision, warnings = self._tenant._write(self._ops, self._meta, self._dry_run)
        self.revision = revision
        self.warnings = warnings
        self.changes = [change_from_row(row) for row in rows]
        return self.changes

    def __enter__(self) -> Transaction:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is not None:
            self._done = True  # an exception in the block aborts: nothing is written
            return
        if not self._done:
            self.commit()
