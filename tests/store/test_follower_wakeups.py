"""On SQLite the follower wakes for other processes' commits, not for this process's own.

A write of this process reaches its cache through the group commit's ``on_commit``; waking
the follower for it as well made it read the tenants back once per commit (about a fifth
of the CPU of embedded sets made one after another). SQLite now asks its writer's own connection,
whose ``PRAGMA data_version`` ignores that connection's commits; PostgreSQL already skipped
the NOTIFYs it sent itself. (On PostgreSQL the test could not count wake-ups: the NOTIFY
channel is the database's, so the suite's other schemas wake the follower too, which is
harmless.) A commit by anyone else must still wake it, or other processes' writes would reach
this cache only by the periodic refresh.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

import confhub

DEADLINE = 15.0  # seconds; generous, for a loaded CI machine


class Wakeups:
    """Records what the follower's ``wait_for_commit`` calls answer."""

    def __init__(self, real: Any) -> None:
        self._real = real
        self._lock = threading.Lock()
        self.calls = 0
        self.woken = 0

    def __call__(self, timeout: float) -> bool:
        woke = bool(self._real(timeout))
        with self._lock:
            self.calls += 1
            self.woken += woke
        return woke

    def rounds_after(self, calls: int, rounds: int = 2) -> None:
        """Wait until ``rounds`` more calls have returned (each polled at least once)."""
        deadline = time.monotonic() + DEADLINE
        while self.calls < calls + rounds:
            assert time.monotonic() < deadline, "the follower stopped polling"
            time.sleep(0.005)


@pytest.fixture
def hub(sqlite_url: str) -> Iterator[confhub.Hub]:
    hub = confhub.open(sqlite_url)
    assert isinstance(hub, confhub.Hub)  # embedded: the follower runs in this process
    yield hub
    hub.close()


def test_own_writes_do_not_wake_the_follower_but_another_process_does(
        sqlite_url: str, hub: confhub.Hub, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = hub.tenant("default")
    cfg.set("app", "warm", 0)
    store = hub._core.store
    spy = Wakeups(store.wait_for_commit)
    monkeypatch.setattr(store, "wait_for_commit", spy)  # the follower looks it up each round
    spy.rounds_after(spy.calls)
    quiet = spy.woken

    for n in range(10):
        cfg.set("app", f"own{n}", n)
        spy.rounds_after(spy.calls)  # the follower has polled since this commit
    assert cfg.get("app", "own9").value == 9
    assert spy.woken == quiet, f"{spy.woken - quiet} of 10 own commits woke the follower"

    other = confhub.open(sqlite_url)  # another connection, as another process would have
    try:
        other.tenant("default").set("app", "theirs", {"by": "other"})
    finally:
        other.close()
    deadline = time.monotonic() + DEADLINE
    while True:  # the follower brings the other process's write into this cache
        try:
            if cfg.get("app", "theirs").value == {"by": "other"}:
                break
        except confhub.NotFound:
            pass
        assert time.monotonic() < deadline, "another process's write never reached the cache"
        time.sleep(0.005)
    assert spy.woken > quiet


def test_our_writes_outside_the_group_commit_still_wake_the_follower(
        hub: confhub.Hub, monkeypatch: pytest.MonkeyPatch) -> None:
    """Writes of ours that bypass the group commit (schema writes, compaction, imports)
    keep waking it, as before: they have no ``on_commit`` that updates the cache."""
    store = hub._core.store
    spy = Wakeups(store.wait_for_commit)
    monkeypatch.setattr(store, "wait_for_commit", spy)
    spy.rounds_after(spy.calls)
    quiet = spy.woken
    hub.tenant("default").set_schema("app", {"type": "object"})
    deadline = time.monotonic() + DEADLINE
    while spy.woken == quiet:
        assert time.monotonic() < deadline, "our own schema write never woke the follower"
        time.sleep(0.005)
