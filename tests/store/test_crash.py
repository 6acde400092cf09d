"""Crash safety: writers killed with SIGKILL at random points lose no acknowledged write.

Two child processes (``_child.py crash-writer``) make single writes and constant-sum CAS
transactions as fast as they can and, after each commit returns, append what they wrote to a
log file (fsynced). We kill both with SIGKILL at a random moment — during start-up, between
writes, in the middle of a commit — 30 times per backend, and after each kill reopen the store
and check:

* every acknowledged write is there: the logged version of the key has the logged value and
  revision;
* no transaction is half applied: the bank keys sum to the constant at every revision of the
  change feed, and every revision is either one single write or a whole transfer;
* revisions are gap-free (1..current, each with at least one change);
* a new writer can carry on (no lock is left behind), and SQLite's integrity check passes.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

import confhub

CHILD = Path(__file__).with_name("_child.py")
KILLS = 30
WRITERS = 2  # processes writing at once, killed together
BANK_KEYS = 5
TOTAL = 500
PROGRESS_DEADLINE = 30.0  # seconds for a fresh writer to make its first acknowledged writes


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest) -> str:
    """A fresh database on each storage backend."""
    return str(request.getfixturevalue(f"{'pg' if request.param == 'postgres' else 'sqlite'}_url"))


@dataclass(frozen=True)
class Ack:
    """One acknowledged commit: ``writes`` are (namespace, key, version, value)."""

    revision: int
    writes: tuple[tuple[str, str, int, int], ...]
    line: str


def parse_acks(log: Path) -> list[Ack]:
    """Complete lines of the child's log (a line cut by the kill was never acknowledged)."""
    if not log.exists():
        return []
    acks = []
    for line in log.read_text().splitlines(keepends=True):
        if not line.endswith("\n"):
            break
        kind, revision, *rest = line.split()
        if kind == "set":
            key, version, value = rest
            writes: tuple[tuple[str, str, int, int], ...] = (
                ("log", key, int(version), int(value)),)
        else:
            writes = tuple(("bank", k, int(v), int(x))
                           for k, v, x in (part.split(":") for part in rest))
        acks.append(Ack(int(revision), writes, line.strip()))
    return acks


def ack_count(log: Path) -> int:
    try:
        return log.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def check_store(url: str, acks: list[Ack]) -> int:
    """Check every invariant on a freshly opened hub; returns the tenant revision."""
    with confhub.open(url) as hub:
        cfg = hub.tenant("crash")
        current = cfg.revision
        for ack in acks:
            assert ack.revision <= current, f"acknowledged revision lost: {ack.line}"
            for namespace, key, version, value in ack.writes:
                entry = cfg.get(namespace, key, version=version)
                assert (entry.value, entry.revision) == (value, ack.revision), \
                    f"acknowledged write lost or changed: {ack.line}"

        feed: list[confhub.Change] = []
        while True:
            page = cfg.changes(since=feed[-1].revision if feed else 0, limit=5000)
            if not page:
                break
            feed.extend(page)
        by_revision: dict[int, list[confhub.Change]] = {}
        for change in feed:
            by_revision.setdefault(change.revision, []).append(change)
        assert list(by_revision) == list(range(1, current + 1)), "revisions have a gap"

        balances: dict[str, int] = {}
        for revision, changes in by_revision.items():
            namespaces = {c.namespace for c in changes}
            if revision == 1:
                assert len(changes) == BANK_KEYS  # the opening balances
            elif namespaces == {"log"}:
                assert len(changes) == 1, f"revision {revision} holds several single writes"
            else:
                assert namespaces == {"bank"} and len(changes) >= 2, \
                    f"revision {revision} is a partial or mixed transaction"
            for change in changes:
                if change.namespace == "bank":
                    balances[change.key] = change.value
            assert sum(balances.values()) == TOTAL, f"torn transaction at revision {revision}"
        assert {e.key: e.value for e in cfg.list("bank")} == balances
    if url.startswith("sqlite:"):
        path = url[len("sqlite:///"):]
        with sqlite3.connect(path) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    return current


@pytest.mark.slow
def test_acknowledged_writes_survive_sigkill(store_url: str, tmp_path: Path) -> None:
    """Two racing writers SIGKILLed together at random points, 30 times: nothing acknowledged
    is lost, nothing is torn."""
    seed = int.from_bytes(os.urandom(4), "big")
    rng = random.Random(seed)
    with confhub.open(store_url) as hub:
        hub.create_tenant("crash")
        with hub.tenant("crash").transaction(reason="opening balances") as tx:
            for i in range(BANK_KEYS):
                tx.set("bank", f"k{i}", TOTAL // BANK_KEYS)
    logs = [tmp_path / f"acks-{w}.log" for w in range(WRITERS)]
    checked = [0] * WRITERS
    for round_ in range(KILLS):
        before = sum(ack_count(log) for log in logs)
        # 0 extra acks: killed during start-up; otherwise after some writes, and then a
        # fraction of a commit's time later, so kills land inside commits too.
        wanted = before + rng.choice([0, 1, 3, 10, 25, 40])
        writers = []
        for w, log in enumerate(logs):
            stderr = (tmp_path / f"writer-{w}.err").open("w")
            writers.append(subprocess.Popen(
                [sys.executable, str(CHILD), "crash-writer", store_url, "crash", str(log),
                 str(seed + round_ * WRITERS + w)],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr))
            stderr.close()
        deadline = time.monotonic() + PROGRESS_DEADLINE
        while (sum(ack_count(log) for log in logs) < wanted
               and all(c.poll() is None for c in writers)):
            assert time.monotonic() < deadline, \
                f"round {round_}: the writers made no progress after restart (seed {seed})"
            time.sleep(0.001)
        time.sleep(rng.uniform(0, 0.004) if wanted > before else rng.uniform(0, 0.4))
        for child in writers:
            child.send_signal(signal.SIGKILL)
        for w, child in enumerate(writers):
            child.wait()
            assert child.returncode == -signal.SIGKILL, (
                f"writer {w} died by itself (seed {seed}):\n"
                + (tmp_path / f"writer-{w}.err").read_text())
        for w, log in enumerate(logs):
            acks = parse_acks(log)
            check_store(store_url, acks[checked[w]:])
            checked[w] = len(acks)
    # Everything once more at the end, and the writers did real work across the rounds.
    acks = [ack for log in logs for ack in parse_acks(log)]
    revision = check_store(store_url, acks)
    assert len(acks) >= 5 * KILLS // 2, f"only {len(acks)} acknowledged writes (seed {seed})"
    assert revision >= max(ack.revision for ack in acks)
    assert len({ack.revision for ack in acks}) == len(acks)  # no two acks share a revision


def reset_database(url: str) -> None:
    """Make the test database empty again (a fresh SQLite file, an empty PostgreSQL schema)."""
    if url.startswith("sqlite:"):
        path = url[len("sqlite:///"):]
        for suffix in ("", "-wal", "-shm"):
            Path(path + suffix).unlink(missing_ok=True)
        return
    import psycopg

    schema = url.rsplit("search_path%3D", 1)[1]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")
        conn.execute(f"CREATE SCHEMA {schema}")


@pytest.mark.slow
def test_a_process_killed_while_creating_the_database_leaves_one_that_opens(
        store_url: str) -> None:
    """SIGKILL a process around the moment it creates the schema (10 times, each on an
    empty database): the next open succeeds, has the default tenant and takes writes."""
    rng = random.Random(int.from_bytes(os.urandom(4), "big"))
    ready_after: float | None = None
    for round_ in range(10):
        reset_database(store_url)
        started = time.monotonic()
        child = subprocess.Popen([sys.executable, str(CHILD), "serve", store_url],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        if ready_after is None:  # first round: learn how long start-up takes, then kill
            assert child.stdout is not None
            assert child.stdout.readline().strip() == "ready"
            ready_after = time.monotonic() - started
        else:  # later rounds: kill somewhere around the end of start-up
            time.sleep(rng.uniform(0.5, 1.1) * ready_after)
        child.kill()
        child.wait()
        for stream in (child.stdin, child.stdout):
            if stream is not None:
                stream.close()
        with confhub.open(store_url) as hub:
            assert "default" in [t.id for t in hub.tenants()], f"round {round_}"
            assert hub.tenant().set("boot", "k", round_).version == 1
        if store_url.startswith("sqlite:"):
            with sqlite3.connect(store_url[len("sqlite:///"):]) as conn:
                assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
