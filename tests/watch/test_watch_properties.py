"""Property: whatever the writes and wherever a watcher starts, it delivers exactly the change
feed after its start revision, filtered, in order — the same as reading ``changes(since)``."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import confhub

NAMES = st.sampled_from(["a", "b", "c"])
OPS = st.lists(st.tuples(st.sampled_from(["set", "delete"]), NAMES, NAMES,
                         st.sampled_from(["base", "prod"]), st.integers(0, 9)),
               min_size=1, max_size=4)
BATCHES = st.lists(OPS, min_size=1, max_size=12)
FILTERS = st.tuples(st.none() | NAMES, st.none() | NAMES, st.none() | st.sampled_from(
    ["base", "prod"]))


def _apply(cfg: Any, batch: list[tuple[str, str, str, str, int]]) -> None:
    seen: set[tuple[str, str, str]] = set()
    with cfg.transaction() as tx:
        for op, ns, key, env, value in batch:
            if (ns, key, env) in seen:
                continue  # a key appears once per transaction
            seen.add((ns, key, env))
            if op == "set":
                tx.set(ns, key, value, env=env)
            else:
                try:
                    cfg.get(ns, key, env=env)
                except confhub.NotFound:
                    continue
                tx.delete(ns, key, env=env)


def _matches(change: confhub.Change, namespace: str | None, key: str | None,
             env: str | None) -> bool:
    return ((namespace is None or change.namespace == namespace)
            and (key is None or change.key == key) and (env is None or change.env == env))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(before=BATCHES, after=BATCHES, start=st.integers(0, 15), flt=FILTERS)
def test_a_watch_delivers_the_filtered_feed_after_its_start(
        before: list[Any], after: list[Any], start: int, flt: tuple[Any, Any, Any]) -> None:
    namespace, key, env = flt
    if key is not None and namespace is None:
        namespace = "a"
    with tempfile.TemporaryDirectory() as tmp:
        hub = confhub.open(str(Path(tmp) / "c.db"))
        cfg = hub.tenant()
        try:
            for batch in before:
                _apply(cfg, batch)
            delivered: list[confhub.Change] = []
            handle = cfg.watch(delivered.append, namespace, key, env, since=start)
            for batch in after:
                _apply(cfg, batch)
            expected = [c for c in cfg.changes(since=start, limit=10_000)
                        if _matches(c, namespace, key, env)]
            deadline = time.monotonic() + 10
            while len(delivered) < len(expected) and time.monotonic() < deadline:
                time.sleep(0.005)
            time.sleep(0.02)
            handle.stop()
        finally:
            hub.close()
    key_of = [(c.revision, c.env, c.namespace, c.key, c.version) for c in delivered]
    assert key_of == [(c.revision, c.env, c.namespace, c.key, c.version) for c in expected]
