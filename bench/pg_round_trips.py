"""Network round trips and latency of confhub writes on PostgreSQL (issue 17).

A round trip is counted from libpq's own protocol trace (``PQtrace``) of every connection the
store opens: each time the client stops sending and waits for the server's answer (a run of
frontend messages followed by a run of backend messages) is one round trip. Then each
operation is timed, one call at a time, on loopback.

Usage::

    python bench/pg_round_trips.py                 # 1,000 timed calls per operation
    python bench/pg_round_trips.py --n 300 --pg-url postgresql://postgres@127.0.0.1/test

Nothing is asserted; it prints a table.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from typing import Any

import psycopg
import psycopg_pool

PG_URL = os.environ.get("CONFHUB_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
VALUE = {"model": "claude-opus", "max_tokens": 8192, "temperature": 0.2, "enabled": True,
         "tags": ["a", "b"]}


class _Trace:
    """Every pool connection writes libpq's protocol trace to one file (libpq buffers it;
    ``PQuntrace`` flushes, so connections are untraced and traced again around a count)."""

    def __init__(self) -> None:
        self.file = tempfile.NamedTemporaryFile("w+", prefix="pgtrace-", delete=False)  # noqa: SIM115
        self.conns: list[Any] = []
        trace, conns = self.file, self.conns
        original = psycopg_pool.ConnectionPool

        def configure(conn: Any) -> None:
            conn.pgconn.trace(trace.fileno())
            conns.append(conn)

        class Traced(original):  # type: ignore[misc,valid-type]
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                kwargs["configure"] = configure
                super().__init__(*args, **kwargs)

        psycopg_pool.ConnectionPool = Traced  # type: ignore[misc]

    def _flush(self) -> None:
        for conn in self.conns:
            if not conn.closed:
                conn.pgconn.untrace()
                conn.pgconn.trace(self.file.fileno())

    def round_trips(self, fn: Callable[[], object]) -> int:
        self._flush()
        start = os.path.getsize(self.file.name)
        fn()
        self._flush()
        with open(self.file.name) as f:
            f.seek(start)
            sides = [line.split("\t")[1] for line in f.read().splitlines() if "\t" in line]
        return sum(1 for a, b in zip(sides, sides[1:], strict=False) if a == "F" and b == "B")


def timed(fn: Callable[[int], object], n: int, warmup: int) -> tuple[float, float, float]:
    """Median and p99 in ms, and this process's CPU per call in µs (the client's share)."""
    for i in range(warmup):
        fn(i)
    samples = []
    cpu = time.process_time()
    for i in range(n):
        started = time.perf_counter_ns()
        fn(i)
        samples.append(time.perf_counter_ns() - started)
    cpu = time.process_time() - cpu
    samples.sort()
    return (statistics.median(samples) / 1e6, samples[int(len(samples) * 0.99)] / 1e6,
            cpu / n * 1e6)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pg-url", default=PG_URL)
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=100)
    args = parser.parse_args()
    trace = _Trace()
    import confhub  # after the pool is traced

    schema = f"bench_rt_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(args.pg_url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
        select1 = timed(lambda i: conn.execute("SELECT 1").fetchone(), args.n, args.warmup)[:2]
    sep = "&" if "?" in args.pg_url else "?"
    rows = []
    try:
        with confhub.open(f"{args.pg_url}{sep}options=-csearch_path%3D{schema}") as hub:
            cfg = hub.tenant()
            cfg.set("models", "warm", VALUE)
            versions: dict[str, int] = {}

            def put(i: int) -> None:
                cfg.set("models", f"k{i % 100}", VALUE)

            def cas(i: int) -> None:
                key = f"cas-{i % 100}"
                versions[key] = cfg.set("models", key, VALUE,
                                        expected_version=versions.get(key, 0)).version

            def txn(i: int) -> None:
                with cfg.transaction() as tx:
                    for k in range(10):
                        tx.set("routing", f"tier-{k}", {**VALUE, "n": i})

            def patch(i: int) -> None:
                cfg.patch("models", "warm", {"max_tokens": i})

            for name, fn in (("set", put), ("set with expected_version", cas),
                             ("transaction of 10 puts", txn), ("patch", patch)):
                median, p99, cpu = timed(fn, args.n, args.warmup)
                # Counted once warm: psycopg prepares a statement on its fifth execution,
                # and that one call pays a round trip more.
                trips = trace.round_trips(lambda fn=fn: fn(args.n))  # type: ignore[misc]
                rows.append((name, trips, median, p99, cpu))
    finally:
        with psycopg.connect(args.pg_url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")
        os.unlink(trace.file.name)
    print(f"PostgreSQL round trips and latency; {args.n} calls after {args.warmup}; "
          f"SELECT 1 median {select1[0] * 1000:.0f} µs / p99 {select1[1] * 1000:.0f} µs; "
          f"load average {os.getloadavg()[0]:.2f}; "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(f"{'operation':28} {'round trips':>11} {'median ms':>10} {'p99 ms':>8} "
          f"{'client CPU µs':>14}")
    for name, trips, median, p99, cpu in rows:
        print(f"{name:28} {trips:>11} {median:>10.2f} {p99:>8.2f} {cpu:>14.0f}")


if __name__ == "__main__":
    main()
