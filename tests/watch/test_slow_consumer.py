"""A watcher far behind the writers is sent back to the change feed: it still gets every
change, in order, and its queue never grows past its bound."""

from __future__ import annotations

import threading
from pathlib import Path

import confhub
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
