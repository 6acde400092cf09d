"""Group commit: transactions queued together share one database transaction, yet each one
sees what the transactions before it in the group wrote, exactly as if it ran alone.

These drive the store's public ``write``/``submit`` directly: a first transaction is held
open (its function waits for an event) so that the next ones queue behind it and are run
as one group when it ends; that is how bursts of concurrent PUTs are grouped in production.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from confhub.hub.service import open_store
from confhub.store.base import Store, VersionRow, WriteTxn

TENANT = "bank"
KEY = ("base", "ns", "x")
DEADLINE = 30.0  # seconds; generous for a loaded CI machine


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest) -> Iterator[Store]:
    url = str(request.getfixturevalue(
        f"{'pg' if request.param == 'postgres' else 'sqlite'}_url"))
    opened = open_store(url)
    opened.write(TENANT, lambda txn: None, create=True)
    yield opened
    opened.close()


def put(value: str) -> Callable[[WriteTxn], int]:
    """A transaction writing ``ns/x`` on top of whatever its current version is."""
    def fn(txn: WriteTxn) -> int:
        current = txn.current(*KEY)
        version = 1 if current is None else current.version + 1
        txn.append(VersionRow(TENANT, *KEY, version=version, revision=txn.revision, op="put",
                              deleted=False, value=value, created_at=txn.now))
        return version
    return fn


def list_everything(txn: WriteTxn) -> int:
    """A transaction that reads every current row (which makes the store write what the
    group holds so far and go on writing directly)."""
    return len(txn.current_rows())


def run_grouped(store: Store, fns: list[Callable[[WriteTxn], Any]]) -> list[Any]:
    """Run ``fns`` as one group commit (after a transaction that holds the lead until they
    are all queued); each outcome is its result or the exception it raised."""
    holding, release = threading.Event(), threading.Event()
    outcomes: dict[int, Any] = {}
    finished = threading.Event()

    def hold(txn: WriteTxn) -> None:
        holding.set()
        assert release.wait(DEADLINE)

    def told(index: int) -> Callable[[Any, BaseException | None], None]:
        def callback(result: Any, error: BaseException | None) -> None:
            outcomes[index] = error if error is not None else result
            if len(outcomes) == len(fns) + 1:
                finished.set()
        return callback

    store.submit(TENANT, hold, callback=told(-1))
    assert holding.wait(DEADLINE)
    for index, fn in enumerate(fns):
        store.submit(TENANT, fn, callback=told(index), keys=[KEY])
    release.set()
    assert finished.wait(DEADLINE)
    return [outcomes[i] for i in range(len(fns))]


def test_a_transaction_after_one_that_read_everything_sees_the_groups_writes(
        store: Store) -> None:
    """put, list-everything, put in one group: the second put builds on the first (version
    2), it does not reuse what the group read before the list wrote the first put out."""
    outcomes = run_grouped(store, [put('"a"'), list_everything, put('"b"')])
    assert outcomes[0] == 1 and outcomes[2] == 2, outcomes
    assert [(r.version, r.value) for r in store.history(TENANT, *KEY, limit=10)] == [
        (2, '"b"'), (1, '"a"')]


def test_every_transaction_of_a_group_builds_on_the_one_before(store: Store) -> None:
    """Five puts of one key in one group, with full reads between them: versions 1..5."""
    fns: list[Callable[[WriteTxn], Any]] = []
    for i in range(5):
        fns += [put(f'"{i}"'), list_everything]
    outcomes = run_grouped(store, fns)
    assert outcomes[0::2] == [1, 2, 3, 4, 5], outcomes
    assert store.history(TENANT, *KEY, limit=1)[0].value == '"4"'


def delete(txn: WriteTxn) -> int:
    """A transaction writing a tombstone of ``ns/x``."""
    current = txn.current(*KEY)
    assert current is not None
    txn.append(VersionRow(TENANT, *KEY, version=current.version + 1, revision=txn.revision,
                          op="delete", deleted=True, value=None, created_at=txn.now))
    return current.version + 1


def created_at(store: Store) -> int | None:
    (row,) = store.current_rows(TENANT, "ns")
    return row.key_created_at


def stamped(fn: Callable[[WriteTxn], int], times: dict[int, int]
            ) -> Callable[[WriteTxn], int]:
    """``fn``, noting the time of the version it wrote."""
    def run(txn: WriteTxn) -> int:
        version = fn(txn)
        times[version] = txn.now
        return version
    return run


def test_a_key_deleted_and_written_again_in_one_group_starts_a_new_life(store: Store) -> None:
    """put, delete, put of one key in one group: the key is live at version 4 and was
    created by that last put, not when it was first written (its pointer is written once
    for the whole group on PostgreSQL)."""
    store.write(TENANT, put('"old"'), keys=[KEY])
    times: dict[int, int] = {}
    outcomes = run_grouped(store, [stamped(put('"a"'), times), stamped(delete, times),
                                   stamped(put('"b"'), times)])
    assert outcomes == [2, 3, 4], outcomes
    assert created_at(store) == times[4]
    assert [(r.version, r.deleted) for r in store.history(TENANT, *KEY, limit=10)] == [
        (4, False), (3, True), (2, False), (1, False)]


def test_a_live_key_written_twice_in_one_group_keeps_its_creation_time(
        store: Store) -> None:
    """Two puts of a live key in one group: still created when it was first written."""
    store.write(TENANT, put('"old"'), keys=[KEY])
    first = created_at(store)
    assert run_grouped(store, [put('"a"'), put('"b"')]) == [2, 3]
    assert created_at(store) == first
    assert store.history(TENANT, *KEY, limit=1)[0].value == '"b"'


def test_a_failed_transaction_that_wrote_directly_leaves_nothing_of_its_own(
        store: Store) -> None:
    """put, (read everything, put, fail), put in one group: the failed one's direct write is
    rolled back to its SAVEPOINT (on PostgreSQL, in the block its BEGIN opened out of the
    pipeline's implicit transaction), and the others commit around it."""
    def direct_then_fail(txn: WriteTxn) -> None:
        txn.current_rows()  # from here its writes go straight to the database
        put('"doomed"')(txn)
        raise RuntimeError("refused after writing")

    outcomes = run_grouped(store, [put('"a"'), direct_then_fail, put('"b"')])
    assert outcomes[0] == 1 and isinstance(outcomes[1], RuntimeError) and outcomes[2] == 2
    assert [(r.version, r.value) for r in store.history(TENANT, *KEY, limit=10)] == [
        (2, '"b"'), (1, '"a"')]
