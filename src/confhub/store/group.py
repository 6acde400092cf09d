"""Group commit: many callers' write transactions in one database transaction.

Writers of one process queue their transactions; one of them leads, running a group of queued
transactions in one database transaction (each with its own revision and its own failure; their
rows are held and written in one batch per table, see ``pending.py``), then commits once: one
fsync (SQLite) or one WAL flush and two round trips (PostgreSQL) acknowledge them all, and the
lead passes to the first writer still queued. Nobody is acknowledged before that COMMIT
returns. With a single writer this is exactly one transaction per write, run by the caller's
own thread. ``submit`` queues without waiting (an event loop's way to write); when nobody
leads, the store's writer thread does.

``GroupCommits`` is mixed into a store that implements ``_run_group(jobs)`` (the database
transaction) and may narrow ``_take_group`` (which queued jobs go together).
"""

from __future__ import annotations

import collections
import contextvars
import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")
logger = logging.getLogger("confhub.store")
MAX_GROUP = 256


class Job:
    """One queued write transaction and, once its group committed, its outcome.

    A caller of ``write`` waits on ``parked``, released when the job is done or when its thread
    is handed the lead (``lead``). It is a bare lock created held, not a ``threading.Event``: an
    Event is a Condition, whose wait and set cost several more futex calls and lock objects per
    write, which showed in eight threads' sets. It is released at most twice, and never while
    unlocked: a job handed the lead is released once to wake its thread, which takes the lock
    again and later, as leader, releases it once more when its group is done::

        created held -> release (lead)  -> its thread acquires -> release (done)   led a group
        created held -> release (done)  -> its thread acquires                      was served
        created held (its thread led at once, never waited) -> release (done)

    A job from ``submit`` has no thread waiting: ``callback`` is told the outcome, and the lead
    goes to the store's writer thread instead. ``context`` is the caller's (contextvars: who
    is acting, for the audit record), in which ``fn`` runs whichever thread leads.
    """

    __slots__ = ("tenant", "fn", "create", "keys", "on_commit", "callback", "context", "done",
                 "lead", "parked", "result", "error")

    def __init__(self, tenant: str, fn: Callable[[Any], Any], create: bool,
                 keys: Sequence[tuple[str, str, str]],
                 on_commit: Callable[[Any], object] | None,
                 callback: Callable[[Any, BaseException | None], object] | None = None
                 ) -> None:
        self.tenant = tenant
        self.keys = keys
        self.fn = fn
        self.create = create
        self.on_commit = on_commit
        self.callback = callback
        self.context = contextvars.copy_context()
        self.done = False
        self.lead = False
        self.parked: threading.Lock | None = None
        if callback is None:
            self.parked = threading.Lock()
            self.parked.acquire()
        self.result: Any = None
        self.error: BaseException | None = None


class GroupCommits:
    """The queue, the lead and the writer thread of a store's group commit."""

    _write_lock: threading.Lock  # held while a group (or any other write) runs

    def _start_groups(self, name: str) -> None:
        self._queue_lock = threading.Lock()
        self._queue: collections.deque[Job] = collections.deque()
        self._leading = False  # a thread is running a group or has been handed the lead
        self._groups_closing = False
        self._writer_turn = threading.Event()
        self._writer_thread = threading.Thread(target=self._writer_loop, daemon=True,
                                               name=f"confhub-{name}-writer")
        self._writer_thread.start()

    def _stop_groups(self) -> None:
        self._groups_closing = True
        self._writer_turn.set()
        self._writer_thread.join(timeout=5)

    def _run_group(self, jobs: list[Job]) -> None:
        """Run ``jobs`` in one database transaction (write lock held); set each job's
        ``result``/``error``; run the ``on_commit`` of those that committed, in order."""
        raise NotImplementedError

    def _take_group(self) -> list[Job]:
        """The jobs of the next group, from the front of the queue (queue lock held)."""
        return [self._queue.popleft() for _ in range(min(MAX_GROUP, len(self._queue)))]

    def write(self, tenant: str, fn: Callable[[Any], T], *, create: bool = False,
              keys: Sequence[tuple[str, str, str]] = (),
              on_commit: Callable[[T], object] | None = None) -> T:
        """Queue the transaction; lead a group commit or wait for the leader's.

        Worked example, three threads writing at once::

            T1 queues a, finds no leader: leads. Group [a]: BEGIN, a, COMMIT (fsync) ...
            T2 queues b, T3 queues c meanwhile: a leader exists, so they wait.
            T1 after its COMMIT: runs a's on_commit, wakes T1's caller, hands the lead to b.
            T2 leads group [b, c]: one BEGIN, b, c, one COMMIT, on_commits in order, wakes T3.

        A thread leads at most one group, the one holding its own job, so nobody waits for
        other people's writes longer than one commit after their own.
        """
        job = Job(tenant, fn, create, keys, on_commit)
        with self._queue_lock:
            self._queue.append(job)
            lead = not self._leading
            self._leading = True
        if not lead:
            assert job.parked is not None
            job.parked.acquire()
        if not job.done:
            self._lead()
        if job.error is not None:
            raise job.error
        return job.result  # type: ignore[no-any-return]

    def submit(self, tenant: str, fn: Callable[[Any], T], *,
               callback: Callable[[T | None, BaseException | None], object],
               create: bool = False, keys: Sequence[tuple[str, str, str]] = (),
               on_commit: Callable[[T], object] | None = None) -> None:
        """Queue the transaction without waiting (an event loop's way to write): it joins
        the next group commit, and ``callback(result, None)`` or ``callback(None, error)``
        runs in the committing thread once the group is durable (or failed), after the
        ``on_commit`` callbacks of the group. With nobody leading, the store's writer thread
        leads."""
        job = Job(tenant, fn, create, keys, on_commit, callback)
        with self._queue_lock:
            self._queue.append(job)
            if self._leading:
                return
            self._leading = True
        self._writer_turn.set()

    def _writer_loop(self) -> None:
        """The writer thread: leads groups whose first job has no thread of its own."""
        while True:
            self._writer_turn.wait()
            self._writer_turn.clear()
            if self._groups_closing:
                return
            self._lead()

    def _lead(self) -> None:
        """Run one group (which holds our job: it is first in the queue) and pass the lead."""
        with self._queue_lock:
            jobs = self._take_group()
        try:
            with self._write_lock:
                self._run_group(jobs)
        finally:
            with self._queue_lock:
                if self._queue:
                    successor = self._queue[0]
                    successor.lead = True
                    if successor.parked is not None:
                        successor.parked.release()
                    else:
                        self._writer_turn.set()
                else:
                    self._leading = False
            for job in jobs:
                job.done = True
                if job.parked is not None:
                    job.parked.release()
                else:
                    assert job.callback is not None
                    try:
                        job.callback(None if job.error else job.result, job.error)
                    except Exception:
                        logger.exception("write callback failed")

