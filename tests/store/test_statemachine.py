"""The store against a model: a hypothesis state machine, run on SQLite and PostgreSQL.

The model is deliberately naive — a dict of per-key histories plus a revision counter and a
change log — so that every rule of DESIGN.md section 1 is written a second time, independently
of ``hub.py``: versions +1 per change, tombstones, compare-and-set, merge patch, rollback as a
new version, atomic transactions (one revision, or nothing), env layering, snapshots and
restore, tenant soft delete. After every step the invariants compare the store with the model:
the cached reads, the tenant revision, the whole change feed (gap-free, replaying to the
current state) and a second hub on the same database. Each example runs in a fresh tenant;
at its end a hub opened from scratch must see exactly what the model says.
"""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

import confhub
from confhub import InvalidRequest, NotFound, VersionConflict

ENVS = ("base", "production")
NAMESPACES = ("models", "routing")
KEYS = ("a", "b", "c")
ADDRESSES = tuple(itertools.product(ENVS, NAMESPACES, KEYS))  # (env, namespace, key)
FIELDS = ("x", "y", "z", "w")

Address = tuple[str, str, str]
_ABSENT = object()  # "no live value" in the restore rule (None is a JSON value)

# --------------------------------------------------------------------------- values

scalars = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.sampled_from(["", "s", "t"]))
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.dictionaries(st.sampled_from(FIELDS), children, max_size=3),
    ),
    max_leaves=6,
)
# Mostly objects (what configs are), sometimes any JSON value, including a top-level null.
values = st.one_of(st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=4), json_values)
patches = st.one_of(st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=3), json_values)
cas_modes = st.sampled_from([None, None, "right", "wrong"])


def canon(value: Any) -> str:
    """JSON equality: ``True != 1`` and key order does not matter (Python's == gets both wrong
    for our purpose)."""
    return json.dumps(value, sort_keys=True)


def model_merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386, section 2, transcribed."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for name, value in patch.items():
        if value is None:
            result.pop(name, None)
        else:
            result[name] = model_merge_patch(result.get(name), value)
    return result


# --------------------------------------------------------------------------- the model


@dataclass(frozen=True)
class MVersion:
    value: Any
    deleted: bool
    op: str
    revision: int
    rollback_of: int | None = None


class Expected(Exception):
    """The error the model predicts; ``current`` is VersionConflict's current_version."""

    def __init__(self, kind: type[Exception], current: int | None = None) -> None:
        super().__init__(kind.__name__)
        self.kind = kind
        self.current = current


@dataclass(frozen=True)
class Op:
    kind: str  # put | patch | delete | rollback
    address: Address
    payload: Any = None  # value, patch, or the version to roll back to
    expected_version: int | None = None


class Model:
    def __init__(self) -> None:
        self.histories: dict[Address, list[MVersion]] = {}
        self.revision = 0
        self.log: list[tuple[int, Address, int]] = []  # (revision, address, version)
        self.snapshots: dict[str, int] = {}

    def live(self, address: Address) -> MVersion | None:
        history = self.histories.get(address)
        if history and not history[-1].deleted:
            return history[-1]
        return None

    def current_version(self, address: Address) -> int:
        """What compare-and-set compares with: 0 when absent or deleted."""
        return len(self.histories[address]) if self.live(address) else 0

    def expected(self, address: Address, mode: str | None, delta: int) -> int | None:
        current = self.current_version(address)
        if mode is None:
            return None
        if mode == "right":
            return current
        below = current - delta
        return below if below >= 0 and delta == 2 else current + delta  # never == current

    def plan(self, op: Op) -> MVersion:
        """The version ``op`` would write, or raise Expected; ops are checked in this order:
        the version precondition, then existence, then the op's own rules."""
        address = op.address
        live = self.live(address)
        history = self.histories.get(address, [])
        revision = self.revision + 1
        if op.expected_version is not None and op.expected_version != self.current_version(
                address):
            raise Expected(VersionConflict, self.current_version(address))
        if op.kind == "put":
            return MVersion(op.payload, False, "put", revision)
        if op.kind == "rollback":
            if not history or op.payload > len(history):
                raise Expected(NotFound)
            target = history[op.payload - 1]
            if target.deleted:
                raise Expected(InvalidRequest)
            return MVersion(target.value, False, "rollback", revision, rollback_of=op.payload)
        if live is None:
            raise Expected(NotFound)
        if op.kind == "delete":
            return MVersion(None, True, "delete", revision)
        assert op.kind == "patch"
        return MVersion(model_merge_patch(live.value, op.payload), False, "patch", revision)

    def commit(self, writes: list[tuple[Address, MVersion]]) -> None:
        if not writes:
            return
        self.revision += 1
        for address, version in sorted(writes, key=lambda w: w[0]):
            assert version.revision == self.revision
            history = self.histories.setdefault(address, [])
            history.append(version)
            self.log.append((self.revision, address, len(history)))

    def state_at(self, revision: int) -> dict[Address, Any]:
        """Live values at ``revision``."""
        state: dict[Address, Any] = {}
        for address, history in self.histories.items():
            past = [v for v in history if v.revision <= revision]
            if past and not past[-1].deleted:
                state[address] = past[-1].value
        return state

    def resolve(self, namespace: str, key: str, env: str) -> tuple[Any, dict[str, str]] | None:
        base = self.live(("base", namespace, key))
        overlay = self.live((env, namespace, key)) if env != "base" else None
        if base is None and overlay is None:
            return None
        if overlay is None:
            assert base is not None
            value = base.value
        else:
            value = model_merge_patch(base.value if base else None, overlay.value)
        if isinstance(value, dict):
            from_overlay = overlay is not None and isinstance(overlay.value, dict)
            sources = {name: env if from_overlay and name in overlay.value else "base"
                       for name in value}
        else:
            sources = {"": env if overlay is not None else "base"}
        return value, sources


# --------------------------------------------------------------------------- the machine


class StoreMachine(RuleBasedStateMachine):
    """Subclassed per test with ``hub`` (the one under test), ``other`` (a second hub on the
    same database) and ``open_fresh`` (opens a brand-new hub)."""

    hub: confhub.Hub
    other: confhub.Hub
    open_fresh: Callable[[], confhub.Hub]

    def __init__(self) -> None:
        super().__init__()
        self.model = Model()
        self.labels = itertools.count(1)
        self.name = f"sm-{uuid.uuid4().hex[:10]}"

    @initialize(seed=st.lists(st.tuples(st.sampled_from(ADDRESSES), values), max_size=6,
                              unique_by=lambda item: item[0]))
    def create_tenant(self, seed: list[tuple[Address, Any]]) -> None:
        """A new tenant, its first revision writing a few keys in one transaction."""
        self.hub.create_tenant(self.name)
        self.cfg = self.hub.tenant(self.name)
        self.other_cfg = self.other.tenant(self.name)
        assert self.cfg.revision == 0

        def commit() -> None:
            with self.cfg.transaction(reason="seed") as tx:
                for (env, namespace, key), value in seed:
                    tx.set(namespace, key, value, env=env)

        self.run_write([Op("put", address, value) for address, value in seed], commit)

    # ------------------------------------------------------------------ helpers

    def draw_address(self, data: st.DataObject, label: str = "address") -> Address:
        """Mostly a key that has a history (so patch, delete, rollback have something to
        work on), sometimes any key."""
        known = sorted(self.model.histories)
        if known and data.draw(st.integers(0, 3), label=f"{label} known?"):
            return data.draw(st.sampled_from(known), label=label)
        return data.draw(st.sampled_from(ADDRESSES), label=label)

    def run_write(self, ops: list[Op], call: Callable[[], Any]) -> Any:
        """Run ``call`` (which performs ``ops`` as one commit) and check it against the model:
        the same error and nothing written, or exactly the planned versions at revision+1."""
        before = self.model.revision
        writes: list[tuple[Address, MVersion]] = []
        try:
            for op in ops:
                writes.append((op.address, self.model.plan(op)))
        except Expected as expected:
            event(f"{ops[0].kind if len(ops) == 1 else 'transaction'}: {expected}")
            with pytest.raises(expected.kind) as caught:
                call()
            if expected.kind is VersionConflict:
                assert caught.value.details["current_version"] == expected.current
            assert self.cfg.revision == before, "a failed write moved the revision"
            return None
        event(f"{ops[0].kind if len(ops) == 1 else 'transaction'}: committed")
        result = call()
        self.model.commit(writes)
        assert self.cfg.revision == before + (1 if writes else 0)  # an empty batch is no-op
        return result

    def check_entry(self, entry: Any, address: Address) -> None:
        live = self.model.live(address)
        assert live is not None
        assert (entry.env, entry.namespace, entry.key) == address
        assert canon(entry.value) == canon(live.value)
        assert entry.version == len(self.model.histories[address])
        assert entry.revision == live.revision

    # ------------------------------------------------------------------ writes

    @rule(data=st.data(), value=values, mode=cas_modes,
          delta=st.integers(1, 3))
    def set(self, data: st.DataObject, value: Any, mode: str | None, delta: int) -> None:
        address = self.draw_address(data)
        env, namespace, key = address
        expected = self.model.expected(address, mode, delta)
        entry = self.run_write(
            [Op("put", address, value, expected)],
            lambda: self.cfg.set(namespace, key, value, env=env, expected_version=expected))
        if entry is not None:
            self.check_entry(entry, address)

    @rule(data=st.data(), patch=patches, mode=cas_modes,
          delta=st.integers(1, 3))
    def patch(self, data: st.DataObject, patch: Any, mode: str | None, delta: int) -> None:
        address = self.draw_address(data)
        env, namespace, key = address
        expected = self.model.expected(address, mode, delta)
        entry = self.run_write(
            [Op("patch", address, patch, expected)],
            lambda: self.cfg.patch(namespace, key, patch, env=env, expected_version=expected))
        if entry is not None:
            self.check_entry(entry, address)

    @rule(data=st.data(), mode=cas_modes, delta=st.integers(1, 3))
    def delete(self, data: st.DataObject, mode: str | None, delta: int) -> None:
        address = self.draw_address(data)
        env, namespace, key = address
        expected = self.model.expected(address, mode, delta)
        version = self.run_write(
            [Op("delete", address, None, expected)],
            lambda: self.cfg.delete(namespace, key, env=env, expected_version=expected))
        if version is not None:
            assert version.deleted and version.op == "delete"
            assert version.version == len(self.model.histories[address])
            with pytest.raises(NotFound):
                self.cfg.get(namespace, key, env=env)

    @rule(data=st.data(), mode=cas_modes, delta=st.integers(1, 3))
    def rollback(self, data: st.DataObject, mode: str | None, delta: int) -> None:
        address = self.draw_address(data)
        env, namespace, key = address
        known = len(self.model.histories.get(address, []))
        # Mostly a version that exists; sometimes one past the end (NotFound).
        to_version = data.draw(st.integers(1, known) if known else st.just(1))
        if data.draw(st.integers(0, 4)) == 0:
            to_version = known + 1
        expected = self.model.expected(address, mode, delta)
        entry = self.run_write(
            [Op("rollback", address, to_version, expected)],
            lambda: self.cfg.rollback(namespace, key, to_version, env=env,
                                      expected_version=expected))
        if entry is not None:
            self.check_entry(entry, address)
            newest = self.cfg.history(namespace, key, env=env, limit=1)[0]
            assert newest.op == "rollback" and newest.rollback_of == to_version

    @rule(data=st.data(), size=st.integers(1, 4), may_fail=st.booleans(),
          abort=st.integers(0, 9))
    def transaction(self, data: st.DataObject, size: int, may_fail: bool, abort: int) -> None:
        addresses = list(dict.fromkeys(self.draw_address(data) for _ in range(size)))
        ops: list[Op] = []
        for address in addresses:
            kind = data.draw(st.sampled_from(["put", "put", "patch", "delete", "rollback"]))
            expected = self.model.expected(address, data.draw(cas_modes),
                                           data.draw(st.integers(1, 3)))
            if kind == "put":
                payload = data.draw(values)
            elif kind == "patch":
                payload = data.draw(patches)
            elif kind == "rollback":
                payload = data.draw(st.integers(1, len(self.model.histories.get(address, []))
                                                + 1))
            else:
                payload = None
            op = Op(kind, address, payload, expected)
            if not may_fail:  # keep most batches committable: swap a doomed op for a put
                try:
                    self.model.plan(op)
                except Expected:
                    op = Op("put", address, data.draw(values))
            ops.append(op)

        def add(tx: confhub.Transaction, op: Op) -> None:
            env, namespace, key = op.address
            if op.kind == "put":
                tx.set(namespace, key, op.payload, env=env, expected_version=op.expected_version)
            elif op.kind == "patch":
                tx.patch(namespace, key, op.payload, env=env,
                         expected_version=op.expected_version)
            elif op.kind == "delete":
                tx.delete(namespace, key, env=env, expected_version=op.expected_version)
            else:
                tx.rollback(namespace, key, op.payload, env=env,
                            expected_version=op.expected_version)

        if abort == 0:  # an exception inside the block: nothing is written
            before = self.model.revision

            class Boom(Exception):
                pass

            with pytest.raises(Boom), self.cfg.transaction(reason="aborted") as tx:
                for op in ops:
                    add(tx, op)
                raise Boom
            assert tx.revision is None
            assert self.cfg.revision == before
            return

        def commit() -> confhub.Transaction:
            with self.cfg.transaction(reason="batch") as tx:
                for op in ops:
                    add(tx, op)
            return tx

        tx = self.run_write(ops, commit)
        if tx is not None:
            assert tx.revision == self.model.revision
            assert sorted((c.env, c.namespace, c.key) for c in tx.changes) == sorted(addresses)
            assert {c.revision for c in tx.changes} == {self.model.revision}

    @rule()
    def snapshot(self) -> None:
        label = f"snap-{next(self.labels)}"
        snap = self.cfg.snapshot(label)
        assert snap.revision == self.model.revision
        self.model.snapshots[label] = self.model.revision
        assert self.cfg.revision == self.model.revision  # a label is not a change

    @rule(data=st.data(), namespace=st.sampled_from((None, *NAMESPACES)))
    def restore(self, data: st.DataObject, namespace: str | None) -> None:
        labels = sorted(self.model.snapshots)
        if labels and data.draw(st.booleans()):
            label = data.draw(st.sampled_from(labels))
            target = self.model.snapshots[label]
            call = lambda: self.cfg.restore(label, namespace=namespace)  # noqa: E731
        else:
            target = data.draw(st.integers(0, self.model.revision))
            call = lambda: self.cfg.restore(revision=target, namespace=namespace)  # noqa: E731
        wanted = self.model.state_at(target)
        now = self.model.state_at(self.model.revision)
        writes = []
        for address in ADDRESSES:
            if namespace is not None and address[1] != namespace:
                continue
            old, cur = wanted.get(address, _ABSENT), now.get(address, _ABSENT)
            # Equal means the same stored JSON text (restore keeps key order too).
            if old is not _ABSENT and (cur is _ABSENT or json.dumps(cur) != json.dumps(old)):
                writes.append((address, MVersion(old, False, "restore", self.model.revision + 1)))
            elif old is _ABSENT and cur is not _ABSENT:
                writes.append((address, MVersion(None, True, "restore", self.model.revision + 1)))
        before = self.model.revision
        changes = call()
        self.model.commit(writes)
        assert self.cfg.revision == before + (1 if writes else 0)
        assert sorted((c.env, c.namespace, c.key) for c in changes) == sorted(a for a, _ in writes)
        assert self.model.state_at(self.model.revision) == {
            a: v for a, v in wanted.items() if namespace is None or a[1] == namespace
        } | {a: v for a, v in now.items() if namespace is not None and a[1] != namespace}

    @rule(data=st.data())
    def soft_delete_and_restore_tenant(self, data: st.DataObject) -> None:
        """While soft-deleted the tenant is invisible and refuses writes; restoring it brings
        everything back unchanged (the invariants check the rest)."""
        self.hub.delete_tenant(self.name)
        _, namespace, key = self.draw_address(data)
        with pytest.raises(NotFound):
            self.cfg.get(namespace, key)
        with pytest.raises(NotFound):
            self.cfg.set(namespace, key, 1)
        assert self.name not in [t.id for t in self.hub.tenants()]
        self.hub.restore_tenant(self.name)

    # ------------------------------------------------------------------ reads

    @rule(data=st.data(), version=st.integers(1, 8))
    def get_old_version(self, data: st.DataObject, version: int) -> None:
        address = self.draw_address(data)
        env, namespace, key = address
        history = self.model.histories.get(address, [])
        if version > len(history) or history[version - 1].deleted:
            with pytest.raises(NotFound):
                self.cfg.get(namespace, key, env=env, version=version)
            return
        entry = self.cfg.get(namespace, key, env=env, version=version)
        assert entry.version == version
        assert canon(entry.value) == canon(history[version - 1].value)
        assert entry.revision == history[version - 1].revision

    @rule(data=st.data(), limit=st.integers(1, 12))
    def history(self, data: st.DataObject, limit: int) -> None:
        address = self.draw_address(data)
        env, namespace, key = address
        history = self.model.histories.get(address, [])
        if not history:
            with pytest.raises(NotFound):
                self.cfg.history(namespace, key, env=env, limit=limit)
            return
        got = self.cfg.history(namespace, key, env=env, limit=limit)
        want = list(enumerate(history, start=1))[::-1][:limit]
        assert [v.version for v in got] == [n for n, _ in want]
        for version, (_, model) in zip(got, want, strict=True):
            assert version.deleted == model.deleted
            assert version.op == model.op
            assert version.revision == model.revision
            assert version.rollback_of == model.rollback_of
            assert canon(version.value) == canon(None if model.deleted else model.value)

    @rule(env=st.sampled_from(ENVS), namespace=st.sampled_from(NAMESPACES))
    def list_namespace(self, env: str, namespace: str) -> None:
        got = self.cfg.list(namespace, env=env)
        want = sorted((k, self.model.live((env, namespace, k))) for k in KEYS
                      if self.model.live((env, namespace, k)) is not None)
        assert [e.key for e in got] == [k for k, _ in want]
        for entry, (_, live) in zip(got, want, strict=True):
            assert canon(entry.value) == canon(live.value)  # type: ignore[union-attr]
        live_namespaces = sorted({ns for (_, ns, _), h in self.model.histories.items()
                                  if not h[-1].deleted})
        assert self.cfg.namespaces() == live_namespaces

    @rule(data=st.data(), env=st.sampled_from(ENVS))
    def resolve(self, data: st.DataObject, env: str) -> None:
        _, namespace, key = self.draw_address(data)
        want = self.model.resolve(namespace, key, env)
        if want is None:
            with pytest.raises(NotFound):
                self.cfg.resolve(namespace, key, env=env)
            return
        got = self.cfg.resolve(namespace, key, env=env)
        assert canon(got.value) == canon(want[0])
        assert dict(got.sources) == want[1]
        layers = {layer: len(self.model.histories[(layer, namespace, key)])
                  for layer in dict.fromkeys(("base", env))
                  if self.model.live((layer, namespace, key)) is not None}
        assert dict(got.versions) == layers

    @rule(data=st.data(), limit=st.integers(1, 4))
    def changes_page(self, data: st.DataObject, limit: int) -> None:
        since = data.draw(st.integers(0, self.model.revision))
        got = self.cfg.changes(since=since, limit=limit)
        rest = [entry for entry in self.model.log if entry[0] > since]
        if not rest:
            assert got == []
            return
        # A page holds at least `limit` changes (or all that remain) and never splits a
        # revision: it is exactly the model's changes up to its last revision.
        last = got[-1].revision
        want = [entry for entry in rest if entry[0] <= last]
        assert [(c.revision, (c.env, c.namespace, c.key), c.version) for c in got] == want
        assert len(got) >= min(limit, len(rest))

    # ------------------------------------------------------------------ invariants

    @invariant()
    def cached_reads_match_model(self) -> None:
        for address in ADDRESSES:
            env, namespace, key = address
            if self.model.live(address) is None:
                with pytest.raises(NotFound):
                    self.cfg.get(namespace, key, env=env)
            else:
                self.check_entry(self.cfg.get(namespace, key, env=env), address)

    @invariant()
    def revision_matches_model(self) -> None:
        assert self.cfg.revision == self.model.revision

    @invariant()
    def change_feed_replays_to_current_state(self) -> None:
        feed = self.cfg.changes(since=0, limit=10_000)
        assert [(c.revision, (c.env, c.namespace, c.key), c.version) for c in feed] == \
            self.model.log
        # Gap-free revisions, and every key's versions go up by exactly one.
        assert sorted({c.revision for c in feed}) == list(range(1, self.model.revision + 1))
        state: dict[Address, Any] = {}
        versions: dict[Address, int] = {}
        for change in feed:
            address = (change.env, change.namespace, change.key)
            assert change.version == versions.get(address, 0) + 1
            versions[address] = change.version
            if change.deleted:
                state.pop(address, None)
            else:
                state[address] = change.value
        want = self.model.state_at(self.model.revision)
        assert {a: canon(v) for a, v in state.items()} == {a: canon(v) for a, v in want.items()}

    @invariant()
    def second_hub_agrees(self) -> None:
        self.other.sync()
        for address in ADDRESSES:
            env, namespace, key = address
            if self.model.live(address) is None:
                with pytest.raises(NotFound):
                    self.other_cfg.get(namespace, key, env=env)
            else:
                entry = self.other_cfg.get(namespace, key, env=env)
                assert entry == self.cfg.get(namespace, key, env=env)

    def teardown(self) -> None:
        """A hub opened from scratch sees exactly the model: values, versions, histories."""
        if not hasattr(self, "cfg"):
            return
        with self.open_fresh() as fresh:
            cfg = fresh.tenant(self.name)
            assert cfg.revision == self.model.revision
            for address, history in self.model.histories.items():
                env, namespace, key = address
                got = cfg.history(namespace, key, env=env, limit=1000)
                assert [(v.version, v.revision, v.deleted, canon(v.value)) for v in got] == [
                    (n, m.revision, m.deleted, canon(None if m.deleted else m.value))
                    for n, m in reversed(list(enumerate(history, start=1)))]
                live = self.model.live(address)
                if live is None:
                    with pytest.raises(NotFound):
                        cfg.get(namespace, key, env=env)
                else:
                    assert cfg.get(namespace, key, env=env) == self.cfg.get(namespace, key,
                                                                            env=env)


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest) -> str:
    """A fresh database on each storage backend (the remote client is covered by the
    contract suite; through HTTP this machine would take minutes)."""
    return str(request.getfixturevalue(f"{'pg' if request.param == 'postgres' else 'sqlite'}_url"))


def test_store_behaves_like_the_model(store_url: str) -> None:
    """Random sequences of writes, transactions, restores and reads agree with the model."""
    with confhub.open(store_url) as hub, confhub.open(store_url) as other:

        class Machine(StoreMachine):
            pass

        Machine.hub = hub
        Machine.other = other
        Machine.open_fresh = staticmethod(lambda: confhub.open(store_url))  # type: ignore
        run_state_machine_as_test(Machine, settings=settings(
            max_examples=40, stateful_step_count=30, deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ))
