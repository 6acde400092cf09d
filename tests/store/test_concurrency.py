"""Several writers at once, in threads and in separate processes, on SQLite and PostgreSQL.

What a user relies on: compare-and-set never loses an update however many writers race; a
write made by another process reaches this process's cached reads (deletes and tenant deletion
too); and a transaction is never seen half applied. Other processes are real ones
(``_child.py`` run with this interpreter) on the same SQLite file or PostgreSQL schema.
Waiting is always "poll until true, up to a deadline"; no test asserts how long anything took.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import confhub
from confhub import NotFound

CHILD = Path(__file__).with_name("_child.py")
DEADLINE = 15.0  # seconds; generous, for a loaded CI machine


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest) -> str:
    """A fresh database on each storage backend."""
    return str(request.getfixturevalue(f"{'pg' if request.param == 'postgres' else 'sqlite'}_url"))


@pytest.fixture
def children() -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """Start ``_child.py`` processes; any still running after the test are killed."""
    started: list[subprocess.Popen[str]] = []

    def start(*args: object) -> subprocess.Popen[str]:
        proc = subprocess.Popen([sys.executable, str(CHILD), *map(str, args)],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                stream.close()


@pytest.fixture
def eager_thread_switching() -> Iterator[None]:
    """Switch threads every 0.2 ms instead of every 5 ms: readers are interrupted mid-read
    far more often (so races show up), and busy readers starve the writers less."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(0.00001)
    yield
    sys.setswitchinterval(interval)


def read_line(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line, f"child exited with {proc.wait()} before answering"
    return line.strip()


def send(proc: subprocess.Popen[str], line: str) -> None:
    assert proc.stdin is not None
    proc.stdin.write(line + "\n")
    proc.stdin.flush()


def eventually(check: Callable[[], Any], what: str) -> None:
    """Poll ``check`` until it returns truthy; fail naming ``what`` after the deadline."""
    deadline = time.monotonic() + DEADLINE
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except Exception as exc:  # noqa: BLE001 - e.g. NotFound while waiting for a create
            last = exc
        else:
            if last:
                return
        time.sleep(0.005)
    raise AssertionError(f"never saw {what} (last check gave {last!r})")


class Threads:
    """``count`` threads running ``target``; ``join()`` re-raises the first error."""

    def __init__(self, target: Callable[[], None], count: int) -> None:
        self.errors: list[BaseException] = []
        self.threads = [threading.Thread(target=self._guarded, args=(target,))
                        for _ in range(count)]
        for thread in self.threads:
            thread.start()

    def _guarded(self, target: Callable[[], None]) -> None:
        try:
            target()
        except BaseException as exc:  # noqa: BLE001 - re-raised by join()
            self.errors.append(exc)

    def join(self) -> None:
        for thread in self.threads:
            thread.join(timeout=120)
            assert not thread.is_alive(), "a thread is stuck"
        if self.errors:
            raise self.errors[0]


# --------------------------------------------------------------------------- lost updates


def increments(cfg: confhub.Tenant, hub: confhub.Hub, n: int) -> None:
    done = 0
    while done < n:
        entry = cfg.get("counter", "hot")
        try:
            cfg.set("counter", "hot", {"n": entry.value["n"] + 1},
                    expected_version=entry.version)
            done += 1
        except confhub.VersionConflict:
            hub.sync()


@pytest.mark.slow
def test_cas_increments_from_threads_and_processes_never_lose_an_update(
        store_url: str, children: Callable[..., subprocess.Popen[str]]) -> None:
    """4 threads and 3 processes each add 1 fifty times: the counter ends at 350, and its
    history is 351 consecutive versions each one more than the last."""
    threads_n, procs_n, each = 4, 3, 50
    with confhub.open(store_url) as hub:
        hub.create_tenant("race")
        cfg = hub.tenant("race")
        cfg.set("counter", "hot", {"n": 0}, expected_version=0)
        procs = [children("increment", store_url, "race", each) for _ in range(procs_n)]
        for proc in procs:
            assert read_line(proc) == "ready"
        for proc in procs:
            send(proc, "go")
        Threads(lambda: increments(cfg, hub, each), threads_n).join()
        for proc in procs:
            assert read_line(proc).startswith("done")
            assert proc.wait(timeout=60) == 0

    total = (threads_n + procs_n) * each
    with confhub.open(store_url) as fresh:
        cfg = fresh.tenant("race")
        assert cfg.get("counter", "hot").value == {"n": total}
        history = cfg.history("counter", "hot", limit=1000)
        assert [v.version for v in history] == list(range(total + 1, 0, -1))
        assert [v.value["n"] for v in history] == list(range(total, -1, -1))
        assert cfg.revision == total + 1  # one revision per committed write, none for conflicts


def test_processes_starting_at_once_on_a_new_database_all_open_it(
        store_url: str, children: Callable[..., subprocess.Popen[str]]) -> None:
    """Four workers started together on an empty database (they race to create the schema
    and the default tenant) all open it and can write."""
    procs = [children("serve", store_url) for _ in range(4)]
    for i, proc in enumerate(procs):
        assert read_line(proc) == "ready"
        send(proc, json.dumps({"op": "set", "tenant": "default", "namespace": "boot",
                               "key": f"w{i}", "value": i}))
    for proc in procs:
        assert json.loads(read_line(proc)) == {"version": 1}
        assert proc.stdin is not None
        proc.stdin.close()
        assert proc.wait(timeout=30) == 0
    with confhub.open(store_url) as hub:
        assert [e.value for e in hub.tenant().list("boot")] == [0, 1, 2, 3]


# --------------------------------------------------------------------------- visibility


def test_writes_by_another_process_reach_the_cache(
        store_url: str, children: Callable[..., subprocess.Popen[str]]) -> None:
    """Sets, patches, transactions, deletes, tenant soft/hard delete, restore and re-creation
    done by another process all show up in this process's cached reads."""
    with confhub.open(store_url) as hub:
        hub.create_tenant("acme")
        cfg = hub.tenant("acme")
        cfg.set("models", "seen", {"n": 0})
        assert cfg.get("models", "seen").value == {"n": 0}  # the tenant's view is loaded
        other = children("serve", store_url)
        assert read_line(other) == "ready"

        def ask(**command: Any) -> dict[str, Any]:
            send(other, json.dumps(command))
            answer: dict[str, Any] = json.loads(read_line(other))
            assert "error" not in answer, answer
            return answer

        def value_is(namespace: str, key: str, value: Any, env: str = "base") -> Callable[
                [], bool]:
            return lambda: cfg.get(namespace, key, env=env).value == value

        def absent(namespace: str, key: str) -> Callable[[], bool]:
            def check() -> bool:
                try:
                    cfg.get(namespace, key)
                except NotFound:
                    return True
                return False
            return check

        ask(op="set", tenant="acme", namespace="models", key="a", value={"x": 1})
        eventually(value_is("models", "a", {"x": 1}), "a key created by another process")
        ask(op="set", tenant="acme", namespace="models", key="a", value={"x": 2})
        eventually(value_is("models", "a", {"x": 2}), "an update by another process")
        ask(op="patch", tenant="acme", namespace="models", key="a", value={"y": 3})
        eventually(value_is("models", "a", {"x": 2, "y": 3}), "a patch by another process")
        ask(op="set", tenant="acme", namespace="models", key="a", value={"p": 1},
            env="production")
        eventually(value_is("models", "a", {"p": 1}, env="production"), "an env layer write")
        eventually(lambda: cfg.resolve("models", "a", env="production").value
                   == {"x": 2, "y": 3, "p": 1}, "the resolved value with the new layer")
        ask(op="txn", tenant="acme", set=[["routing", "b", 1], ["routing", "c", 2]],
            delete=[["models", "seen"]])
        eventually(lambda: [e.value for e in cfg.list("routing")] == [1, 2],
                   "a transaction by another process")
        eventually(absent("models", "seen"), "a delete inside that transaction")
        assert cfg.get("models", "a").version == 3
        ask(op="delete", tenant="acme", namespace="models", key="a")
        eventually(absent("models", "a"), "a delete by another process")
        assert [e.key for e in cfg.list("models")] == []

        ask(op="delete_tenant", tenant="acme")
        eventually(absent("routing", "b"), "a soft-deleted tenant")
        with pytest.raises(NotFound):
            cfg.list("routing")
        assert "acme" not in [t.id for t in hub.tenants()]

        ask(op="restore_tenant", tenant="acme")
        eventually(value_is("routing", "b", 1), "a restored tenant")

        ask(op="delete_tenant", tenant="acme", hard=True)
        eventually(absent("routing", "b"), "a purged tenant")
        ask(op="create_tenant", tenant="acme")
        ask(op="set", tenant="acme", namespace="routing", key="b", value="new")
        eventually(value_is("routing", "b", "new"), "a tenant re-created after a purge")
        assert cfg.get("routing", "b").version == 1  # the purged history is really gone
        eventually(absent("routing", "c"), "no key of the purged tenant")

        ask(op="create_tenant", tenant="fresh")
        ask(op="set", tenant="fresh", namespace="ns", key="k", value=True)
        eventually(lambda: hub.tenant("fresh").get("ns", "k").value is True,
                   "a tenant created by another process")
        assert other.stdin is not None
        other.stdin.close()  # ends the serve loop
        assert other.wait(timeout=30) == 0


# --------------------------------------------------------------------------- atomicity


@pytest.mark.slow
def test_concurrent_transfers_are_never_seen_half_applied(
        store_url: str, children: Callable[..., subprocess.Popen[str]],
        eager_thread_switching: None) -> None:
    """2 processes and 2 threads move amounts between 4 keys in CAS transactions while a
    reader follows the change feed and another lists the keys: the keys sum to 400 at every
    revision and in every list()."""
    keys, each, total = 4, 30, 400
    with confhub.open(store_url) as hub:
        hub.create_tenant("bank")
        cfg = hub.tenant("bank")
        with cfg.transaction() as tx:
            for i in range(keys):
                tx.set("bank", f"k{i}", total // keys)
        procs = [children("transfer", store_url, "bank", keys, each, seed) for seed in (1, 2)]
        for proc in procs:
            assert read_line(proc) == "ready"

        def writer() -> None:
            rng = random.Random(threading.get_ident())
            done = 0
            while done < each:
                a, b = rng.sample([f"k{i}" for i in range(keys)], 2)
                ea, eb = cfg.get("bank", a), cfg.get("bank", b)
                amount = rng.randint(1, 10)
                try:
                    with cfg.transaction() as tx:
                        tx.set("bank", a, ea.value - amount, expected_version=ea.version)
                        tx.set("bank", b, eb.value + amount, expected_version=eb.version)
                    done += 1
                except confhub.VersionConflict:
                    hub.sync()

        stop = threading.Event()
        seen: list[int] = []  # revisions checked by the reader

        def reader() -> None:
            state: dict[str, int] = {}
            since = 0
            while True:
                finished = stop.is_set()
                changes = cfg.changes(since=since, limit=7)  # small pages, never split
                for i, change in enumerate(changes):
                    assert change.revision == since + 1 or change.revision == since, \
                        f"revision gap: {since} then {change.revision}"
                    state[change.key] = change.value
                    since = change.revision
                    last = i + 1 == len(changes) or changes[i + 1].revision != since
                    if last:
                        assert sum(state.values()) == total, f"torn at revision {since}"
                        seen.append(since)
                if finished and not changes:
                    return

        def lister() -> None:
            """One list() is one read: it shows a whole number of transactions."""
            while not stop.is_set():
                listed = cfg.list("bank")
                assert sum(e.value for e in listed) == total, \
                    f"list() shows half a transaction: {[(e.key, e.version) for e in listed]}"

        readers = Threads(reader, 1)
        listers = Threads(lister, 1)
        for proc in procs:
            send(proc, "go")
        Threads(writer, 2).join()
        for proc in procs:
            assert read_line(proc).startswith("done")
            assert proc.wait(timeout=60) == 0
        stop.set()
        readers.join()
        listers.join()

        transfers = 4 * each
        assert cfg.revision == 1 + transfers
        assert seen == list(range(1, transfers + 2))  # the reader saw every revision
        feed = cfg.changes(since=1, limit=10_000)
        by_revision: dict[int, list[str]] = {}
        for change in feed:
            by_revision.setdefault(change.revision, []).append(change.key)
        assert all(len(touched) == 2 for touched in by_revision.values())
    with confhub.open(store_url) as fresh:
        assert sum(e.value for e in fresh.tenant("bank").list("bank")) == total


# --------------------------------------------------------------------------- readers


def test_listing_while_another_writer_adds_keys_never_fails(
        store_url: str, eager_thread_switching: None) -> None:
    """list() and namespaces() keep working while the cache follower adds keys and
    namespaces written through another hub (another process would do the same)."""
    with confhub.open(store_url) as hub, confhub.open(store_url) as writer:
        hub.create_tenant("acme")
        cfg, other = hub.tenant("acme"), writer.tenant("acme")
        cfg.set("ns0", "seed", 0)
        stop = threading.Event()

        def read() -> None:
            while True:
                listed = cfg.list("ns0")
                assert [e.key for e in listed] == sorted(e.key for e in listed)
                cfg.namespaces()
                cfg.namespace_counts()
                cfg.envs()
                if stop.is_set():
                    return

        readers = Threads(read, 1)
        try:
            for i in range(200):
                other.set(f"ns{i % 20}", f"k{i}", i)
        finally:
            stop.set()
        readers.join()
        eventually(lambda: len(cfg.list("ns0")) == 11, "every key written")


@pytest.mark.slow
def test_cached_reads_are_read_your_writes_and_never_go_back(
        store_url: str, children: Callable[..., subprocess.Popen[str]]) -> None:
    """While two other processes hammer the tenant, a thread here always reads back at least
    the version it just wrote, and reads of the other processes' key never go backwards."""
    with confhub.open(store_url) as hub:
        hub.create_tenant("race")
        cfg = hub.tenant("race")
        cfg.set("counter", "hot", {"n": 0})
        procs = [children("increment", store_url, "race", 60) for _ in range(2)]
        for proc in procs:
            assert read_line(proc) == "ready"
        for proc in procs:
            send(proc, "go")
        stop = threading.Event()

        def observe() -> None:
            last = 0
            while not stop.is_set():
                entry = cfg.get("counter", "hot")
                assert entry.version >= last, f"read went back from {last} to {entry.version}"
                assert entry.value["n"] == entry.version - 1
                last = entry.version
                time.sleep(0.0002)  # leave the GIL to the writers

        observers = Threads(observe, 1)
        try:
            for i in range(1, 80):
                written = cfg.set("mine", "k", i)
                seen = cfg.get("mine", "k")
                assert seen.version >= written.version and seen.value == i
        finally:
            for proc in procs:
                assert read_line(proc).startswith("done")
                assert proc.wait(timeout=60) == 0
            stop.set()
        observers.join()
        eventually(lambda: cfg.get("counter", "hot").value == {"n": 120},
                   "every increment of the other processes")
