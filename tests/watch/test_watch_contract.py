"""Watch semantics on every backend: SQLite, PostgreSQL, and a server through the client.

DESIGN.md section 1, Watch: every change after the start revision, in revision order, exactly
once; a transaction's changes consecutive and sharing its revision; filters; a bad callback
hurts nobody.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import pytest

import confhub


def _revisions(changes: list[confhub.Change]) -> list[int]:
    return [c.revision for c in changes]


class TestWatch:
    def test_watch_from_zero_replays_history_then_follows(self, cfg: Any, collect: Any) -> None:
        """since=0 delivers what is already there, then new commits, in revision order."""
        cfg.set("models", "a", 1)
        cfg.set("models", "a", 2)
        seen = collect()
        with cfg.watch(seen, since=0):
            cfg.set("models", "b", 3)
            got = seen.wait_for(3)
        assert [(c.revision, c.key, c.value) for c in got] == [(1, "a", 1), (2, "a", 2),
                                                                (3, "b", 3)]
        assert [c.version for c in got] == [1, 2, 1]

    def test_watch_without_since_starts_from_now(self, cfg: Any, collect: Any) -> None:
        cfg.set("models", "old", 1)
        seen = collect()
        with cfg.watch(seen):
            cfg.set("models", "new", 2)
            cfg.set("models", "last", 3)  # delivered in order: once it is here, so is the rest
            got = seen.wait_for(2)
            assert [c.key for c in got] == ["new", "last"]
        assert got[0].revision == 2

    def test_a_transaction_arrives_consecutively_with_one_revision(self, cfg: Any,
                                                                    collect: Any) -> None:
        seen = collect()
        with cfg.watch(seen, since=0):
            with cfg.transaction(reason="together") as tx:
                tx.set("routing", "a", 1)
                tx.set("models", "b", 2)
                tx.set("routing", "c", 3)
            cfg.set("routing", "d", 4)
            got = seen.wait_for(4)
        assert _revisions(got) == [1, 1, 1, 2]
        assert {c.key for c in got[:3]} == {"a", "b", "c"}
        assert all(c.reason == "together" for c in got[:3])

    def test_filters_by_namespace_key_and_env(self, cfg: Any, collect: Any) -> None:
        by_ns, by_key, by_env = collect(), collect(), collect()
        with cfg.watch(by_ns, "models", since=0), cfg.watch(by_key, "models", "a", since=0), \
                cfg.watch(by_env, env="production", since=0):
            cfg.set("models", "a", 1)
            cfg.set("models", "b", 2)
            cfg.set("routing", "a", 3)
            cfg.set("models", "a", {"p": 1}, env="production")
            cfg.set("models", "z", "last")
            # A change every filter passes, written last: once a watcher has it, it has had
            # everything before it (delivery is in revision order).
            cfg.set("models", "a", "end", env="production")
            ns, key, env = by_ns.wait_for(5), by_key.wait_for(3), by_env.wait_for(2)
        assert [(c.namespace, c.key, c.env) for c in ns] == [
            ("models", "a", "base"), ("models", "b", "base"), ("models", "a", "production"),
            ("models", "z", "base"), ("models", "a", "production")]
        assert [(c.key, c.env) for c in key] == [("a", "base"), ("a", "production"),
                                                 ("a", "production")]
        assert [c.value for c in env] == [{"p": 1}, "end"]

    def test_deletes_and_rollbacks_are_changes_too(self, cfg: Any, collect: Any) -> None:
        seen = collect()
        with cfg.watch(seen, since=0):
            cfg.set("models", "a", 1)
            cfg.set("models", "a", 2)
            cfg.rollback("models", "a", to_version=1)
            cfg.delete("models", "a")
            got = seen.wait_for(4)
        assert [(c.op, c.value, c.deleted) for c in got] == [
            ("put", 1, False), ("put", 2, False), ("rollback", 1, False), ("delete", None, True)]
        assert got[2].rollback_of == 1

    def test_a_failing_callback_does_not_stop_the_watch_or_the_write(self, cfg: Any,
                                                                      collect: Any) -> None:
        healthy = collect()

        def broken(change: confhub.Change) -> None:
            healthy(change)
            raise RuntimeError("consumer bug")

        other = collect()
        with cfg.watch(broken, since=0), cfg.watch(other, since=0):
            for i in range(3):
                assert cfg.set("models", "a", i).version == i + 1
            assert len(healthy.wait_for(3)) == 3
            assert len(other.wait_for(3)) == 3

    def test_stop_ends_delivery(self, cfg: Any, collect: Any) -> None:
        seen = collect()
        handle = cfg.watch(seen, since=0)
        cfg.set("models", "a", 1)
        seen.wait_for(1)
        handle.stop()
        assert not handle.running  # its thread has ended: nothing can be delivered any more
        witness = collect()
        with cfg.watch(witness, since=1):
            cfg.set("models", "a", 2)
            assert [c.value for c in witness.wait_for(1)] == [2]  # a live watcher got it
        assert [c.value for c in seen.items] == [1]

    def test_watching_a_missing_tenant_is_not_found(self, hub: Any) -> None:
        with pytest.raises(confhub.NotFound):
            hub.tenant("missing").watch(lambda change: None, since=0)

    def test_a_key_filter_needs_a_namespace(self, cfg: Any) -> None:
        with pytest.raises(confhub.InvalidRequest, match="namespace"):
            cfg.watch(lambda change: None, key="a")

    def test_bad_names_in_a_filter_are_refused(self, cfg: Any) -> None:
        with pytest.raises(confhub.InvalidName):
            cfg.watch(lambda change: None, namespace="no spaces")

    def test_concurrent_writers_every_change_exactly_once_in_order(self, cfg: Any,
                                                                    collect: Any) -> None:
        seen = collect()
        writers, per_writer = 4, 25
        with cfg.watch(seen, since=0):
            threads = [threading.Thread(target=lambda w=w: [cfg.set("load", f"w{w}", i)
                                                            for i in range(per_writer)])
                       for w in range(writers)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            cfg.set("load", "end", "end")  # written after all: no duplicate can follow it
            got = seen.wait_for(writers * per_writer + 1)
        assert got[-1].key == "end"
        got = got[:-1]
        assert _revisions(got) == list(range(1, writers * per_writer + 1))
        for w in range(writers):
            assert [c.value for c in got if c.key == f"w{w}"] == list(range(per_writer))


class TestWatchAsync:
    def test_watch_async_yields_changes_in_order(self, cfg: Any) -> None:
        cfg.set("models", "a", 1)

        async def main() -> list[tuple[int, str]]:
            out: list[tuple[int, str]] = []

            async def consume() -> None:
                async for change in cfg.watch_async(namespace="models", since=0):
                    out.append((change.revision, change.key))
                    if len(out) == 3:
                        return

            task = asyncio.create_task(consume())
            await asyncio.to_thread(cfg.set, "other", "x", 0)
            await asyncio.to_thread(cfg.set, "models", "b", 2)
            await asyncio.to_thread(cfg.set, "models", "c", 3)
            await asyncio.wait_for(task, 20)
            return out

        assert asyncio.run(main()) == [(1, "a"), (3, "b"), (4, "c")]


class TestLongPoll:
    def test_changes_with_wait_returns_as_soon_as_a_change_commits(self, cfg: Any) -> None:
        cfg.set("models", "a", 1)
        timer = threading.Timer(0.3, lambda: cfg.set("models", "a", 2))
        timer.start()
        try:
            page = cfg.changes(since=1, wait=20)
        finally:
            timer.join()
        assert [(c.revision, c.value) for c in page] == [(2, 2)]

    def test_changes_with_wait_gives_an_empty_page_when_nothing_happens(self,
                                                                         cfg: Any) -> None:
        cfg.set("models", "a", 1)
        assert cfg.changes(since=1, wait=0.2) == []

    def test_wait_out_of_range_is_refused(self, cfg: Any) -> None:
        with pytest.raises(confhub.InvalidRequest):
            cfg.changes(since=0, wait=-1)


class TestAcrossHubs:
    def test_a_second_hub_on_the_same_database_sees_the_first_ones_writes(
            self, open_hub: Callable[[], Any], collect: Any) -> None:
        """Two processes on one SQLite file / PostgreSQL database (two hubs: two
        connections and followers, exactly as two processes)."""
        writer, watcher = open_hub(), open_hub()
        writer.create_tenant("acme")
        seen = collect()
        with watcher.tenant("acme").watch(seen, since=0):
            for i in range(20):
                writer.tenant("acme").set("models", "a", i)
            got = seen.wait_for(20)
        assert [c.value for c in got] == list(range(20))



class TestRestartRequired:
    SCHEMA = {"type": "object", "properties": {
        "pool_size": {"type": "integer", "x-restart-required": True},
        "temperature": {"type": "number"}}}

    def test_changes_to_restart_required_fields_are_flagged(self, cfg: Any,
                                                             collect: Any) -> None:
        cfg.set_schema("models", self.SCHEMA)
        cfg.set("models", "m", {"pool_size": 4, "temperature": 0.1})
        live, replayed = collect(), collect()
        with cfg.watch(live):
            cfg.set("models", "m", {"pool_size": 4, "temperature": 0.5})  # hot-applicable
            cfg.set("models", "m", {"pool_size": 8, "temperature": 0.5})  # needs a restart
            cfg.set("routing", "r", {"pool_size": 1})  # no schema there: never flagged
            got = live.wait_for(3)
        with cfg.watch(replayed, since=1):  # the same, read back from the feed
            again = replayed.wait_for(3)
        expected = [("m", 2, False), ("m", 3, True), ("r", 1, False)]
        assert [(c.key, c.version, c.restart_required) for c in got] == expected
        assert [(c.key, c.version, c.restart_required) for c in again] == expected


class TestImportIsWatched:
    def test_a_watcher_sees_an_import_revision_by_revision(self, hub: Any,
                                                           collect: Any) -> None:
        """An import keeping its source's revisions arrives as if written live."""
        source = hub.tenant()
        source.set("models", "a", 1)
        with source.transaction() as tx:
            tx.set("models", "a", 2)
            tx.set("routing", "b", 3)
        source.snapshot("mid")
        source.delete("models", "a")
        hub.create_tenant("copy")
        seen = collect()
        with hub.tenant("copy").watch(seen):  # from now on, before the import
            hub.import_("copy", hub.export(source.name, include_history=True))
            got = seen.wait_for(4)
        assert [(c.revision, c.namespace, c.key, c.version) for c in got] == [
            (c.revision, c.namespace, c.key, c.version) for c in source.changes()]
        assert _revisions(got) == [1, 2, 2, 3]
