"""Where a durable write's CPU goes, thread by thread: in ``confhub serve`` or embedded.

``http_write.py`` gives the server's CPU per PUT as one number; this splits it by thread
(user and system time from ``/proc/<pid>/task/*/stat``, before and after one ``wrk`` run of
the same distinct-key PUTs), which shows work that is not on the request's own path: the
group commit's writer thread, the cache follower, the checkpointer, granian's I/O thread.

Python threads all carry the process's name in ``/proc``; in the server they are printed in
the order they were started (thread ids grow), which for ``confhub serve`` on SQLite is: the
event loop (the process itself), the group commit's writer, the checkpointer, the cache
follower, then the hub's other background threads and granian's own (``tokio-…``).
``--embedded`` instead times ``cfg.set`` calls made one after another in this process, where
each thread is printed with its Python name.

Usage (needs ``wrk`` for the server)::

    python bench/server_threads.py --connections 1
    python bench/server_threads.py --embedded --sets 2000
    PYTHONPATH=/work/wt/base/src python bench/server_threads.py --embedded   # before

Nothing is asserted; it prints one row per thread that used CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from http_bench import free_port, process, wait_http  # noqa: E402
from http_write import TICK, VALUE, confhub_lua, wrk  # noqa: E402

Times = dict[int, tuple[str, int, int]]  # tid -> (name, user ticks, system ticks)


def thread_times(pgid: int) -> dict[int, Times]:
    """Per process of the group (by pid), its threads' CPU ticks so far."""
    found: dict[int, Times] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[2]) != pgid:
                continue
            pid = int(stat.parent.name)
            threads: Times = {}
            for task in (stat.parent / "task").iterdir():
                text = (task / "stat").read_text()
                name = text[text.index("(") + 1:text.rindex(")")]
                fields = text.rsplit(")", 1)[1].split()
                threads[int(task.name)] = (name, int(fields[11]), int(fields[12]))
        except (OSError, ValueError):
            continue
        found[pid] = threads
    return found


def embedded(sets: int) -> None:
    """``sets`` sequential ``cfg.set`` calls on an embedded SQLite hub, CPU per set by thread."""
    import confhub

    value = json.loads(VALUE)
    with tempfile.TemporaryDirectory(prefix="confhub-threads-") as folder:
        hub = confhub.open(f"sqlite:///{folder}/confhub.db")
        cfg = hub.tenant("default")
        for n in range(100):
            cfg.set("warm", f"k{n}", value)
        names = {t.native_id: t.name for t in threading.enumerate()}
        pid = os.getpid()
        before = thread_times(os.getpgid(0))[pid]
        started = time.perf_counter()
        for n in range(sets):
            cfg.set("bench", f"k{n:09d}", value)
        elapsed = time.perf_counter() - started
        after = thread_times(os.getpgid(0))[pid]
        hub.close()
    print(f"embedded SQLite hub, {sets:,} sets one after another: {sets / elapsed:,.0f} sets/s, "
          f"load average {os.getloadavg()[0]:.2f}")
    report({pid: before}, {pid: after}, sets, names)


def report(before: dict[int, Times], after: dict[int, Times], operations: float,
           names: dict[int | None, str] | None = None) -> None:
    print(f"{'pid':>7} {'tid':>7} {'thread':22} {'µs/op':>8} {'of it system':>13}")
    total = 0.0
    for pid, threads in sorted(after.items()):
        for tid, (name, user, system) in sorted(threads.items()):
            _, user0, system0 = before.get(pid, {}).get(tid, (name, 0, 0))
            ticks = (user - user0) + (system - system0)
            if not ticks:
                continue
            us = ticks / TICK / operations * 1e6
            total += us
            label = (names or {}).get(tid, name)
            print(f"{pid:>7} {tid:>7} {label:22} {us:8.1f} "
                  f"{(system - system0) / TICK / operations * 1e6:13.1f}")
    print(f"{'':>7} {'':>7} {'all threads':22} {total:8.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=1)
    parser.add_argument("--duration", type=int, default=6, help="seconds of wrk")
    parser.add_argument("--embedded", action="store_true", help="sets in this process")
    parser.add_argument("--sets", type=int, default=2000, help="with --embedded")
    parser.add_argument("--log-level", default="info",
                        help="the server's (info, serve's default, writes the access log)")
    args = parser.parse_args()
    if args.embedded:
        embedded(args.sets)
        return
    with tempfile.TemporaryDirectory(prefix="confhub-threads-") as folder:
        tmp, port = Path(folder), free_port()
        cmd = [sys.executable, "-m", "confhub.server", "--db", str(tmp / "confhub.db"),
               "--port", str(port), "--log-level", args.log_level]
        base = f"http://127.0.0.1:{port}"
        with process(cmd, tmp / "confhub.log") as pgid:
            wait_http(f"{base}/healthz")
            wrk(base, args.connections, 1, confhub_lua("/config/warm"), tmp)  # warm up
            before = thread_times(pgid)
            result = wrk(base, args.connections, args.duration, confhub_lua("/config/bench"),
                         tmp)
            after = thread_times(pgid)
    print(f"confhub serve (SQLite, 1 worker), {args.connections} connection(s), "
          f"{result['rps']:,} PUT/s, load average {os.getloadavg()[0]:.2f}")
    report(before, after, result["rps"] * args.duration)


if __name__ == "__main__":
    main()
