"""``confhub bench``: concurrent readers and writers for a duration, and a watch fan-out.

The engine drives any target given as two factories (one reader and one writer callable per
thread), so the same load runs against confhub — embedded or over HTTP — and, in
``bench/ops.py``, against etcd's gateway. What it reports (the ``--json`` shape)::

    {"target": "http://127.0.0.1:8011", "backend": "http", "readers": 100, "writers": 10,
     "duration_s": 60.0, "keys": 100,
     "reads":  {"count", "qps", "p50_ms", "p95_ms", "p99_ms", "max_ms", "errors"},
     "writes": {... the same ...},
     "errors": 0,
     "fanout": null | {"watchers", "events", "p50_ms", "p95_ms", "p99_ms", "max_ms", "missed"},
     "check":  null | {"profile", "verdict": "PASS" | "FAIL", "thresholds", "failures"}}

``fanout`` times, for each published write, how long until the *last* of N watchers had it.
``check`` works like ``etcdctl check perf``: a profile fixes the load (readers, writers, a
paced write rate) and the verdict is PASS when the target kept up — write throughput at least
90 % of the rate asked, read throughput and p99 latencies within the profile's limits, and no
errors.

Worked example of the verdict (profile ``small``: 50 readers, 5 writers pacing 100 writes/s,
reads >= 1,000/s, p99 <= 100 ms)::

    writes 97.8/s   >= 90.0   ok
    reads  4,210/s  >= 1,000  ok
    p99    read 12 ms, write 31 ms <= 100 ms   ok
    errors 0                   ok          -> PASS
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["PROFILES", "Profile", "Report", "run_fanout", "run_load", "summarise", "verdict"]

Call = Callable[[int], object]  # one operation; the argument is the thread's call counter
Factory = Callable[[int], Call]  # thread index -> that thread's operation


@dataclass(frozen=True)
class Profile:
    """A ``--check`` profile: the load it drives and what PASS requires."""

    readers: int
    writers: int
    write_rate: float  # writes per second asked for, across all writers
    min_read_qps: float
    max_p99_ms: float
    duration: float = 30.0


PROFILES: dict[str, Profile] = {
    "small": Profile(readers=50, writers=5, write_rate=100, min_read_qps=1000, max_p99_ms=100),
    "medium": Profile(readers=100, writers=10, write_rate=300, min_read_qps=2000,
                      max_p99_ms=250),
    "large": Profile(readers=200, writers=20, write_rate=1000, min_read_qps=4000,
                     max_p99_ms=500),
}


@dataclass
class Report:
    target: str
    backend: str
    readers: int
    writers: int
    duration_s: float
    keys: int
    reads: dict[str, float]
    writes: dict[str, float]
    errors: int
    fanout: dict[str, float] | None = None
    check: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _percentile(ordered: Sequence[float], p: float) -> float:
    if not ordered:
        return 0.0
    index = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))
    return ordered[index]


def summarise(latencies: Sequence[float], errors: int, seconds: float) -> dict[str, float]:
    """count, qps, p50/p95/p99/max in milliseconds, errors (latencies in seconds)."""
    ordered = sorted(latencies)
    ms = 1000.0
    return {"count": len(ordered), "qps": round(len(ordered) / seconds, 1) if seconds else 0.0,
            "p50_ms": round(_percentile(ordered, 50) * ms, 4),
            "p95_ms": round(_percentile(ordered, 95) * ms, 4),
            "p99_ms": round(_percentile(ordered, 99) * ms, 4),
            "max_ms": round((ordered[-1] if ordered else 0.0) * ms, 4), "errors": errors}


class _Worker(threading.Thread):
    """Calls its operation until ``stop``; records each call's latency, counts errors.
    With ``pace`` (seconds per call) it keeps that rate instead of going flat out."""

    def __init__(self, call: Call, stop: threading.Event, pace: float | None) -> None:
        super().__init__(daemon=True)
        self.call = call
        self.stop = stop
        self.pace = pace
        self.latencies: list[float] = []
        self.errors = 0
        self.first_error: str | None = None

    def run(self) -> None:
        i = 0
        next_at = time.perf_counter()
        clock = time.perf_counter
        while not self.stop.is_set():
            started = clock()
            try:
                self.call(i)
            except Exception as exc:  # noqa: BLE001 - every failure is a counted error
                self.errors += 1
                if self.first_error is None:
                    self.first_error = f"{type(exc).__name__}: {exc}"
            else:
                self.latencies.append(clock() - started)
            i += 1
            if self.pace is not None:
                next_at += self.pace
                delay = next_at - clock()
                if delay > 0:
                    self.stop.wait(delay)
            else:
                # Hand the GIL over: an in-process read never blocks, and flat-out readers
                # would otherwise starve every writer thread of this process.
                time.sleep(0)


def run_load(reader: Factory, writer: Factory, *, readers: int, writers: int,
             duration: float, write_rate: float | None = None,
             progress: Callable[[float, int, int], None] | None = None
             ) -> tuple[dict[str, float], dict[str, float], list[str]]:
    """Run ``readers`` + ``writers`` threads for ``duration`` seconds; returns the read and
    write summaries and the first error message of each kind (to show the user why)."""
    stop = threading.Event()
    pace = writers / write_rate if write_rate else None
    read_workers = [_Worker(reader(n), stop, None) for n in range(readers)]
    write_workers = [_Worker(writer(n), stop, pace) for n in range(writers)]
    started = time.perf_counter()
    for worker in (*read_workers, *write_workers):
        worker.start()
    end = started + duration
    while (now := time.perf_counter()) < end:
        time.sleep(min(0.5, end - now))
        if progress is not None:
            progress(time.perf_counter() - started,
                     sum(len(w.latencies) for w in read_workers),
                     sum(len(w.latencies) for w in write_workers))
    stop.set()
    elapsed = time.perf_counter() - started
    for worker in (*read_workers, *write_workers):
        worker.join(timeout=30)
    messages = sorted({w.first_error for w in (*read_workers, *write_workers)
                       if w.first_error})

    def total(workers: list[_Worker]) -> dict[str, float]:
        return summarise([x for w in workers for x in w.latencies],
                         sum(w.errors for w in workers), elapsed)

    return total(read_workers), total(write_workers), messages


def run_fanout(publish: Callable[[int], None], subscribe: Callable[[Callable[[int], None]],
                                                                   Callable[[], None]],
               *, watchers: int, events: int, gap: float = 0.02, timeout: float = 10.0
               ) -> dict[str, float]:
    """Start ``watchers`` subscriptions, publish ``events`` (event i is ``publish(i)``), and
    time each event until its last watcher had it.

    ``subscribe(on_event)`` starts one watcher that calls ``on_event(i)`` for each event i it
    receives, and returns its stop function.
    """
    received: list[dict[int, float]] = [{} for _ in range(watchers)]
    stops = []
    for n in range(watchers):
        def on_event(i: int, seen: dict[int, float] = received[n]) -> None:
            seen.setdefault(i, time.perf_counter())
        stops.append(subscribe(on_event))
    try:
        # A warm-up event (-1) every watcher must have before timing: connections are open.
        publish(-1)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(-1 not in seen for seen in received):
            time.sleep(0.01)
        sent: dict[int, float] = {}
        for i in range(events):
            sent[i] = time.perf_counter()
            publish(i)
            time.sleep(gap)
        deadline = time.monotonic() + timeout
        while (time.monotonic() < deadline
               and any(len(seen) < events for seen in received)):
            time.sleep(0.02)
    finally:
        for stop in stops:
            stop()
    spans = []
    missed = 0
    for i in range(events):
        times = [seen.get(i) for seen in received]
        missed += sum(1 for t in times if t is None)
        got = [t for t in times if t is not None]
        if len(got) == watchers:
            spans.append(max(got) - sent[i])
    figures = summarise(spans, 0, 1.0)
    return {"watchers": watchers, "events": events,
            **{k: v for k, v in figures.items() if k.endswith("_ms")}, "missed": missed}


def verdict(profile_name: str, profile: Profile, reads: dict[str, float],
            writes: dict[str, float]) -> dict[str, Any]:
    """PASS or FAIL against ``profile`` (see the module docstring), with every failure named."""
    failures = []
    floor = 0.9 * profile.write_rate
    if writes["qps"] < floor:
        failures.append(f"write throughput {writes['qps']}/s is below {floor:g}/s "
                        f"(90% of the {profile.write_rate:g}/s asked)")
    if reads["qps"] < profile.min_read_qps:
        failures.append(f"read throughput {reads['qps']}/s is below "
                        f"{profile.min_read_qps:g}/s")
    for name, figures in (("read", reads), ("write", writes)):
        if figures["p99_ms"] > profile.max_p99_ms:
            failures.append(f"{name} p99 {figures['p99_ms']} ms is above "
                            f"{profile.max_p99_ms:g} ms")
    errors = int(reads["errors"] + writes["errors"])
    if errors:
        failures.append(f"{errors} requests failed")
    return {"profile": profile_name, "verdict": "FAIL" if failures else "PASS",
            "thresholds": {"write_qps_min": floor, "read_qps_min": profile.min_read_qps,
                           "p99_ms_max": profile.max_p99_ms, "errors_max": 0},
            "failures": failures}
