"""Durable HTTP PUT throughput of confhub against etcd, in one run, with wrk (issue 17).

Every PUT writes a key nobody wrote before (distinct keys), with the same ~300-byte JSON
document, and every acknowledged write is durable on both sides (confhub: SQLite WAL with
``synchronous=FULL`` or PostgreSQL committed; etcd: its WAL fsynced). For each connection count
the two servers take turns under the same ``wrk -t2``, so a figure is always next to etcd's
from the same minute of this shared machine.

Usage (needs ``wrk`` and ``etcd``: ``apt-get install -y wrk etcd-server``)::

    python bench/http_write.py                              # 1,16,64,256 connections, 10 s each
    python bench/http_write.py --connections 64 --duration 5 --workers 1
    python bench/http_write.py --backend postgres           # confhub on PostgreSQL

The keys are ``bench/t<thread>-<9 digits>``; etcd's JSON gateway wants them in base64, which
wrk's Lua builds from a table of the 1,000 three-digit groups (the prefix is 9 bytes, so the
base64 of the whole key is the concatenation of the parts'). Nothing is asserted; the script
prints a table (``--json`` for the raw numbers).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from http_bench import free_port, process, wait_http  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def group_cpu_s(pgid: int) -> float:
    """CPU seconds (user + system) used so far by every process of a process group."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # pgrp
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICK


def measured(pgid: int, url: str, connections: int, duration: int, script: str,
             tmp: Path) -> dict[str, Any]:
    """wrk against a server, plus the server's CPU time per request."""
    before = group_cpu_s(pgid)
    result = wrk(url, connections, duration, script, tmp)
    cpu = group_cpu_s(pgid) - before
    requests = result["rps"] * duration
    result["cpu_us"] = round(cpu / requests * 1e6) if requests else None
    return result


def wrk(url: str, connections: int, duration: int, script: str, tmp: Path) -> dict[str, Any]:
    """One wrk run (2 threads, or 1 for a single connection); requests/s, p99, errors."""
    path = tmp / f"script{abs(hash(script))}.lua"
    path.write_text(script)
    cmd = ["wrk", f"-t{min(2, connections)}", f"-c{connections}", f"-d{duration}s",
           "--latency", "-s", str(path), url]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", out)
    p99_ms = (float(p99.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
              if p99 else None)
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return {"rps": round(rps), "p99_ms": p99_ms, "non_2xx": int(bad.group(1)) if bad else 0}


VALUE = json.dumps({
    "model": "claude-opus", "max_tokens": 8192, "temperature": 0.2, "top_p": 0.95,
    "enabled": True, "owner": "platform-team", "region": "eu-west-1",
    "tags": ["prod", "chat", "batch", "eval"],
    "limits": {"rpm": 6000, "tpm": 2000000, "burst": 120},
    "fallback": ["claude-sonnet", "claude-haiku"],
    "notes": "chat tier routing defaults, reviewed weekly",
}, separators=(",", ":"))
assert 280 <= len(VALUE) <= 320, len(VALUE)

_LUA_HEAD = """
local started = 0
function setup(thread)
  thread:set("tid", started)
  started = started + 1
end
counter = 0
"""


def _groups_b64() -> str:
    return ",".join(f'"{base64.b64encode(f"{i:03d}".encode()).decode()}"' for i in range(1000))


def confhub_lua(path_prefix: str) -> str:
    return _LUA_HEAD + f"""
body = '{VALUE}'
headers = {{["Content-Type"] = "application/json"}}
request = function()
  counter = counter + 1
  return wrk.format("PUT", string.format("{path_prefix}/t%d-%09d", tid, counter), headers, body)
end
"""


def etcd_script() -> str:
    """wrk Lua for etcd: each wrk thread gets the base64 of its 9-byte prefix ``bench/tN-``
    (N < 10), to which the base64 of three 3-digit groups of the counter is appended."""
    value = base64.b64encode(VALUE.encode()).decode()
    prefixes = ",".join(f'[{t}] = "{base64.b64encode(f"bench/t{t}-".encode()).decode()}"'
                        for t in range(10))
    return f"""
etcd_prefixes = {{{prefixes}}}
local started = 0
function setup(thread)
  thread:set("prefix", etcd_prefixes[started])
  started = started + 1
end
counter = 0
groups = {{{_groups_b64()}}}
headers = {{["Content-Type"] = "application/json"}}
request = function()
  counter = counter + 1
  local c = counter
  local key = prefix .. groups[math.floor(c / 1000000) % 1000 + 1]
    .. groups[math.floor(c / 1000) % 1000 + 1] .. groups[c % 1000 + 1]
  return wrk.format("POST", "/v3/kv/put", headers,
    '{{"key": "' .. key .. '", "value": "{value}"}}')
end
"""


def run_etcd(tmp: Path, counts: list[int], duration: int) -> dict[int, dict[str, Any]]:
    port, peer = free_port(), free_port()
    url = f"http://127.0.0.1:{port}"
    data = tmp / f"etcd-{uuid.uuid4().hex[:6]}"
    cmd = ["etcd", "--data-dir", str(data), "--listen-client-urls", url,
           "--advertise-client-urls", url, "--listen-peer-urls", f"http://127.0.0.1:{peer}",
           "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
           "--initial-cluster", f"default=http://127.0.0.1:{peer}"]
    out = {}
    with process(cmd, tmp / "etcd.log") as pgid:
        wait_http(f"{url}/health")
        for c in counts:
            out[c] = measured(pgid, url, c, duration, etcd_script(), tmp)
        # every PUT wrote a new key: the keys stored equal the PUTs made
        counted = httpx.post(f"{url}/v3/kv/range", json={
            "key": base64.b64encode(b"bench/").decode(),
            "range_end": base64.b64encode(b"bench0").decode(), "count_only": True}).json()
    out[-1] = {"keys": int(counted.get("count", 0))}
    return out


def run_confhub(tmp: Path, counts: list[int], duration: int, workers: int,
                db: str, log_level: str = "info") -> dict[int, dict[str, Any]]:
    port = free_port()
    cmd = [sys.executable, "-m", "confhub.server", "--db", db, "--port", str(port),
           "--workers", str(workers), "--log-level", log_level]
    base = f"http://127.0.0.1:{port}"
    out = {}
    with process(cmd, tmp / f"confhub-{workers}.log") as pgid:
        wait_http(f"{base}/healthz")
        for i, c in enumerate(counts):
            # a fresh namespace per row keeps every key distinct across rows
            out[c] = measured(pgid, base, c, duration, confhub_lua(f"/config/bench{i}"), tmp)
        count = httpx.get(f"{base}/v1/stats", timeout=30).json().get("total_configs")
    out[-1] = {"total_configs": count}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per measurement")
    parser.add_argument("--connections", default="1,16,64,256")
    parser.add_argument("--workers", default="1", help="confhub worker counts, e.g. 1,2")
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--pg-url", default=os.environ.get(
        "CONFHUB_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test"))
    parser.add_argument("--skip-etcd", action="store_true")
    parser.add_argument("--log-level", default="info",
                        help="confhub's (info, serve's default, writes the access log; "
                             "warning: none)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    for tool in ("wrk", "etcd"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} not found: apt-get install -y wrk etcd-server")
    counts = [int(c) for c in args.connections.split(",")]
    load = os.getloadavg()[0]
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="confhub-put-") as tmpdir:
        tmp = Path(tmpdir)
        etcd = {} if args.skip_etcd else run_etcd(tmp, counts, args.duration)
        for workers in (int(w) for w in args.workers.split(",")):
            if args.backend == "postgres":
                db, schema = _pg_schema(args.pg_url)
            else:
                db, schema = str(tmp / f"confhub-{workers}.db"), None
            try:
                mine = run_confhub(tmp, counts, args.duration, workers, db, args.log_level)
            finally:
                if schema:
                    _drop_pg_schema(args.pg_url, schema)
            for c in counts:
                rows.append({"connections": c, "workers": workers,
                             "confhub": mine[c], "etcd": etcd.get(c)})
            rows.append({"workers": workers, "stored": mine[-1]})
        if etcd:
            rows.append({"workers": "etcd", "stored": etcd[-1]})
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"PUT of distinct keys, {len(VALUE)}-byte JSON, durable; wrk -t2 {args.duration}s; "
          f"{os.cpu_count()} CPUs; confhub on {args.backend}, log level {args.log_level}; "
          f"load average before {load:.2f}; "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(f"{'conns':>5} {'workers':>7} {'confhub/s':>10} {'p99 ms':>8} {'etcd/s':>8} "
          f"{'p99 ms':>8} {'ratio':>6} {'errors':>7} {'CPU µs/PUT':>11} {'etcd':>6}")
    for r in rows:
        if "stored" in r:
            print(f"      workers={r['workers']}: configs stored at the end: {r['stored']}")
            continue
        c, e = r["confhub"], r["etcd"] or {}
        ratio = f"{c['rps'] / e['rps']:.2f}" if e.get("rps") else "-"
        print(f"{r['connections']:>5} {r['workers']:>7} {c['rps']:>10} {c['p99_ms'] or 0:>8.2f} "
              f"{e.get('rps', 0):>8} {e.get('p99_ms') or 0:>8.2f} {ratio:>6} "
              f"{c['non_2xx'] + e.get('non_2xx', 0):>7} {c.get('cpu_us') or 0:>11} "
              f"{e.get('cpu_us') or 0:>6}")


def _pg_schema(url: str) -> tuple[str, str]:
    import psycopg

    schema = f"benchput_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options=-csearch_path%3D{schema}", schema


def _drop_pg_schema(url: str, schema: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


if __name__ == "__main__":
    main()
