"""HTTP throughput of confhub against etcd and a bare Starlette app, in one run, with wrk.

What it measures (every figure in docs/benchmarks.md comes from this script):

* ``GET`` of one cached key — ``/config/models/claude-opus`` (the lean cached path), the
  same key on ``/v1`` with ``?env=base`` (lean too since the sixth pass of issue 17; the full
  route before), and with ``?env=base&resolved=false`` (the full FastAPI route: any other
  query parameter) — at 32 connections;
* ``PUT`` of distinct keys with every acknowledged write durable, at 64 connections;
* for confhub on granian and on uvicorn, each with 1 and 2 workers;
* the references, measured in the same run with the same wrk: etcd (Debian's ``etcd-server``,
  through its JSON gateway ``/v3/kv/range`` and ``/v3/kv/put``) and a bare Starlette app
  answering a constant on granian.

Usage (needs ``wrk`` and ``etcd`` on PATH: ``apt-get install -y wrk etcd-server``)::

    python bench/http_bench.py                       # everything, 10 s per measurement
    python bench/http_bench.py --duration 5 --only confhub --servers granian --workers 1

Nothing is asserted; the script prints a table (and ``--json`` for the raw numbers).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
BARE_APP = '''
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

BODY = b'{"max_tokens":8192}'


async def const(request):
    return Response(BODY, media_type="application/json")


app = Starlette(routes=[Route("/const", const)])
'''

ETCD_GET_LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"key": "%s"}'
"""



def etcd_put_lua(value_b64: str, keys: int = 1000) -> str:
    """PUTs cycling over ``keys`` distinct keys (base64 is precomputed: wrk's Lua is slow)."""
    names = ",".join(f'"{base64.b64encode(f"bench/k{i}".encode()).decode()}"'
                     for i in range(keys))
    return f"""
keys = {{{names}}}
counter = 0
request = function()
  counter = counter + 1
  return wrk.format("POST", "/v3/kv/put", {{["Content-Type"] = "application/json"}},
    '{{"key": "' .. keys[(counter % {keys}) + 1] .. '", "value": "{value_b64}"}}')
end
"""


CONFHUB_PUT_LUA = """
counter = 0
request = function()
  counter = counter + 1
  return wrk.format("PUT", "/config/bench/k" .. (counter % 1000),
    {["Content-Type"] = "application/json"}, '{"max_tokens": 8192}')
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float = 30.0, method: str = "GET", body: Any = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.request(method, url, json=body, timeout=1).status_code < 500:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


@contextmanager
def process(cmd: list[str], log: Path, env: dict[str, str] | None = None) -> Iterator[int]:
    """Run ``cmd`` in its own process group (its id is yielded); stop exactly that group
    afterwards."""
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, **(env or {})}, start_new_session=True)
        try:
            yield proc.pid
        finally:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=15)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def wrk(url: str, connections: int, duration: int, script: str | None, tmp: Path) -> dict[str, Any]:
    cmd = ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency"]
    if script is not None:
        path = tmp / f"script{abs(hash(script))}.lua"
        path.write_text(script)
        cmd += ["-s", str(path)]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", out)
    p99_ms = None
    if p99:
        p99_ms = float(p99.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    return {"rps": round(rps), "p99_ms": p99_ms, "non_2xx": int(bad.group(1)) if bad else 0,
            "socket_errors": errors.group(0) if errors else None}


def run_etcd(args: argparse.Namespace, tmp: Path) -> list[dict[str, Any]]:
    port, peer = free_port(), free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = ["etcd", "--data-dir", str(tmp / "etcd"), "--listen-client-urls", url,
           "--advertise-client-urls", url, "--listen-peer-urls", f"http://127.0.0.1:{peer}",
           "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
           "--initial-cluster", f"default=http://127.0.0.1:{peer}"]
    results = []
    with process(cmd, tmp / "etcd.log"):
        wait_http(f"{url}/health")
        key = base64.b64encode(b"models/claude-opus").decode()
        value = base64.b64encode(b'{"max_tokens": 8192}').decode()
        httpx.post(f"{url}/v3/kv/put", json={"key": key, "value": value}).raise_for_status()
        got = wrk(f"{url}/v3/kv/range", args.get_connections, args.duration,
                  ETCD_GET_LUA % key, tmp)
        results.append({"target": "etcd", "op": "GET", **got})
        put = wrk(url, args.put_connections, args.duration, etcd_put_lua(value), tmp)
        results.append({"target": "etcd", "op": "PUT", **put})
    return results


def run_bare(args: argparse.Namespace, tmp: Path) -> list[dict[str, Any]]:
    (tmp / "bare_app.py").write_text(BARE_APP)
    port = free_port()
    cmd = [sys.executable, "-m", "granian", "--interface", "asgi", "--host", "127.0.0.1",
           "--port", str(port), "--workers", "1", "--log-level", "warning", "bare_app:app"]
    with process(cmd, tmp / "bare.log", env={"PYTHONPATH": str(tmp)}):
        wait_http(f"http://127.0.0.1:{port}/const")
        got = wrk(f"http://127.0.0.1:{port}/const", args.get_connections, args.duration,
                  None, tmp)
    return [{"target": "starlette constant (granian, 1 worker)", "op": "GET", **got}]


def run_confhub(args: argparse.Namespace, tmp: Path, server: str,
                workers: int) -> list[dict[str, Any]]:
    port = free_port()
    db = tmp / f"confhub-{server}-{workers}.db"
    cmd = [sys.executable, "-m", "confhub.server", "--db", str(db), "--port", str(port),
           "--workers", str(workers), "--server", server, "--log-level", args.log_level,
           "--loop", args.loop]
    base = f"http://127.0.0.1:{port}"
    name = f"confhub ({server}, {workers} worker{'s' if workers > 1 else ''})"
    results = []
    with process(cmd, tmp / f"{server}-{workers}.log"):
        wait_http(f"{base}/healthz")
        httpx.put(f"{base}/config/models/claude-opus", json={"max_tokens": 8192})
        for _ in range(50):  # load the cache of every worker
            httpx.get(f"{base}/config/models/claude-opus")
        hot = wrk(f"{base}/config/models/claude-opus", args.get_connections, args.duration,
                  None, tmp)
        results.append({"target": name, "op": "GET", **hot})
        layer = wrk(f"{base}/v1/tenants/default/configs/models/claude-opus?env=base",
                    args.get_connections, args.duration, None, tmp)
        results.append({"target": name, "op": "GET ?env=base", **layer})
        # any other query parameter goes through FastAPI's routing: what the lean path saves
        full = wrk(f"{base}/v1/tenants/default/configs/models/claude-opus?env=base"
                   "&resolved=false", args.get_connections, args.duration, None, tmp)
        results.append({"target": name, "op": "GET (full route)", **full})
        put = wrk(base, args.put_connections, args.duration, CONFHUB_PUT_LUA, tmp)
        results.append({"target": name, "op": "PUT", **put})
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per measurement")
    parser.add_argument("--get-connections", type=int, default=32)
    parser.add_argument("--put-connections", type=int, default=64)
    parser.add_argument("--servers", default="granian,uvicorn")
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--only", choices=["all", "confhub", "references"], default="all")
    parser.add_argument("--loop", choices=["auto", "asyncio", "uvloop"], default="auto",
                        help="event loop of the confhub servers")
    parser.add_argument("--log-level", default="warning",
                        help="of the confhub servers (warning: no access log, as in the "
                             "tables of docs/benchmarks.md; info: serve's default)")
    parser.add_argument("--json", action="store_true", help="print raw results as JSON")
    args = parser.parse_args()
    for tool in ("wrk", "etcd"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} not found: apt-get install -y wrk etcd-server")
    results: list[dict[str, Any]] = []
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="confhub-bench-") as tmpdir:
        tmp = Path(tmpdir)
        if args.only in ("all", "references"):
            results += run_etcd(args, tmp)
            results += run_bare(args, tmp)
        if args.only in ("all", "confhub"):
            for server in args.servers.split(","):
                for workers in (int(w) for w in args.workers.split(",")):
                    results += run_confhub(args, tmp, server, workers)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"wrk -t2, {args.duration}s each; GET at {args.get_connections} connections, "
          f"PUT at {args.put_connections}; {os.cpu_count()} CPUs; loop {args.loop}; "
          f"load average before: {load_before:.2f}")
    print(f"{'target':42} {'op':18} {'req/s':>8} {'p99 ms':>8} {'non-2xx':>8}")
    for r in results:
        p99 = f"{r['p99_ms']:.2f}" if r["p99_ms"] is not None else "-"
        print(f"{r['target']:42} {r['op']:18} {r['rps']:>8} {p99:>8} {r['non_2xx']:>8}")


if __name__ == "__main__":
    main()
