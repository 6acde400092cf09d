"""A watcher far behind the writers is sent back to the change feed: it still gets every
change, in order, and its queue never grows past its bound."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import confhub
from confhub.model import WatchEvent
from confhub.watch import MAX_PENDING


def test_a_stalled_callback_misses_nothing_when_it_resumes(tmp_path: Path) -> None:
    hub = confhub.open(str(tmp_path / "c.db"))
    cfg = hub.tenant()
    release = threading.Event()
    seen: list[int] = []
    done = threading.Event()
    total = MAX_PENDING * 2 + 10

    def slow(change: confhub.Change) -> None:
        release.wait()
        seen.append(change.value)
        if len(seen) == total:
            done.set()

    handle = cfg.watch(slow, since=0)
    try:
        with cfg.transaction() as tx:  # one large revision too: it must stay whole
            for i in range(10):
                tx.set("batch", f"k{i}", i)
        for i in range(10, total):
            cfg.set("load", "k", i)
        assert handle.revision < cfg.revision  # the watcher is stalled behind the writers
        assert handle.queued <= MAX_PENDING
        release.set()
        assert done.wait(30), f"{len(seen)} of {total}"
    finally:
        handle.stop()
        hub.close()
    assert sorted(seen[:10]) == list(range(10))
    assert seen[10:] == list(range(10, total))


def test_a_quiet_filtered_watcher_on_a_busy_tenant_gets_its_change_once(
        tmp_path: Path) -> None:
    """Revisions a filter does not want are not queued for it: after many more of them than
    a watcher may hold, its next matching change still arrives once, and nothing else."""
    hub = confhub.open(str(tmp_path / "c.db"))
    cfg = hub.tenant()
    seen: list[tuple[str, object]] = []
    arrived = threading.Event()

    def record(change: confhub.Change) -> None:
        seen.append((change.namespace, change.value))
        arrived.set()

    handle = cfg.watch(record, namespace="mine")
    try:
        for i in range(MAX_PENDING * 3):
            cfg.set("other", "k", i)
        cfg.set("mine", "k", "hello")
        assert arrived.wait(30)
        arrived.clear()
        cfg.set("mine", "k", "again")
        assert arrived.wait(30)
    finally:
        handle.stop()
        hub.close()
    assert seen == [("mine", "hello"), ("mine", "again")]


def test_streams_with_one_filter_are_handed_the_same_event(tmp_path: Path) -> None:
    """Every stream with the same filter gets the very same event object for a revision, so
    the HTTP layer encodes it once for all of them, not once per stream."""
    hub = confhub.open(str(tmp_path / "c.db"))
    cfg = hub.tenant()

    async def main() -> list[WatchEvent | None]:
        streams = [await cfg.watch_events(namespace="models").start() for _ in range(3)]
        try:
            cfg.set("other", "k", 1)
            with cfg.transaction() as tx:
                tx.set("models", "a", 1)
                tx.set("other", "k", 2)
            return [await s.get(timeout=10) for s in streams]
        finally:
            for s in streams:
                s.close()

    try:
        events = asyncio.run(main())
    finally:
        hub.close()
    assert events[0] is not None and [c.key for c in events[0].changes] == ["a"]
    assert all(e is events[0] for e in events)
