"""SQLite backend: the embedded default.

Durability: WAL journal with ``synchronous=FULL``. In WAL mode, FULL syncs the WAL on every
commit, so an acknowledged write survives a power cut; NORMAL would only survive a process
crash (SQLite's docs: "a transaction committed in WAL mode with synchronous=NORMAL might roll
back following a power loss"). See docs/decisions.md.

Concurrency: one write connection per process behind a lock, ``BEGIN IMMEDIATE`` so the
database write lock is taken up front (no deadlocking upgrade from a read lock), and a
``busy_timeout`` so writers in other processes queue instead of failing. Readers use a small
pool of autocommit connections; WAL lets them run while a write is in progress.

Group commit (``group.py``): writers of one process queue their transactions and one of them
runs a group of them in one SQLite transaction, committed once: one fsync acknowledges them
all, nobody before that COMMIT returns.

Checkpoints: SQLite normally copies the WAL back into the database inside whichever COMMIT
crosses 1,000 pages, so one write in a thousand pays for a checkpoint and its fsync (the p99
of a write). Here the writer never checkpoints (``wal_autocheckpoint=0``); a background thread
runs a PASSIVE checkpoint on its own connection shortly after commits, which proceeds while
readers and writers carry on. Durability is unchanged: the WAL is still synced on every COMMIT.
"""

from __future__ import annotations

import os
import queue
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..errors import ConfhubError, Unavailable
from .group import GroupCommits, Job
from .migrate import migrate
from .pending import Pending
from .sql import SqlStore
from .sql_commit import settle

BUSY_TIMEOUT_MS = 10_000
PREFETCH_FROM = 8  # keys in one transaction from which their rows are read in a batch
CHECKPOINT_INTERVAL = 0.2  # seconds between background checkpoints while writes happen


@contextmanager
def _translated(path: str) -> Iterator[None]:
    """Storage failures become Unavailable (503); everything else passes through."""
    try:
        yield
    except ConfhubError:
        raise
    except sqlite3.OperationalError as exc:
        raise Unavailable(f"SQLite database {path!r} is unavailable: {exc}",
                          backend="sqlite") from exc
    except sqlite3.DatabaseError as exc:
        raise Unavailable(f"SQLite database {path!r} failed: {exc}", backend="sqlite") from exc


class SqliteStore(GroupCommits, SqlStore):
    backend = "sqlite"
    isolates = True  # a group commit carries several write()s

    def __init__(self, path: str) -> None:
        self.path = path
        if path != ":memory:":
            parent = os.path.dirname(os.path.abspath(path))
            if not os.path.isdir(parent):
                raise Unavailable(f"directory {parent!r} for SQLite database does not exist",
                                  backend="sqlite")
        self._write_lock = threading.Lock()
        self._idle: queue.SimpleQueue[sqlite3.Connection] = queue.SimpleQueue()
        self._commits = 0  # since the last background checkpoint
        with _translated(path):
            self._writer = self._connect()
            # Before the first table exists (a no-op on older files until a full VACUUM):
            # lets compaction hand freed pages back to the file system (reclaim_space).
            self._writer.execute("PRAGMA auto_vacuum=INCREMENTAL")
            self._enter_wal()
            self._writer.execute("PRAGMA wal_autocheckpoint=0")
            with self._writing() as conn:
                migrate(conn, "sqlite")
            self.backfill_checksums()
            self._watcher = self._connect()
            self._seen_any = self._data_version(self._watcher)
            self._seen_foreign = self._data_version(self._writer)
            self._checkpointer = self._connect()
        self._wake_follower = False  # a write of ours outside the group commit committed
        self._closing = threading.Event()
        self._start_groups("sqlite")
        self._checkpoint_thread = threading.Thread(target=self._checkpoint_loop, daemon=True,
                                                   name="confhub-sqlite-checkpoint")
        self._checkpoint_thread.start()

    def _enter_wal(self) -> None:
        """Put the database in WAL mode, waiting for other openers as for any lock.

        Several processes opening a new file at once (``serve --workers 2`` on its first
        start) race to switch it to WAL, and SQLite can answer the loser "database is
        locked" at once, without its busy handler (seen in about one of fifty concurrent
        first opens on a loaded machine). The switch is retried with a growing pause until
        ``BUSY_TIMEOUT_MS``, the wait every other lock gets; a switch that does not take
        (the answer is not ``wal``) is retried the same way."""
        deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
        pause = 0.001
        while True:
            try:
                mode = self._writer.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
            else:
                if str(mode).lower() == "wal":
                    return
                if time.monotonic() > deadline:
                    raise sqlite3.OperationalError(
                        f"database stays in {mode!r} journal mode: another process holds it")
            time.sleep(pause)
            pause = min(pause * 2, 0.05)

    def _checkpoint_loop(self) -> None:
        while not self._closing.wait(CHECKPOINT_INTERVAL):
            if not self._commits:
                continue
            self._commits = 0
            try:
                self._checkpointer.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            except sqlite3.Error:
                self._commits = 1  # busy or briefly unavailable: try again next round

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                               timeout=BUSY_TIMEOUT_MS / 1000)
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA synchronous=FULL")
        return conn

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        try:
            conn = self._idle.get_nowait()
        except queue.Empty:
            with _translated(self.path):
                conn = self._connect()
        try:
            with _translated(self.path):
                yield conn
        finally:
            self._idle.put(conn)

    @contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        with self._write_lock, _translated(self.path):
            conn = self._writer
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            self._commits += 1
            self._wake_follower = True

    def _run_group(self, jobs: list[Job]) -> None:
        """Run ``jobs`` in one database transaction and commit once (write lock held).

        Each job is its own write transaction with its own revision; its rows are held in
        memory (``Pending``) and written in one batch per table before COMMIT, so a job that
        fails leaves nothing to undo (one that wrote directly has a SAVEPOINT). Nobody is told
        of success before COMMIT returned; ``on_commit`` callbacks then run in commit order.
        """
        conn = self._writer
        group = Pending()
        try:
            with _translated(self.path):
                conn.execute("BEGIN IMMEDIATE")
                for job in jobs:
                    try:
                        prefetched = (self._prefetch(conn, job.tenant, job.keys)
                                      if len(job.keys) > PREFETCH_FROM and not job.create
                                      else None)
                        job.result = job.context.run(self._write_in, conn, job.tenant,
                                                     job.fn, job.create, group, prefetched)
                    except sqlite3.Error:
                        raise  # the transaction itself is in doubt: fail the whole group
                    except BaseException as exc:  # noqa: BLE001 - handed to the job's caller
                        job.error = exc
                self._finish_group(conn, group)
                conn.execute("COMMIT")
            self._commits += 1
            if any(group.revisions.get(t) != r for t, r in group.notify.items()):
                self._wake_follower = True  # no version appended (a tenant created): as on PG
        except BaseException as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            settle(jobs, exc)
            return
        settle(jobs, None)

    def _storage_bytes(self, conn: Any) -> int:
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        size = conn.execute("PRAGMA page_size").fetchone()[0]
        wal = f"{self.path}-wal"
        return int(pages * size + (os.path.getsize(wal) if os.path.exists(wal) else 0))

    def ping(self) -> float:
        started = time.perf_counter()
        with self._reading() as conn:
            conn.execute("SELECT 1").fetchone()
        return time.perf_counter() - started

    @staticmethod
    def _data_version(conn: sqlite3.Connection) -> int:
        """``PRAGMA data_version``: it moves when another connection commits, never for the
        asking connection's own commits."""
        return int(conn.execute("PRAGMA data_version").fetchone()[0])

    def wait_for_commit(self, timeout: float, interval: float = 0.005) -> bool:
        """Poll for a commit by another process, or a write of ours outside the group commit.

        The group commit's own commits are not reported: its ``on_commit`` applies their rows
        to the cache right after COMMIT, and waking the follower for them only read the
        tenants back, a query per commit. PostgreSQL skips them the same way, by their
        NOTIFY. A separate connection (``_watcher``) sees every commit, ours included, and
        is polled without a lock; when it moved, the writer's own connection (write lock
        held, so no group of ours is running) tells whether anyone else committed. For
        example::

            another process commits        -> watcher 7 -> 8, writer 3 -> 4: reported
            our group commits revision 42  -> watcher 8 -> 9, writer still 4: not reported
            a schema write of ours commits -> watcher 9 -> 10, writer still 4, but it set
                                              _wake_follower: reported

        A change is reported only once no group commit of ours is running: the one that
        moved the version has applied its rows to the cache (``on_commit``) by then.
        """
        deadline = time.monotonic() + timeout
        while True:
            with _translated(self.path):
                seen = self._data_version(self._watcher)
                if seen != self._seen_any:
                    self._seen_any = seen
                    with self._write_lock:  # held by a running group until its on_commits ran
                        foreign = self._data_version(self._writer)
                        ours, self._wake_follower = self._wake_follower, False
                    if foreign != self._seen_foreign or ours:
                        self._seen_foreign = foreign
                        return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            time.sleep(min(interval, remaining))

    def reclaim_space(self, full: bool = False) -> dict[str, Any]:
        """Hand pages freed by compaction back to the file system: ``incremental_vacuum``
        (short write lock), or with ``full`` a ``VACUUM`` (rewrites the file; also turns an
        older database's auto_vacuum to incremental). Then a TRUNCATE checkpoint, so the WAL
        does not keep the space either."""
        before = self.stats()["storage_size_mb"]
        with self._write_lock, _translated(self.path):
            mode = self._writer.execute("PRAGMA auto_vacuum").fetchone()[0]
            if full:
                self._writer.execute("PRAGMA auto_vacuum=INCREMENTAL")
                self._writer.execute("VACUUM")
                method = "vacuum"
            elif mode == 2:  # incremental
                self._writer.execute("PRAGMA incremental_vacuum").fetchall()
                method = "incremental_vacuum"
            else:  # made before confhub set auto_vacuum: free pages are reused, not returned
                method = "none (older file: run `confhub compact --vacuum` once)"
            self._writer.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        return {"method": method, "size_mb_before": before,
                "size_mb_after": self.stats()["storage_size_mb"]}

    def close(self) -> None:
        self._closing.set()
        self._stop_groups()
        self._checkpoint_thread.join(timeout=30)
        # Closing a connection another thread is still using crashes the sqlite3 module
        # (seen with a checkpoint of a ~1 GB WAL after a big compaction): leave it to the
        # process's end instead.
        if not self._checkpoint_thread.is_alive():
            self._checkpointer.close()
        with self._write_lock:
            self._writer.close()
        self._watcher.close()
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                break
