"""Watch latency and cost: confhub's SSE stream against etcd's watch, in one run.

What it measures (docs/benchmarks.md reports these figures):

* ``sse``      write-to-event latency with 1 watcher: the writer puts ``{"t": <wall clock>}``
               and the watcher subtracts ``t`` from the arrival time (same machine, same
               clock); 500 events, one every 5 ms; confhub on granian, 1 worker, SQLite;
* ``etcd``     the same through etcd's JSON gateway (``/v3/kv/put`` and the ``/v3/watch``
               stream), Debian's ``etcd-server``, same client code;
* ``fanout``   the same with 1,000 concurrent watchers on one server (watchers in separate
               client processes reading raw sockets in one ``epoll`` loop, so the client's
               own CPU stays small; ``--client asyncio`` reads them with asyncio streams, as
               before the eighth pass), plus the server's memory per idle watcher (worker RSS
               before/after connecting) and the server's and the clients' CPU per event;
* ``cross``    cross-instance latency: watcher on server A, writes through server B, both on
               one PostgreSQL (and, for comparison, both on one SQLite file);
* ``live``     ``live(...).value.field`` attribute access next to a plain pydantic model's.

Usage::

    python bench/watch.py                    # everything
    python bench/watch.py --only sse,etcd --events 500

Nothing is asserted; the script prints a table (``--json`` for the raw numbers).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import multiprocessing
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import timeit
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

import confhub
from confhub.server.testing import free_port, live_server

PG_DSN = os.environ.get("CONFHUB_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")


def summary(latencies_s: list[float]) -> dict[str, float]:
    ms = sorted(x * 1000 for x in latencies_s)
    if not ms:
        return {"n": 0}
    return {"n": len(ms), "p50_ms": round(statistics.median(ms), 3),
            "p99_ms": round(ms[min(len(ms) - 1, int(len(ms) * 0.99))], 3),
            "max_ms": round(ms[-1], 3)}


# --------------------------------------------------------------------------- one watcher


def _watch_lines(url: str, method: str, path: str, body: Any, parse: Any,
                 out: list[float], ready: threading.Event, stop: threading.Event) -> None:
    """Read a streaming answer line by line; ``parse(line)`` gives the write's wall time."""
    with httpx.Client(base_url=url, timeout=None) as client, \
            client.stream(method, path, json=body) as response:
        ready.set()
        for line in response.iter_lines():
            now = time.time()
            sent = parse(line)
            if sent is not None:
                out.append(now - sent)
            if stop.is_set():
                return


def _confhub_time(line: str) -> float | None:
    if not line.startswith("data: {\"revision\":") or '"changes"' not in line:
        return None
    change = json.loads(line[6:])["changes"][0]
    value = change["value"]
    return float(value["t"]) if isinstance(value, dict) and "t" in value else None


def _etcd_time(line: str) -> float | None:
    if not line.strip():
        return None
    result = json.loads(line).get("result", {})
    for event in result.get("events", []):
        value = json.loads(base64.b64decode(event["kv"]["value"]))
        return float(value["t"])
    return None


def one_watcher(url: str, write: Any, watch_path: str, watch_method: str, watch_body: Any,
                parse: Any, events: int, gap: float,
                write_url: str | None = None) -> dict[str, float]:
    """Latencies seen by one streaming watcher on ``url`` of writes sent to ``write_url``
    (default: the same server)."""
    out: list[float] = []
    ready, stop = threading.Event(), threading.Event()
    reader = threading.Thread(target=_watch_lines, daemon=True,
                              args=(url, watch_method, watch_path, watch_body, parse, out,
                                    ready, stop))
    reader.start()
    ready.wait(10)
    time.sleep(0.5)
    writes: list[float] = []
    with httpx.Client(base_url=write_url or url, timeout=10) as client:
        for i in range(events):
            started = time.time()
            write(client, i)
            writes.append(time.time() - started)
            time.sleep(gap)
    deadline = time.monotonic() + 10
    while len(out) < events and time.monotonic() < deadline:
        time.sleep(0.01)
    stop.set()
    # The write's own round trip, for comparison: the event usually arrives before it ends.
    put = summary(writes)
    return {**summary(out), "write_p50_ms": put["p50_ms"], "write_p99_ms": put["p99_ms"]}


def confhub_put(client: httpx.Client, i: int) -> None:
    client.put(f"/config/bench/k{i % 10}", json={"t": time.time()}).raise_for_status()


def bench_sse(events: int, gap: float, tmp: Path) -> dict[str, Any]:
    with live_server(tmp / "sse.db") as url:
        return one_watcher(url, confhub_put, "/v1/tenants/default/watch", "GET", None,
                           _confhub_time, events, gap)


@contextmanager
def etcd(tmp: Path) -> Iterator[str]:
    if shutil.which("etcd") is None:
        raise SystemExit("etcd is not installed: apt-get install -y etcd-server")
    port, peer = free_port(), free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = ["etcd", "--data-dir", str(tmp / "etcd"), "--listen-client-urls", url,
           "--advertise-client-urls", url, "--listen-peer-urls", f"http://127.0.0.1:{peer}",
           "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
           "--initial-cluster", f"default=http://127.0.0.1:{peer}", "--log-level", "error"]
    with (tmp / "etcd.log").open("wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        try:
            for _ in range(200):
                try:
                    if httpx.get(url + "/health", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.05)
            yield url
        finally:
            proc.terminate()
            proc.wait(10)


def bench_etcd(events: int, gap: float, tmp: Path) -> dict[str, Any]:
    key = base64.b64encode(b"bench/k").decode()

    def put(client: httpx.Client, i: int) -> None:
        value = base64.b64encode(json.dumps({"t": time.time()}).encode()).decode()
        client.post("/v3/kv/put", json={"key": key, "value": value}).raise_for_status()

    with etcd(tmp) as url:
        return one_watcher(url, put, "/v3/watch", "POST", {"create_request": {"key": key}},
                           _etcd_time, events, gap)


# --------------------------------------------------------------------------- many watchers


async def _raw_watchers(host: str, port: int, path: str, count: int, until: float,
                        results: Any) -> None:
    """``count`` SSE connections on raw sockets; report (arrival - t) of every event."""
    latencies: list[float] = []
    pattern = re.compile(rb'"t":([0-9.]+)')

    async def one() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n\r\n"
                     .encode())
        await writer.drain()
        # One deadline for the whole read loop (asyncio.wait_for per read would make a task
        # per read: client CPU that would show up as latency).
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(until - time.time()):
                while chunk := await reader.read(65536):
                    now = time.time()
                    latencies.extend(now - float(m) for m in pattern.findall(chunk))
        writer.close()

    await asyncio.gather(*(one() for _ in range(count)))
    results.put(latencies)


def _polled_watchers(host: str, port: int, path: str, count: int, until: float,
                     results: Any) -> None:
    """The same watchers read by one ``epoll`` loop on non-blocking sockets, without
    asyncio's streams and tasks: a third of the client CPU per delivered event. The clients
    share the server's two cores, so their own CPU shows up in the latency they measure."""
    import select

    latencies: list[float] = []
    pattern = re.compile(rb'"t":([0-9.]+)')
    request = (f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n\r\n"
               .encode())
    poller = select.epoll()
    sockets = []
    for _ in range(count):
        sock = socket.create_connection((host, port))
        sock.sendall(request)
        sock.setblocking(False)
        poller.register(sock.fileno(), select.EPOLLIN)
        sockets.append(sock)
    read, now_of, found = os.read, time.time, pattern.findall
    while (left := until - time.time()) > 0:
        for fd, _ in poller.poll(min(left, 1.0)):
            try:
                chunk = read(fd, 65536)
            except BlockingIOError:
                continue
            now = now_of()
            if not chunk:
                poller.unregister(fd)
                continue
            for sent in found(chunk):
                latencies.append(now - float(sent))
    poller.close()
    for sock in sockets:
        sock.close()
    results.put(latencies)


def _watcher_process(host: str, port: int, path: str, count: int, until: float,
                     results: Any, client: str = "epoll") -> None:
    if client == "epoll":
        _polled_watchers(host, port, path, count, until, results)
    else:
        asyncio.run(_raw_watchers(host, port, path, count, until, results))
    import resource

    used = resource.getrusage(resource.RUSAGE_SELF)
    results.put(used.ru_utime + used.ru_stime)


def _worker_pids(server_url: str) -> set[int]:
    """The processes holding the server's listening socket: the granian worker (a child of
    the process ``live_server`` started)."""
    port = int(server_url.rsplit(":", 1)[1])
    out = subprocess.run(["ss", "-Htlnp", f"sport = :{port}"], capture_output=True,
                         text=True).stdout
    return {int(p) for p in re.findall(r"pid=(\d+)", out)}


def _worker_rss_kib(server_url: str) -> int:
    """RSS of the server's worker process."""
    total = 0
    for pid in _worker_pids(server_url):
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    total = max(total, int(line.split()[1]))
    return total


def _cpu_seconds(pids: set[int]) -> float:
    """User + system CPU the processes ``pids`` (and their threads) have used so far. CPU per
    delivered event moves much less than latency with the neighbours' load on a shared
    machine."""
    ticks = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def bench_fanout(watchers: int, events: int, gap: float, procs: int,
                 tmp: Path, client: str = "epoll") -> dict[str, Any]:
    with live_server(tmp / "fanout.db") as url:
        host, port = "127.0.0.1", int(url.rsplit(":", 1)[1])
        httpx.put(f"{url}/config/bench/warm", json=0)
        rss_before = _worker_rss_kib(url)
        until = time.time() + 20 + events * gap + watchers / 100
        results: Any = multiprocessing.Queue()
        workers = [multiprocessing.Process(
            target=_watcher_process,
            args=(host, port, "/v1/tenants/default/watch", watchers // procs, until, results,
                  client))
            for _ in range(procs)]
        for w in workers:
            w.start()
        _wait_for_connections(url, watchers, rss_before)
        time.sleep(2)
        rss_after = _worker_rss_kib(url)
        pids = _worker_pids(url)
        cpu_before = _cpu_seconds(pids)
        with httpx.Client(base_url=url, timeout=10) as client:
            for i in range(events):
                confhub_put(client, i)
                time.sleep(gap)
        time.sleep(1)  # the last revision's deliveries
        cpu = _cpu_seconds(pids) - cpu_before
        latencies: list[float] = []
        client_cpu = 0.0
        for _ in range(2 * len(workers)):
            got = results.get(timeout=until - time.time() + 30)
            if isinstance(got, list):
                latencies.extend(got)
            else:
                client_cpu += got
        for w in workers:
            w.join(30)
    out: dict[str, Any] = summary(latencies)
    out["expected"] = watchers * events
    out["rss_before_kib"], out["rss_after_kib"] = rss_before, rss_after
    out["kib_per_idle_watcher"] = round((rss_after - rss_before) / watchers, 1)
    # Server CPU (the worker: its PUTs included) per event delivered to a watcher.
    out["server_cpu_s"] = round(cpu, 2)
    out["server_cpu_us_per_event"] = round(cpu / max(len(latencies), 1) * 1e6, 1)
    # The watcher processes' whole CPU (connecting and idling included), per delivered event.
    out["client_cpu_us_per_event"] = round(client_cpu / max(len(latencies), 1) * 1e6, 1)
    return out


def _wait_for_connections(url: str, count: int, _rss: int) -> None:
    port = url.rsplit(":", 1)[1]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        out = subprocess.run(["ss", "-Htn", "state", "established", f"sport = :{port}"],
                             capture_output=True, text=True).stdout
        if len(out.splitlines()) >= count:
            return
        time.sleep(0.2)
    raise SystemExit(f"only some of {count} watchers connected")


# --------------------------------------------------------------------------- two instances


def bench_cross(storage: str, events: int, gap: float, tmp: Path) -> dict[str, Any]:
    schema = None
    if storage == "postgres":
        import psycopg

        schema = f"bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
        db = f"{PG_DSN}{'&' if '?' in PG_DSN else '?'}options=-csearch_path%3D{schema}"
    else:
        db = str(tmp / "cross.db")
    try:
        with live_server(db) as watch_url, live_server(db) as write_url:
            return one_watcher(watch_url, confhub_put, "/v1/tenants/default/watch", "GET",
                               None, _confhub_time, events, gap, write_url=write_url)
    finally:
        if schema is not None:
            import psycopg

            with psycopg.connect(PG_DSN, autocommit=True) as conn:
                conn.execute(f"DROP SCHEMA {schema} CASCADE")


# --------------------------------------------------------------------------- live value


def bench_live(tmp: Path) -> dict[str, Any]:
    import pydantic

    class Settings(pydantic.BaseModel):
        max_tokens: int
        temperature: float

    hub = confhub.open(str(tmp / "live.db"))
    cfg = hub.tenant()
    cfg.set("models", "opus", {"max_tokens": 8192, "temperature": 0.2})
    live = cfg.live("models", "opus", model=Settings)
    plain = Settings(max_tokens=8192, temperature=0.2)
    n = 2_000_000
    env = {"live": live, "plain": plain}
    best_live = min(timeit.repeat("live.value.max_tokens", globals=env, number=n, repeat=5))
    best_plain = min(timeit.repeat("plain.max_tokens", globals=env, number=n, repeat=5))
    empty = min(timeit.repeat("pass", number=n, repeat=5))
    live.close()
    hub.close()
    return {"live_value_field_ns": round((best_live - empty) / n * 1e9, 1),
            "pydantic_field_ns": round((best_plain - empty) / n * 1e9, 1)}


# --------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", default="sse,etcd,fanout,cross,live")
    parser.add_argument("--events", type=int, default=500)
    parser.add_argument("--gap", type=float, default=0.005, help="seconds between writes")
    parser.add_argument("--watchers", type=int, default=1000)
    parser.add_argument("--fanout-events", type=int, default=100)
    parser.add_argument("--fanout-gap", type=float, default=0.05)
    parser.add_argument("--procs", type=int, default=2, help="watcher client processes")
    parser.add_argument("--client", choices=("epoll", "asyncio"), default="epoll",
                        help="how the fan-out's watcher processes read (asyncio: the "
                             "passes before the eighth)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    only = set(args.only.split(","))
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        if "etcd" in only:
            results["etcd watch (gateway), 1 watcher"] = bench_etcd(args.events, args.gap, tmp)
        if "sse" in only:
            results["confhub SSE, 1 watcher"] = bench_sse(args.events, args.gap, tmp)
        if "fanout" in only:
            results[f"confhub SSE, {args.watchers} watchers"] = bench_fanout(
                args.watchers, args.fanout_events, args.fanout_gap, args.procs, tmp,
                args.client)
        if "cross" in only:
            results["cross-instance, PostgreSQL"] = bench_cross("postgres", args.events,
                                                                args.gap, tmp)
            results["cross-instance, SQLite file"] = bench_cross("sqlite", args.events,
                                                                 args.gap, tmp)
        if "live" in only:
            results["live attribute"] = bench_live(tmp)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"machine: {os.cpu_count()} cores, {socket.gethostname()}, Python "
          f"{sys.version.split()[0]}, load {os.getloadavg()[0]:.2f}")
    for name, figures in results.items():
        print(f"{name:40} " + "  ".join(f"{k}={v}" for k, v in figures.items()))


if __name__ == "__main__":
    main()
