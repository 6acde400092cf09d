"""A tenant's reads: current values from the cache, old versions and history from the store.

Owns ``Reads``, the part of ``Tenant`` that answers get, list, namespaces, envs, resolve,
history and diff, and the audited reveal of a secret. A current value is a dict lookup in the
tenant's cached view; a read of several entries takes the cache lock so it sees whole
transactions, never half of one.

May import: ``confhub.layering``, ``confhub.interpolation``, ``confhub.secrets``,
``confhub.validation``, ``confhub.model``, ``confhub.errors`` and the hub's ``core``,
``cache``, ``rows``, ``sealing`` and ``rollouts`` (a consumer's staged values: see
hub/rollouts.py).
"""

from __future__ import annotations

import builtins
import dataclasses
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from .. import secrets as _secrets
from ..errors import InvalidRequest, NotFound
from ..interpolation import interpolate as interpolate_value
from ..layering import diff as json_diff
from ..layering import merge_patch, resolve_layers
from ..model import BASE_ENV, Entry, Resolved, Version, check_name, freeze, thaw
from ..validation import as_model
from .cache import TenantView, entry_from_row
from .core import TenantPart
from .rollouts import ROLLOUT_NS, Overlay
from .rows import check_address, check_limit, check_version, version_from_row, where
from .sealing import require_key

M = TypeVar("M")


class Reads(TenantPart):
    """Reads of one tenant (part of :class:`confhub.Tenant`)."""

    @contextmanager
    def _holding(self, namespace: str | None) -> Iterator[TenantView]:
        """The tenant's view with ``namespace`` (None: every namespace) in memory, held under
        the cache lock so a read of several entries sees whole transactions.

        A view can be dropped between loading and reading it (``Cache.evict``: the follower
        found the tenant deleted or recreated, or compaction outran the view). A dropped view
        is empty, and reading it would answer "not found" for a key that exists, so it is
        replaced and loaded again. Worked example, key ``a`` live::

            ensure(view1, ns)         ns loaded
            follower: evict(view1)    view1.valid = False, emptied
            lock, view1 not valid     -> self._view opens view2, ensure(view2, ns), read a
        """
        cache = self._core.cache
        while True:
            view = self._view  # NotFound once the tenant is really gone
            cache.ensure(view, namespace)
            with cache.lock:
                if view.valid:
                    yield view
                    return

    def _current(self, env: str, namespace: str, key: str) -> Entry | None:
        """The live entry of a key, None if absent (the slow way: loads its namespace)."""
        with self._holding(namespace) as view:
            return view.entry(env, namespace, key)

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
            view = self._cached_view
            if self.identity is not None and view.valid:
                # A consumer: its staged entries first. Inline, as this is the hot read path:
                # the overlay is looked up again only when the rollouts' stamp moved (a
                # transition, or the gate's clock, which also paces the registry's notes).
                # Computing it loads the ``.rollouts`` namespace if need be.
                if self._stamp != self._core.rollouts.stamp or self._stamped_view is not view:
                    self._staged_now = self._overlay(view)
                staged = self._staged_now.get((env, namespace, key)) if self._staged_now \
                    else None
                if staged is not None:
                    if staged[0] is None:
                        raise NotFound(
                            f"{where(env, namespace, key)} not found in tenant {self.name!r} "
                            f"(deleted by rollout {staged[1]!r})", tenant=self.name, env=env,
                            namespace=namespace, key=key, rollout=staged[1])
                    return staged[0]
            bucket = view.by_namespace.get((env, namespace))
            if bucket is not None:
                entry = bucket.get(key)
                if type(entry) is Entry:  # else not yet decoded, or absent: the slow path
                    return entry
            if self.identity is not None and not view.valid:
                view = self._view
                staged = self._overlay(view).get((env, namespace, key))
                if staged is not None and staged[0] is not None:
                    return staged[0]
        return self._get_slow(namespace, key, env, version)

    def _overlay(self, view: TenantView | None = None) -> Overlay:
        """What this consumer sees instead of the committed values; notes the read in the
        consumer registry (at most once a second per tenant object)."""
        identity = self.identity
        assert identity is not None
        if view is None:
            view = self._view
        book = self._core.rollouts
        if self._stamp != book.stamp:
            self._core.consumers.seen(self.name, identity, view.revision)
        self._stamp, self._stamped_view = book.stamp, view
        return book.overlay(self.name, view, identity)

    def _reveal(self, entry: Entry) -> Entry:
        if not entry.secret:
            return entry
        core = self._core
        require_key(core.vault)
        row = core.store.version(self.name, entry.env, entry.namespace, entry.key,
                                 entry.version)
        if row is None or row.value is None:
            raise NotFound(f"{where(entry.env, entry.namespace, entry.key)} not found in "
                           f"tenant {self.name!r}", tenant=self.name)
        value = freeze(core.vault.open(json.loads(row.value)))
        core.audit("secret.reveal", self.name,
                   target=f"{entry.namespace}/{entry.key}"
                   + ("" if entry.env == BASE_ENV else f"@{entry.env}"),
                   details={"version": entry.version})
        return dataclasses.replace(entry, value=value)

    def _get_slow(self, namespace: str, key: str, env: str, version: int | None) -> Entry:
        check_address(env, namespace, key)
        if version is None:
            entry = self._current(env, namespace, key)
            if entry is None:
                raise NotFound(f"{where(env, namespace, key)} not found in tenant "
                               f"{self.name!r}", tenant=self.name, env=env,
                               namespace=namespace, key=key)
            return entry
        check_version("version", version)
        self._view  # noqa: B018 - raises NotFound for a missing tenant
        row = self._core.store.version(self.name, env, namespace, key, version)
        if row is None or row.deleted:
            what = "is a deletion" if row is not None else "does not exist"
            raise NotFound(f"version {version} of {where(env, namespace, key)} {what} in "
                           f"tenant {self.name!r}", tenant=self.name, env=env,
                           namespace=namespace, key=key, version=version)
        current = self._current(env, namespace, key)
        return entry_from_row(row, current.created_at if current else None)

    def list(self, namespace: str, *, env: str = BASE_ENV, prefix: str | None = None
             ) -> builtins.list[Entry]:
        """Live entries of a namespace in one env layer, sorted by key."""
        check_name("env", env)
        check_name("namespace", namespace)
        # Other threads apply commits to the view while we read: copy it under the cache
        # lock, so the list holds whole transactions (never half of one) and cannot change
        # size while we sort it.
        with self._holding(namespace) as view:
            bucket = view.entries(env, namespace)
        if self.identity is not None:
            for (e, ns, k), (entry, _) in self._overlay().items():
                if (e, ns) == (env, namespace):
                    if entry is None:
                        bucket.pop(k, None)
                    else:
                        bucket[k] = entry
        keys = sorted(k for k in bucket if prefix is None or k.startswith(prefix))
        return [bucket[k] for k in keys]

    def namespaces(self, *, env: str | None = None) -> builtins.list[str]:
        """Namespaces with at least one live key (in ``env``, or in any env)."""
        with self._holding(None) as view:
            return sorted({ns for (e, ns), bucket in view.by_namespace.items()
                           if bucket and (env is None or e == env) and ns != ROLLOUT_NS})

    def namespace_counts(self, *, env: str | None = None) -> dict[str, int]:
        """Live keys per namespace (summed over envs unless ``env`` is given)."""
        counts: dict[str, int] = {}
        with self._holding(None) as view:
            for (e, ns), bucket in view.by_namespace.items():
                if (env is None or e == env) and ns != ROLLOUT_NS:
                    counts[ns] = counts.get(ns, 0) + len(bucket)
        return dict(sorted(counts.items()))

    def envs(self) -> builtins.list[str]:
        """Env layers that hold at least one live key."""
        with self._holding(None) as view:
            return sorted({e for (e, ns), bucket in view.by_namespace.items()
                           if bucket and ns != ROLLOUT_NS})

    def resolve(self, namespace: str, key: str, *, env: str = BASE_ENV,
                interpolate: bool = False) -> Resolved:
        """The ``base`` layer deep-merged with ``env``'s layer (see :mod:`confhub.layering`);
        with ``interpolate``, ``${VAR}``/``${VAR:-default}`` in strings are substituted from
        this process's environment (see :mod:`confhub.interpolation`)."""
        check_address(env, namespace, key)
        layers = (BASE_ENV,) if env == BASE_ENV else (BASE_ENV, env)
        with self._holding(namespace) as view:  # both layers from the same revision
            found = [(layer, entry) for layer in layers
                     if (entry := view.entry(layer, namespace, key)) is not None]
        rollouts: builtins.list[str] = []
        if self.identity is not None:
            staged = self._overlay()
            if any((layer, namespace, key) in staged for layer in layers):
                found = []
                for layer in layers:
                    committed = view.entry(layer, namespace, key)
                    entry, rollout = staged.get((layer, namespace, key), (committed, None))
                    if rollout is not None and rollout not in rollouts:
                        rollouts.append(rollout)
                    if entry is not None:
                        found.append((layer, entry))
        if not found:
            raise NotFound(f"{namespace}/{key} has no value in "
                           f"{' or '.join(repr(layer) for layer in layers)} in tenant "
                           f"{self.name!r}", tenant=self.name, env=env, namespace=namespace,
                           key=key)
        values = [(layer, entry.value) for layer, entry in found]
        if values[0][0] != BASE_ENV:  # only the overlay exists: it patches an empty base
            values = [(values[0][0], merge_patch(None, values[0][1]))]
        value, sources = resolve_layers(values)
        if interpolate:
            value = interpolate_value(value)
        return Resolved(tenant=self.name, env=env, namespace=namespace, key=key,
                        value=freeze(value), sources=sources,
                        versions={layer: entry.version for layer, entry in found},
                        rollouts=tuple(rollouts))

    def get_typed(self, namespace: str, key: str, model: type[M], *, env: str = BASE_ENV
                  ) -> M:
        """The key's value (resolved for ``env``) as an instance of the pydantic ``model``.
        Raises NotFound, or ValidationFailed when the value does not fit the model."""
        value = self.resolve(namespace, key, env=env).value
        return as_model(model, thaw(value), where(env, namespace, key))

    def history(self, namespace: str, key: str, *, env: str = BASE_ENV, limit: int = 50,
                before: int | None = None) -> builtins.list[Version]:
        """Versions newest first (tombstones included); ``before`` pages back from a version."""
        check_address(env, namespace, key)
        limit = check_limit(limit)
        if before is not None and (isinstance(before, bool) or not isinstance(before, int)):
            raise InvalidRequest(f"before must be an integer version, not {before!r}")
        self._view  # noqa: B018 - raises NotFound for a missing tenant
        rows = self._core.store.history(self.name, env, namespace, key, limit, before)
        if not rows and before is None:
            raise NotFound(f"{where(env, namespace, key)} has no history in tenant "
                           f"{self.name!r}", tenant=self.name, env=env, namespace=namespace,
                           key=key)
        return [version_from_row(row) for row in rows]

    def diff(self, namespace: str, key: str, from_version: int, to_version: int, *,
             env: str = BASE_ENV) -> builtins.list[dict[str, Any]]:
        """RFC 6902 JSON Patch turning ``from_version``'s value into ``to_version``'s
        (a deletion counts as ``null``)."""
        check_address(env, namespace, key)
        self._view  # noqa: B018
        values = []
        for number in (from_version, to_version):
            if isinstance(number, bool) or not isinstance(number, int) or number < 1:
                raise InvalidRequest(f"versions must be integers >= 1, not {number!r}")
            row = self._core.store.version(self.name, env, namespace, key, number)
            if row is None:
                raise NotFound(f"version {number} of {where(env, namespace, key)} does not "
                               f"exist in tenant {self.name!r}", tenant=self.name,
                               namespace=namespace, key=key, version=number)
            values.append(None if row.deleted else
                          _secrets.diff_marks(json.loads(row.value or "null")))
        # A secret that changed shows as changed, never with its values.
        return [_secrets.redact_marks(op) for op in json_diff(values[0], values[1])]

