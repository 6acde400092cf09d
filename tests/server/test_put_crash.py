"""A server SIGKILLed during a burst of concurrent PUTs loses no acknowledged write.

Group commit acknowledges many PUTs with one COMMIT; this checks that none of them is answered
before that COMMIT is durable. Sixteen clients PUT distinct keys as fast as they can; each
2xx answer is recorded; once some hundreds are in, the server's whole process group gets
SIGKILL mid-burst. Reopening the database, every recorded key must hold the acknowledged
value at the acknowledged version and revision.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

import confhub
from confhub.server.testing import free_port

CLIENTS = 16
ROUNDS = 3
ACKS_BEFORE_KILL = (50, 200, 400)  # per round: the kill lands at different moments


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue(f"{'pg' if request.param == 'postgres' else 'sqlite'}_url"))


def _serve(url: str, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    db = url[len("sqlite:///"):] if url.startswith("sqlite:") else url
    proc = subprocess.Popen(
        [sys.executable, "-m", "confhub.server", "--db", db, "--port", str(port),
         "--log-level", "warning"], stdout=log.open("ab"), stderr=subprocess.STDOUT,
        start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        assert proc.poll() is None, log.read_text()
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                return proc, base
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "server did not come up"
        time.sleep(0.05)


def _burst(base: str, round_: int, acks: list[tuple[str, int, int, int]],
           stop: threading.Event) -> None:
    """PUT distinct keys from CLIENTS threads until the server dies; record each 2xx."""

    def client(c: int) -> None:
        with httpx.Client(base_url=base, timeout=10) as http:
            n = 0
            while not stop.is_set():
                key = f"r{round_}-c{c}-{n}"
                try:
                    answer = http.put(f"/config/burst/{key}", json={"c": c, "n": n})
                except httpx.TransportError:
                    return  # the server is gone
                assert answer.status_code in (200, 201), answer.text
                body = answer.json()
                acks.append((key, body["version"], body["revision"], n))
                n += 1

    threads = [threading.Thread(target=client, args=(c,)) for c in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


@pytest.mark.slow
def test_every_acknowledged_put_survives_a_kill_during_a_burst(store_url: str,
                                                              tmp_path: Path) -> None:
    """Three rounds of 16 concurrent writers and a SIGKILL mid-burst: all acked PUTs stay."""
    log = tmp_path / "server.log"
    all_acks: list[tuple[str, int, int, int]] = []
    for round_ in range(ROUNDS):
        proc, base = _serve(store_url, log)
        acks: list[tuple[str, int, int, int]] = []
        stop = threading.Event()
        writers = threading.Thread(target=_burst, args=(base, round_, acks, stop))
        writers.start()
        deadline = time.monotonic() + 60
        while len(acks) < ACKS_BEFORE_KILL[round_]:
            assert writers.is_alive() and time.monotonic() < deadline, log.read_text()
            time.sleep(0.001)
        os.killpg(proc.pid, signal.SIGKILL)  # mid-burst: PUTs are in flight
        proc.wait()
        stop.set()
        writers.join()
        assert proc.returncode == -signal.SIGKILL
        all_acks += acks
        with confhub.open(store_url) as hub:
            cfg = hub.tenant()
            for key, version, revision, n in all_acks:
                entry = cfg.get("burst", key)
                assert (entry.value["n"], entry.version, entry.revision) == (n, version, revision)
    assert len({revision for _, _, revision, _ in all_acks}) == len(all_acks)
