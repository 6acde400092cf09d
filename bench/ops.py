"""Issue 13's figures, in one run: load, compaction, backup — confhub next to etcd.

What it measures (docs/benchmarks.md, "Operations", comes from this script):

* ``confhub bench`` (100 readers, 10 writers, --duration seconds) against ``confhub serve``
  on SQLite and on PostgreSQL, and the *same* load (the same Python engine,
  ``confhub.loadtest``, one HTTP client per thread) against etcd's JSON gateway
  (``/v3/kv/range``, ``/v3/kv/put``) on the same machine, plus ``etcdctl check perf``;
* compaction of N versions (keys × versions per key, keep the last one): time and disk
  space returned (SQLite incremental vacuum);
* backup and restore of a store of about --backup-mb megabytes: time and throughput.

Usage::

    python bench/ops.py                                  # the issue's sizes (takes minutes)
    python bench/ops.py --duration 10 --versions 100000 --backup-mb 100    # quicker

Needs ``etcd``/``etcdctl`` (Debian ``etcd-server``, ``etcd-client``) and the PostgreSQL of
CONFHUB_TEST_PG_DSN. Nothing is asserted; figures are printed, ``--json`` for raw numbers.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

import confhub
from confhub.loadtest import run_load
from confhub.server.testing import free_port

PG_DSN = os.environ.get("CONFHUB_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")


@contextlib.contextmanager
def process(cmd: list[str], log: Path, env: dict[str, str] | None = None) -> Iterator[None]:
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, **(env or {})}, start_new_session=True)
        try:
            yield
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)
                proc.wait()


def wait_http(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(url, timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise SystemExit(f"{url} did not answer within {timeout}s")


def confhub_load(db: str, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "confhub.server", "--db", db, "--port", str(port),
           "--workers", str(args.workers), "--log-level", "warning", "--rate-limit", "0",
           "--compact-interval", "0"]
    with process(cmd, tmp / f"serve-{port}.log"):
        wait_http(url + "/healthz")
        out = subprocess.run(
            [sys.executable, "-m", "confhub.cli", "bench", "--url", url, "--readers",
             str(args.readers), "--writers", str(args.writers), "--duration",
             str(args.duration), "--json"], capture_output=True, text=True, check=False)
        if out.returncode != 0:
            raise SystemExit(f"confhub bench failed: {out.stderr}")
        return json.loads(out.stdout)  # type: ignore[no-any-return]


@contextlib.contextmanager
def etcd(tmp: Path) -> Iterator[str]:
    port, peer = free_port(), free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = ["etcd", "--data-dir", str(tmp / "etcd"), "--listen-client-urls", url,
           "--advertise-client-urls", url, "--listen-peer-urls", f"http://127.0.0.1:{peer}",
           "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
           "--initial-cluster", f"default=http://127.0.0.1:{peer}", "--log-level", "error"]
    with process(cmd, tmp / "etcd.log"):
        wait_http(url + "/health")
        yield url


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def etcd_load(url: str, args: argparse.Namespace) -> dict[str, Any]:
    """The load ``confhub bench`` makes, on etcd's gateway: same engine, same shapes."""
    value = json.dumps({"payload": "x" * 100})
    keys = 100
    with httpx.Client(base_url=url) as client:
        for i in range(keys):
            client.post("/v3/kv/put", json={"key": b64(f"bench/k{i}"), "value": b64(value)})
    clients: list[httpx.Client] = []

    def reader(n: int) -> Any:
        client = httpx.Client(base_url=url)
        clients.append(client)

        def read(i: int) -> None:
            r = client.post("/v3/kv/range", json={"key": b64(f"bench/k{(i + n) % keys}")})
            r.raise_for_status()
        return read

    def writer(n: int) -> Any:
        client = httpx.Client(base_url=url)
        clients.append(client)

        def write(i: int) -> None:
            r = client.post("/v3/kv/put", json={"key": b64(f"bench/w{n}-{i % keys}"),
                                                "value": b64(json.dumps({"i": i}))})
            r.raise_for_status()
        return write

    try:
        reads, writes, problems = run_load(reader, writer, readers=args.readers,
                                           writers=args.writers, duration=args.duration)
    finally:
        for client in clients:
            client.close()
    return {"target": url, "reads": reads, "writes": writes, "problems": problems}


def etcd_check_perf(url: str) -> str:
    out = subprocess.run(["etcdctl", f"--endpoints={url}", "check", "perf", "--load=s"],
                         capture_output=True, text=True, env={**os.environ, "ETCDCTL_API": "3"},
                         timeout=300, check=False)
    lines = (out.stdout + out.stderr).splitlines()
    return "\n".join(line for line in lines if line.startswith(("PASS", "FAIL")))


def file_mb(path: Path) -> float:
    total = sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))
    return round(total / 1e6, 1)


def compaction(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    db = tmp / "compact.db"
    per_key = 100
    keys = max(1, args.versions // per_key)
    with confhub.open(f"sqlite:///{db}") as hub:
        cfg = hub.tenant()
        started = time.perf_counter()
        for _ in range(per_key):  # one transaction per round: every key gets a version
            for chunk in range(0, keys, 10_000):
                with cfg.transaction() as tx:
                    for k in range(chunk, min(keys, chunk + 10_000)):
                        tx.set("bulk", f"k{k}", {"payload": "v" * 100})
        load_s = time.perf_counter() - started
        before = file_mb(db)
        hub.set_retention("default", keep_last=1)
        started = time.perf_counter()
        report = hub.compact()
        compact_s = time.perf_counter() - started
        after = file_mb(db)
    return {"versions": keys * per_key, "keys": keys, "load_s": round(load_s, 1),
            "removed": report["removed"], "compact_s": round(compact_s, 1),
            "mb_before": before, "mb_after": after, "space": report["space"]}


def backup_restore(args: argparse.Namespace, tmp: Path, url: str, label: str
                   ) -> dict[str, Any]:
    rows = int(args.backup_mb * 1e6 // 64_200)
    with confhub.open(url) as hub:
        cfg = hub.tenant()
        for chunk in range(0, rows, 200):
            with cfg.transaction() as tx:
                for k in range(chunk, min(rows, chunk + 200)):
                    # 64 KB of hex per key: compresses about 2:1 like real documents (not
                    # 1000:1 like repeated bytes); large values keep the build of 1 GB short
                    tx.set("big", f"k{k}", {"blob": os.urandom(32_000).hex()})
        size_mb = round(hub.stats()["storage_size_mb"], 1)
        started = time.perf_counter()
        figures = hub.backup(tmp / f"{label}.backup")
        backup_s = time.perf_counter() - started
    target = tmp / f"{label}-restored.db"
    with confhub.open(f"sqlite:///{target}") as restored:
        started = time.perf_counter()
        result = restored.restore_backup(tmp / f"{label}.backup")
        restore_s = time.perf_counter() - started
    return {"backend": label, "store_mb": size_mb, "rows": figures["rows"],
            "file_mb": round(figures["bytes"] / 1e6, 1), "backup_s": round(backup_s, 1),
            "backup_mb_per_s": round(size_mb / backup_s, 1), "restore_s": round(restore_s, 1),
            "restore_mb_per_s": round(size_mb / restore_s, 1),
            "restored_ok": result["doctor"]["ok"]}


@contextlib.contextmanager
def pg_schema() -> Iterator[str]:
    import psycopg

    schema = f"bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")  # type: ignore[arg-type]
    try:
        yield f"{PG_DSN}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")  # type: ignore[arg-type]


def machine() -> str:
    cpus = os.cpu_count()
    load = os.getloadavg()
    return (f"{platform.machine()}, {cpus} cores, Python {platform.python_version()}, "
            f"load average {load[0]:.1f} at start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=60)
    parser.add_argument("--readers", type=int, default=100)
    parser.add_argument("--writers", type=int, default=10)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--versions", type=int, default=1_000_000)
    parser.add_argument("--backup-mb", type=float, default=1000)
    parser.add_argument("--only", nargs="*", default=["load", "compaction", "backup"])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results: dict[str, Any] = {"machine": machine(), "args": vars(args)}
    with tempfile.TemporaryDirectory(prefix="confhub-ops-bench-") as folder:
        tmp = Path(folder)
        if "load" in args.only:
            results["confhub_sqlite"] = confhub_load(str(tmp / "load.db"), args, tmp)
            print("confhub sqlite", json.dumps(results["confhub_sqlite"]), flush=True)
            with pg_schema() as url:
                results["confhub_postgres"] = confhub_load(url, args, tmp)
            print("confhub postgres", json.dumps(results["confhub_postgres"]), flush=True)
            if shutil.which("etcd"):
                with etcd(tmp) as url:
                    results["etcd_gateway"] = etcd_load(url, args)
                    print("etcd", json.dumps(results["etcd_gateway"]), flush=True)
                    results["etcdctl_check_perf"] = etcd_check_perf(url)
                    print(results["etcdctl_check_perf"], flush=True)
        if "compaction" in args.only:
            results["compaction"] = compaction(args, tmp)
            print("compaction", json.dumps(results["compaction"]), flush=True)
        if "backup" in args.only:
            results["backup_sqlite"] = backup_restore(args, tmp, f"sqlite:///{tmp / 'big.db'}",
                                                      "sqlite")
            print("backup sqlite", json.dumps(results["backup_sqlite"]), flush=True)
            with pg_schema() as url:
                results["backup_postgres"] = backup_restore(args, tmp, url, "postgres")
            print("backup postgres", json.dumps(results["backup_postgres"]), flush=True)
    if args.json:
        print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
