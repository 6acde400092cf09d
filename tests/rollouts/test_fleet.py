"""End to end with real processes: 20 consumers with remote live values on a real server.

The tenant is called ``fleet``, so the rollout salts (``fleet/r-1``, ``fleet/r-2``) and the
client ids ``c00``..``c19`` give known cohorts: at 10 % rollout r-1 reaches c07, c15, c16.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from confhub.cohort import bucket
from confhub.server.testing import live_server

pytestmark = pytest.mark.slow

HELPER = Path(__file__).with_name("_consumer.py")
IDS = [f"c{i:02d}" for i in range(20)]
STRICT = "c11"  # its model refuses tokens above 10


class Fleet:
    """The consumer processes and the latest value each one holds."""

    def __init__(self, url: str) -> None:
        self.values: dict[str, int] = {}
        self.refused: dict[str, str] = {}
        self._changed = threading.Condition()
        self._procs = []
        for client in IDS:
            limit = "10" if client == STRICT else "1000"
            proc = subprocess.Popen([sys.executable, str(HELPER), url, "fleet", client, limit],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            self._procs.append(proc)
            threading.Thread(target=self._read, args=(proc,), daemon=True).start()

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            data = json.loads(line)
            with self._changed:
                if "value" in data:
                    self.values[data["id"]] = data["value"]
                else:
                    self.refused[data["id"]] = data["refused"]
                self._changed.notify_all()

    def wait(self, expected: dict[str, int], timeout: float = 60.0) -> float:
        """Block until every named consumer holds its expected value; seconds waited."""
        started = time.monotonic()
        with self._changed:
            ok = self._changed.wait_for(
                lambda: all(self.values.get(c) == v for c, v in expected.items()), timeout)
        assert ok, f"expected {expected}, have {self.values}"
        return time.monotonic() - started

    def close(self) -> None:
        for proc in self._procs:
            assert proc.stdin is not None
            proc.stdin.close()
        for proc in self._procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with live_server(tmp_path_factory.mktemp("fleet") / "confhub.db") as url:
        with httpx.Client(base_url=url) as http:
            http.post("/v1/tenants", json={"id": "fleet"}).raise_for_status()
            http.put("/v1/tenants/fleet/configs/models/a", json={"tokens": 1}).raise_for_status()
        yield url


@pytest.fixture(scope="module")
def fleet(server: str) -> Iterator[Fleet]:
    started = Fleet(server)
    started.wait(dict.fromkeys(IDS, 1), timeout=180)  # 20 interpreters on a busy machine
    yield started
    started.close()


def cohort(rollout: str, percent: int) -> list[str]:
    return [c for c in IDS if bucket(f"fleet/{rollout}", c) < percent * 100]


def test_a_good_rollout_widens_10_50_100_and_commits_one_transaction(
        server: str, fleet: Fleet) -> None:
    http = httpx.Client(base_url=server, timeout=10)
    answer = http.post("/v1/tenants/fleet/rollouts", json={
        "ops": [{"op": "put", "namespace": "models", "key": "a", "value": {"tokens": 2}}],
        "steps": [10, 50, 100], "bake": "1h", "reason": "two tokens"})
    assert answer.status_code == 201, answer.text
    ten = cohort("r-1", 10)
    assert ten == ["c07", "c15", "c16"]
    fleet.wait(dict.fromkeys(ten, 2))
    assert {c for c, v in fleet.values.items() if v == 2} == set(ten)  # and no one else
    http.post("/v1/tenants/fleet/rollouts/r-1/advance").raise_for_status()
    fifty = cohort("r-1", 50)
    fleet.wait(dict.fromkeys(fifty, 2))
    assert {c for c, v in fleet.values.items() if v == 2} == set(fifty)
    http.post("/v1/tenants/fleet/rollouts/r-1/advance").raise_for_status()
    fleet.wait(dict.fromkeys(IDS, 2))
    deadline = time.monotonic() + 10  # each consumer reports right after its callbacks ran
    while len((status := http.get("/v1/tenants/fleet/rollouts/r-1").json())
              ["health"]["applied"]) < 20:
        assert time.monotonic() < deadline, status["health"]
        time.sleep(0.05)
    assert status["health"]["cohort"] == 20 and status["health"]["failed"] == []
    done = http.post("/v1/tenants/fleet/rollouts/r-1/advance").json()
    assert done["state"] == "completed"
    history = http.get("/v1/tenants/fleet/configs/models/a/history").json()["items"]
    assert [(v["version"], v["value"], v["metadata"]) for v in history] == [
        (2, {"tokens": 2}, {"rollout": "r-1"}), (1, {"tokens": 1}, {})]
    assert history[0]["revision"] == done["revision"]


def test_one_refusing_consumer_rolls_back_the_whole_fleet(server: str, fleet: Fleet) -> None:
    http = httpx.Client(base_url=server, timeout=10)
    fleet.wait(dict.fromkeys(IDS, 2))
    answer = http.post("/v1/tenants/fleet/rollouts", json={
        "ops": [{"op": "put", "namespace": "models", "key": "a", "value": {"tokens": 50}}],
        "strategy": "all-at-once", "bake": "1h"})
    assert answer.status_code == 201, answer.text
    deadline = time.monotonic() + 20
    while http.get("/v1/tenants/fleet/rollouts/r-2").json()["state"] != "rolled_back":
        assert time.monotonic() < deadline, "the rollout was not rolled back"
        time.sleep(0.02)
    back = fleet.wait(dict.fromkeys(IDS, 2))
    print(f"\nall 20 consumers back on the committed value {back * 1000:.0f} ms after the "
          "rollback was seen")
    assert STRICT in fleet.refused
    status = http.get("/v1/tenants/fleet/rollouts/r-2").json()
    assert status["health"]["failed"][0]["client_id"] == STRICT
    assert "max_failure" in status["event_reason"]
    history = http.get("/v1/tenants/fleet/configs/models/a/history").json()["items"]
    assert [v["version"] for v in history] == [2, 1]  # nothing committed
