"""Benchmarks of the embedded store: they print figures, they assert nothing.

Run from the repository root (see docs/benchmarks.md for the figures and the machine)::

    .venv/bin/python bench/store.py get            # cached get vs dynaconf, pydantic-settings
    .venv/bin/python bench/store.py write --backend postgres   # set, txn of 10, rollback
    .venv/bin/python bench/store.py history --versions 10000
    .venv/bin/python bench/store.py scale --keys 1000,1000000
    .venv/bin/python bench/store.py all --backend sqlite   # everything, summary vs targets

How latency is measured:

* Writes and queries are slow enough (~0.1 ms and up) to time one call at a time with
  ``time.perf_counter_ns``; we report median, p90, p99 and max over hundreds of calls after a
  warm-up.
* A cached ``get`` takes a few hundred nanoseconds, the same order as the timer itself, so we
  time *batches* of 100 calls and divide: the per-call figure of one batch includes the
  ``for`` loop (reported as "loop overhead"), never the timer. Median and p99 are over many
  batches, so a p99 says "1 % of 100-call windows averaged more than this". We also time single
  calls, which shows the real tail (a GC pass, a thread switch) inflated by the timer floor.

PostgreSQL runs in a schema created for the run (``bench_<pid>_<n>``) and dropped at its end.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from rich.console import Console
from rich.table import Table

import confhub

PG_URL = os.environ.get("CONFHUB_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
console = Console(highlight=False, width=None if sys.stdout.isatty() else 150)
progress_console = Console(stderr=True, highlight=False)  # the scale child's stdout is JSON
ns_now = time.perf_counter_ns

# The targets, embedded on SQLite: (median, p99) in nanoseconds; None = no target.
TARGETS: dict[str, tuple[float | None, float | None]] = {
    "get (cached)": (500, 5_000),
    "set": (1_000_000, 2_000_000),
    "transaction of 10 puts": (3_000_000, None),
    "rollback": (2_000_000, None),
    "history, first page of 50": (2_000_000, None),
}


# --------------------------------------------------------------------------- figures


@dataclass
class Figure:
    """One measured operation: percentiles in nanoseconds over ``n`` samples."""

    group: str
    op: str
    n: int
    median: float
    p90: float
    p99: float
    max: float
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def percentile(ordered: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def figure(group: str, op: str, samples: Sequence[float], note: str = "") -> Figure:
    ordered = sorted(samples)
    return Figure(group, op, len(ordered), percentile(ordered, 50), percentile(ordered, 90),
                  percentile(ordered, 99), ordered[-1], note)


def fmt(nanos: float) -> str:
    if nanos < 10_000:
        return f"{nanos:,.0f} ns"
    if nanos < 1_000_000:
        return f"{nanos / 1000:,.1f} µs"
    return f"{nanos / 1e6:,.2f} ms"


def verdict(fig: Figure, backend: str) -> str:
    target = TARGETS.get(fig.op)
    if target is None or fig.group == "compare":
        return ""
    median, p99 = target
    parts = []
    if median is not None:
        parts.append(f"median ≤ {fmt(median)}")
    if p99 is not None:
        parts.append(f"p99 ≤ {fmt(p99)}")
    met = (median is None or fig.median <= median) and (p99 is None or fig.p99 <= p99)
    mark = "[green]met[/]" if met else "[red]missed[/]"
    scope = "" if backend == "sqlite" else " (target is for SQLite)"
    return f"{', '.join(parts)}: {mark}{scope}"


def print_figures(title: str, figures: list[Figure], backend: str) -> None:
    table = Table(title=title, title_justify="left")
    for name in ("operation", "n", "median", "p90", "p99", "max", "target", "note"):
        table.add_column(name, justify="right" if name in ("n", "median", "p90", "p99", "max")
                         else "left")
    for fig in figures:
        table.add_row(fig.op, f"{fig.n:,}", fmt(fig.median), fmt(fig.p90), fmt(fig.p99),
                      fmt(fig.max), verdict(fig, backend), fig.note)
    console.print(table)


def rss_mib() -> tuple[float, float]:
    """(current RSS, peak RSS) of this process in MiB, from /proc/self/status."""
    found = {}
    with open("/proc/self/status") as status:
        for line in status:
            name, _, rest = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                found[name] = int(rest.split()[0]) / 1024
    return found.get("VmRSS", 0.0), found.get("VmHWM", 0.0)


# --------------------------------------------------------------------------- backends

_schemas = itertools.count()


@contextlib.contextmanager
def open_url(backend: str, pg_url: str, db_dir: str | None) -> Iterator[str]:
    """The URL of a fresh, empty database on ``backend``, removed afterwards."""
    if backend == "sqlite":
        folder = tempfile.mkdtemp(prefix="confhub-bench-", dir=db_dir)
        try:
            yield os.path.join(folder, "bench.db")
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return
    import psycopg

    schema = f"bench_{os.getpid()}_{next(_schemas)}_{uuid.uuid4().hex[:6]}"
    try:
        with psycopg.connect(pg_url, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
    except psycopg.OperationalError as exc:
        raise SystemExit(f"PostgreSQL at {pg_url} is not reachable ({exc}); "
                         "pass --pg-url or set CONFHUB_BENCH_PG_URL") from exc
    try:
        sep = "&" if "?" in pg_url else "?"
        yield f"{pg_url}{sep}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


@contextlib.contextmanager
def open_hub(backend: str, pg_url: str, db_dir: str | None) -> Iterator[confhub.Hub]:
    """A hub on a fresh, empty database, closed and removed afterwards."""
    with open_url(backend, pg_url, db_dir) as url, confhub.open(url) as hub:
        yield hub


def value(i: int) -> dict[str, Any]:
    """A small, typical config document."""
    return {"model": f"model-{i}", "max_tokens": 8192 + i % 100, "temperature": 0.2,
            "enabled": True, "tags": ["a", "b"]}


def load_keys(cfg: Any, count: int, per_txn: int = 10_000, namespaces: int = 100,
              progress: bool = False) -> float:
    """Create ``count`` keys (``ns{j}/k{i}``) in transactions of ``per_txn``; returns seconds."""
    started = time.perf_counter()
    for start in range(0, count, per_txn):
        with cfg.transaction(reason="bench load") as tx:
            for i in range(start, min(start + per_txn, count)):
                tx.set(f"ns{i % namespaces}", f"k{i}", value(i))
        if progress and (start // per_txn) % 10 == 9:
            rate = (start + per_txn) / (time.perf_counter() - started)
            progress_console.print(f"  loaded {start + per_txn:,} keys ({rate:,.0f} keys/s)",
                                   style="dim")
    return time.perf_counter() - started


def time_calls(fn: Callable[[int], Any], count: int, warmup: int) -> list[float]:
    """Per-call latency of ``fn(i)`` for ``count`` calls after ``warmup`` untimed ones."""
    for i in range(warmup):
        fn(i)
    samples: list[float] = []
    for i in range(count):
        started = ns_now()
        fn(warmup + i)
        samples.append(ns_now() - started)
    return samples


# --------------------------------------------------------------------------- cached reads


def batched(call: Callable[[], Any], batches: int, size: int = 100) -> list[float]:
    """Per-call nanoseconds of ``batches`` windows of ``size`` back-to-back calls."""
    loop = range(size)
    samples = []
    for _ in range(batches):
        started = ns_now()
        for _ in loop:
            call()
        samples.append((ns_now() - started) / size)
    return samples


def batched_keys(get: Callable[[str, str], Any], keys: list[tuple[str, str]], batches: int,
                 size: int = 100) -> list[float]:
    """Like :func:`batched` for ``get(namespace, key)``, a different key for each batch."""
    loop = range(size)
    samples = []
    for b in range(batches):
        namespace, key = keys[b % len(keys)]
        started = ns_now()
        for _ in loop:
            get(namespace, key)
        samples.append((ns_now() - started) / size)
    return samples


def single_calls(call: Callable[[], Any], count: int) -> list[float]:
    samples: list[float] = []
    for _ in range(count):
        started = ns_now()
        call()
        samples.append(ns_now() - started)
    return samples


def bench_get(args: argparse.Namespace) -> list[Figure]:
    figures: list[Figure] = []
    batches = args.batches
    with open_hub(args.backend, args.pg_url, args.db_dir) as hub:
        cfg = hub.tenant()
        load_keys(cfg, args.keys)
        keys = [(f"ns{i % 100}", f"k{i}") for i in range(args.keys)]
        cfg.get(*keys[0])
        get = cfg.get
        empty = batched(lambda: None, batches)
        loop_only = figure("get", "empty loop", empty)
        figures.append(figure(
            "get", "get (cached)", batched_keys(get, keys, batches),
            note=f"batches of 100, {args.keys:,} keys; includes ~{loop_only.median:.0f} ns "
                 "of loop + call"))
        ns, key = keys[len(keys) // 2]
        single = single_calls(lambda: get(ns, key), batches * 10)
        floor = figure("get", "timer floor", single_calls(lambda: None, batches * 10))
        fig = figure("get", "get (cached), single calls", single,
                     note=f"each call timed alone; timer + lambda floor ~{floor.median:.0f} ns")
        figures.append(fig)
        resolve = cfg.resolve
        figures.append(figure("get", "resolve (base only)",
                              batched(lambda: resolve(ns, key), batches // 10),
                              note="a deep merge; not a dict lookup"))
        figures.extend(compare_others(batches))
        figures.append(figure("compare", "empty loop (floor)", empty,
                              note="for _ in range(100): f() with f doing nothing"))
    return figures


def compare_others(batches: int) -> list[Figure]:
    """The same batches over a dict, dynaconf's settings.get and a pydantic-settings field."""
    figures = []
    plain = {("ns1", "k1"): object()}
    figures.append(figure("compare", "dict.get (baseline)",
                          batched(lambda: plain.get(("ns1", "k1")), batches)))
    try:
        from dynaconf import Dynaconf  # type: ignore[import-untyped]
    except ImportError:
        console.print("dynaconf is not installed: pip install dynaconf (bench only)",
                      style="yellow")
    else:
        with tempfile.TemporaryDirectory() as empty_dir:
            settings = Dynaconf(root_path=empty_dir, settings_files=[], environments=False)
            settings.set("max_tokens", 8192)
            got = settings.get
            figures.append(figure("compare", "dynaconf settings.get",
                                  batched(lambda: got("max_tokens"), batches // 10)))
            figures.append(figure("compare", "dynaconf settings.ATTR",
                                  batched(lambda: settings.MAX_TOKENS, batches // 10)))
    try:
        from pydantic_settings import BaseSettings
    except ImportError:
        console.print("pydantic-settings is not installed: pip install pydantic-settings "
                      "(bench only)", style="yellow")
    else:
        class Settings(BaseSettings):
            max_tokens: int = 8192

        model = Settings()
        # A statement, not a lambda: the attribute load is what we compare.
        loop = range(100)
        samples = []
        for _ in range(batches):
            started = ns_now()
            for _ in loop:
                model.max_tokens  # noqa: B018
            samples.append((ns_now() - started) / 100)
        figures.append(figure("compare", "pydantic-settings attribute", samples,
                              note="inline attribute load, no call"))
        samples = []
        for _ in range(batches):
            started = ns_now()
            for _ in loop:
                pass
            samples.append((ns_now() - started) / 100)
        figures.append(figure("compare", "empty loop, no call", samples,
                              note="floor for the inline attribute"))
    return figures


# --------------------------------------------------------------------------- writes


def bench_write(args: argparse.Namespace) -> list[Figure]:
    n, warm = args.n, args.warmup
    figures = []
    with open_hub(args.backend, args.pg_url, args.db_dir) as hub:
        cfg = hub.tenant()
        load_keys(cfg, 1000)

        def put(i: int) -> None:
            cfg.set("models", f"model-{i % 100}", value(i), reason="bench", author="bench")

        figures.append(figure("write", "set", time_calls(put, n, warm),
                              note="one durable commit, 100 keys in turn"))

        versions: dict[str, int] = {}

        def cas(i: int) -> None:
            key = f"cas-{i % 100}"
            entry = cfg.set("models", key, value(i), expected_version=versions.get(key, 0))
            versions[key] = entry.version

        figures.append(figure("write", "set with expected_version", time_calls(cas, n, warm)))

        def patch(i: int) -> None:
            cfg.patch("models", f"model-{i % 100}", {"max_tokens": i})

        figures.append(figure("write", "patch (merge patch)", time_calls(patch, n, warm)))

        def txn(i: int) -> None:
            with cfg.transaction(reason="bench") as tx:
                for k in range(10):
                    tx.set("routing", f"tier-{k}", value(i + k))

        figures.append(figure("write", "transaction of 10 puts", time_calls(txn, n, warm)))

        def rollback(i: int) -> None:
            cfg.rollback("models", "model-0", to_version=1 + i % 5, reason="bench")

        figures.append(figure("write", "rollback", time_calls(rollback, n, warm),
                              note="to one of versions 1-5"))

        figures.append(concurrent_sets(cfg, max(n, 4000), threads=args.threads))
        figures.append(submitted_sets(cfg, max(n, 4000) * 5, wave=64))

        def delete(i: int) -> None:
            cfg.delete("features", f"k{i}")

        with cfg.transaction() as tx:
            for i in range(n + warm):
                tx.set("features", f"k{i}", value(i))
        figures.append(figure("write", "delete (tombstone)", time_calls(delete, n, warm)))
    return figures


def concurrent_sets(cfg: Any, n: int, threads: int) -> Figure:
    """``threads`` threads setting their own keys at once (SQLite shares one fsync between
    the writers queued behind a commit); per-call latency and total throughput."""
    import threading

    samples: list[float] = []
    per_thread = max(1, n // threads)
    start = threading.Barrier(threads + 1)

    def writer(t: int) -> None:
        mine = []
        start.wait()
        for i in range(per_thread):
            began = ns_now()
            cfg.set("threads", f"t{t}-{i % 10}", value(i))
            mine.append(ns_now() - began)
        samples.extend(mine)

    workers = [threading.Thread(target=writer, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    start.wait()
    began, cpu = time.perf_counter(), time.process_time()
    for w in workers:
        w.join()
    elapsed, cpu = time.perf_counter() - began, time.process_time() - cpu
    return figure("write", f"set, {threads} threads at once", samples,
                  note=f"{len(samples) / elapsed:,.0f} sets/s in total, "
                       f"CPU {cpu / len(samples) * 1e6:.0f} µs per set")


def submitted_sets(cfg: Any, n: int, wave: int) -> Figure:
    """What the server's PUT does: ``Tenant.submit_set`` of ``wave`` writes at once, then a
    wait for all of them (one or a few group commits), ``n`` writes in all. A sample is one
    wave; the note gives the rate and the process's CPU per set."""
    import threading

    counter = itertools.count()

    def one_wave() -> None:
        left = [wave]
        done = threading.Event()
        lock = threading.Lock()

        def settled(entry: Any, error: BaseException | None) -> None:
            if error is not None:
                raise error
            with lock:
                left[0] -= 1
                if left[0] == 0:
                    done.set()

        for _ in range(wave):
            cfg.submit_set("waves", f"k{next(counter):09d}", value(0), done=settled)
        done.wait()

    for _ in range(20):
        one_wave()
    waves = max(1, n // wave)
    samples: list[float] = []
    began, cpu = time.perf_counter(), time.process_time()
    for _ in range(waves):
        started = ns_now()
        one_wave()
        samples.append(ns_now() - started)
    elapsed, cpu = time.perf_counter() - began, time.process_time() - cpu
    return figure("write", f"submit_set, waves of {wave}", samples,
                  note=f"{waves * wave / elapsed:,.0f} sets/s in total, "
                       f"CPU {cpu / (waves * wave) * 1e6:.0f} µs per set")


# --------------------------------------------------------------------------- history


def bench_history(args: argparse.Namespace) -> list[Figure]:
    n, warm = args.n, args.warmup
    figures = []
    with open_hub(args.backend, args.pg_url, args.db_dir) as hub:
        cfg = hub.tenant()
        load_keys(cfg, 1000)
        started = time.perf_counter()
        for i in range(args.versions):  # one commit per version, as in real life
            cfg.set("models", "busy", value(i), reason=f"change {i}")
        loaded = time.perf_counter() - started
        console.print(f"wrote {args.versions:,} versions of models/busy in {loaded:.1f} s",
                      style="dim")
        figures.append(figure(
            "history", "history, first page of 50",
            time_calls(lambda i: cfg.history("models", "busy", limit=50), n, warm),
            note=f"key with {args.versions:,} versions"))
        middle = args.versions // 2
        figures.append(figure(
            "history", "history, page of 50 before the middle",
            time_calls(lambda i: cfg.history("models", "busy", limit=50, before=middle),
                       n, warm)))
        figures.append(figure(
            "history", "get an old version",
            time_calls(lambda i: cfg.get("models", "busy", version=1 + i % args.versions),
                       n, warm)))
        figures.append(figure(
            "history", "diff of two versions",
            time_calls(lambda i: cfg.diff("models", "busy", 1, args.versions), n, warm)))
    return figures


# --------------------------------------------------------------------------- scale


def scale_child(args: argparse.Namespace) -> dict[str, Any]:
    """One size in its own process: load it, then measure a cold open in a fresh process
    (``_open-child``), so that RSS is that of a process serving this size, not of the load."""
    result: dict[str, Any] = {"keys": args.size}
    with open_url(args.backend, args.pg_url, args.db_dir) as url:
        with confhub.open(url) as hub:
            result["load_s"] = load_keys(hub.tenant(), args.size,
                                         progress=args.size >= 100_000)
            result["storage_mb"] = hub.stats()["storage_size_mb"]
        command = [sys.executable, __file__, "_open-child", "--url", url, "--size",
                   str(args.size), "--n", str(args.n), "--warmup", str(args.warmup),
                   "--batches", str(args.batches)]
        done = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True)
        result.update(json.loads(done.stdout.strip().splitlines()[-1]))
    return result


def bench_bulk(args: argparse.Namespace) -> None:
    """Load ``--keys`` keys in transactions of 10,000 into a fresh database: keys/s (wall
    clock) and this process's CPU time per key (the figure that does not move with the
    neighbours' load)."""
    for size in (int(k) for k in str(args.keys).split(",")):
        with open_hub(args.backend, args.pg_url, args.db_dir) as hub:
            cpu = time.process_time()
            seconds = load_keys(hub.tenant(), size, progress=size >= 100_000)
            cpu = time.process_time() - cpu
        console.print(f"bulk load of {size:,} keys on {args.backend}, transactions of "
                      f"10,000: {size / seconds:,.0f} keys/s ({seconds:.1f} s), "
                      f"CPU {cpu / size * 1e6:.1f} µs per key, "
                      f"load average {os.getloadavg()[0]:.2f}")


def open_child(args: argparse.Namespace) -> dict[str, Any]:
    """A fresh process opening a loaded database: cold open + first read, RSS, get, set."""
    import random

    rng = random.Random(42)
    rss_before, _ = rss_mib()
    result: dict[str, Any] = {}
    sample = [rng.randrange(args.size) for _ in range(1000)]
    keys = [(f"ns{i % 100}", f"k{i}") for i in sample]
    started = time.perf_counter()
    with confhub.open(args.url) as hub:
        cfg = hub.tenant()
        cfg.get(*keys[0])
        result["first_read_s"] = time.perf_counter() - started  # open + first read
        get = cfg.get
        started = time.perf_counter()
        for key in keys:  # first reads: each namespace loads, each value is decoded once
            get(*key)
        result["first_reads_s"] = time.perf_counter() - started
        result["get"] = asdict(figure("scale", "get (cached)",
                                      batched_keys(get, keys, args.batches)))

        def put(i: int) -> None:
            j = sample[i % len(sample)]
            cfg.set(f"ns{j % 100}", f"k{j}", value(i))

        result["set"] = asdict(figure("scale", "set", time_calls(put, args.n, args.warmup)))
        rss_loaded, peak = rss_mib()  # after reading 1,000 keys of 100 namespaces
        result["rss_mib"] = rss_loaded
        result["rss_peak_mib"] = peak
        result["rss_delta_mib"] = rss_loaded - rss_before
        started = time.perf_counter()
        cfg.namespace_counts()  # every namespace in memory
        result["load_all_s"] = time.perf_counter() - started
        result["rss_all_mib"] = rss_mib()[0]
    return result


def bench_scale(args: argparse.Namespace) -> list[Figure]:
    results = []
    # The smallest size runs again at the end: on a shared machine the disk and the CPUs are
    # not equally busy for minutes on end, and two small runs show how much that moves.
    sizes = list(args.keys) + ([min(args.keys)] if len(args.keys) > 1 else [])
    for size in sizes:
        console.print(f"scale: {size:,} keys on {args.backend} …", style="dim")
        command = [sys.executable, __file__, "_scale-child", "--size", str(size),
                   "--backend", args.backend, "--pg-url", args.pg_url,
                   "--n", str(args.n), "--warmup", str(args.warmup),
                   "--batches", str(args.batches)]
        if args.db_dir:
            command += ["--db-dir", args.db_dir]
        done = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True)
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    table = Table(title=f"Scale on {args.backend}", title_justify="left")
    for name in ("keys", "load", "keys/s", "storage", "RSS", "RSS Δ", "peak RSS",
                 "get median", "get p99", "set median", "set p99", "open+first read",
                 "all loaded", "RSS all"):
        table.add_column(name, justify="right")
    for r in results:
        table.add_row(f"{r['keys']:,}", f"{r['load_s']:.1f} s",
                      f"{r['keys'] / r['load_s']:,.0f}", f"{r['storage_mb']:,.1f} MB",
                      f"{r['rss_mib']:,.0f} MiB", f"{r['rss_delta_mib']:,.0f} MiB",
                      f"{r['rss_peak_mib']:,.0f} MiB",
                      fmt(r["get"]["median"]), fmt(r["get"]["p99"]),
                      fmt(r["set"]["median"]), fmt(r["set"]["p99"]),
                      f"{r['first_read_s']:.2f} s", f"{r['load_all_s']:.2f} s",
                      f"{r['rss_all_mib']:,.0f} MiB")
    console.print(table)
    figures = []
    large = max(results, key=lambda r: r["keys"])
    smalls = [r for r in results if r["keys"] == min(args.keys)]
    for op in ("get", "set"):
        for stat in ("median", "p99"):
            ratios = [large[op][stat] / small[op][stat] for small in smalls]
            mark = "[green]met[/]" if max(ratios) <= 1.5 else "[red]missed[/]"
            shown = " and ".join(f"{ratio:.2f}×" for ratio in ratios)
            console.print(f"{op} {stat} at {large['keys']:,} keys / at {smalls[0]['keys']:,} "
                          f"keys (first and repeated run) = {shown} (target ≤ 1.5×: {mark})")
    for r in results:
        for op in ("get", "set"):
            fig = Figure(**r[op])
            fig.group, fig.op = "scale", f"{op} at {r['keys']:,} keys"
            fig.extra = {k: v for k, v in r.items() if k not in ("get", "set")}
            figures.append(fig)
    return figures


# --------------------------------------------------------------------------- main


def pg_round_trip(pg_url: str) -> str:
    """Median and p99 of ``SELECT 1`` on one connection: the floor of every statement."""
    import psycopg

    try:
        conn = psycopg.connect(pg_url, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        raise SystemExit(f"PostgreSQL at {pg_url} is not reachable ({exc}); "
                         "pass --pg-url or set CONFHUB_BENCH_PG_URL") from exc
    with conn:
        trips = single_calls(lambda: conn.execute("SELECT 1").fetchone(), 1000)
    trip = figure("calibration", "SELECT 1", trips)
    return f", PostgreSQL SELECT 1 round trip median {fmt(trip.median)} p99 {fmt(trip.p99)}"


def calibration(db_dir: str | None) -> str:
    """How fast this machine is right now: CPU (pure Python, json) and the disk's fsync."""
    import timeit

    loops = timeit.timeit("sum(range(1000))", number=2000) / 2000
    text = '{"model":"m","max_tokens":8192,"temperature":0.2,"enabled":true,"tags":["a","b"]}'
    parse = timeit.timeit(lambda: json.loads(text), number=20000) / 20000
    folder = tempfile.mkdtemp(prefix="confhub-fsync-", dir=db_dir)
    fd = os.open(os.path.join(folder, "probe"), os.O_WRONLY | os.O_CREAT, 0o600)
    syncs: list[float] = []
    try:
        for _ in range(200):
            started = ns_now()
            os.write(fd, b"x" * 4096)
            os.fdatasync(fd)
            syncs.append(ns_now() - started)
    finally:
        os.close(fd)
        shutil.rmtree(folder, ignore_errors=True)
    sync = figure("calibration", "fdatasync", syncs)
    load = os.getloadavg()
    return (f"calibration: sum(range(1000)) {loops * 1e6:.1f} µs, json.loads of 80 bytes "
            f"{parse * 1e6:.1f} µs, 4 KiB write+fdatasync median {fmt(sync.median)} "
            f"p99 {fmt(sync.p99)}, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


def machine() -> str:
    import platform
    import sqlite3

    now = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    return (f"{os.cpu_count()} CPUs, Python {platform.python_version()}, "
            f"SQLite {sqlite3.sqlite_version}, {now}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True,
                                metavar="{get,write,history,scale,bulk,all}")

    def common(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
        p.add_argument("--pg-url", default=PG_URL, help="PostgreSQL database (a schema is "
                       "created in it for the run and dropped afterwards)")
        p.add_argument("--db-dir", default=None, help="where SQLite files go (default: /tmp)")
        p.add_argument("--n", type=int, default=1000, help="timed calls per operation")
        p.add_argument("--warmup", type=int, default=100)
        p.add_argument("--batches", type=int, default=20_000,
                       help="batches of 100 cached gets")
        p.add_argument("--json", default=None, help="also write the figures to this file")
        return p

    common(sub.add_parser("get", help="cached get, compared with dynaconf and "
                          "pydantic-settings")).add_argument("--keys", type=int, default=1000)
    common(sub.add_parser("write", help="set, CAS set, patch, transaction of 10, rollback, "
                          "delete")).add_argument("--threads", type=int, default=8,
                                                  help="threads of the concurrent set row")
    common(sub.add_parser("history", help="history pages of a key with many versions")
           ).add_argument("--versions", type=int, default=10_000)
    scale = common(sub.add_parser("scale", help="get/set latency and RSS at several sizes"))
    scale.add_argument("--keys", default="1000,100000",
                       help="comma-separated sizes; each runs in its own process")
    every = common(sub.add_parser("all", help="get, write, history and scale"))
    every.add_argument("--keys", default="1000,100000", help="sizes for the scale part")
    every.add_argument("--versions", type=int, default=10_000)
    every.add_argument("--threads", type=int, default=8)
    common(sub.add_parser("bulk", help="load keys in transactions of 10,000")).add_argument(
        "--keys", default="100000", help="comma-separated sizes")
    child = common(sub.add_parser("_scale-child"))
    child.add_argument("--size", type=int, required=True)
    opener = common(sub.add_parser("_open-child"))
    opener.add_argument("--size", type=int, required=True)
    opener.add_argument("--url", required=True)
    args = parser.parse_args(argv)

    if args.command == "_scale-child":
        print(json.dumps(scale_child(args)))
        return
    if args.command == "_open-child":
        print(json.dumps(open_child(args)))
        return
    console.print(f"[bold]confhub store bench[/] · {args.command} · backend {args.backend} · "
                  f"{machine()}")
    calibrated = calibration(args.db_dir)
    if args.backend == "postgres":
        calibrated += pg_round_trip(args.pg_url)
    console.print(calibrated, style="dim")
    figures: list[Figure] = []
    if args.command == "bulk":
        bench_bulk(args)
        return
    if args.command in ("get", "all"):
        keys = args.keys if args.command == "get" else 1000  # all: --keys is for scale
        get_args = argparse.Namespace(**{**vars(args), "keys": keys})
        part = bench_get(get_args)
        print_figures(f"Cached reads ({args.backend})", part, args.backend)
        figures += part
    if args.command in ("write", "all"):
        part = bench_write(args)
        print_figures(f"Writes ({args.backend}, durable)", part, args.backend)
        figures += part
    if args.command in ("history", "all"):
        part = bench_history(args)
        print_figures(f"History ({args.backend})", part, args.backend)
        figures += part
    if args.command in ("scale", "all"):
        args.keys = [int(k) for k in str(args.keys).split(",")]
        figures += bench_scale(args)
    if args.command == "all":
        summary = [f for f in figures if f.op in TARGETS and f.group != "compare"]
        print_figures(f"Summary against the targets ({args.backend})", summary, args.backend)
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"command": sys.argv, "backend": args.backend, "machine": machine(),
                       "calibration": calibrated,
                       "figures": [asdict(f) for f in figures]}, out, indent=2)


if __name__ == "__main__":
    main()
