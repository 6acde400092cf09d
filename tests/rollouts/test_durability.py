"""Rollouts survive restarts, are shared by several servers on one PostgreSQL, resume
exactly across transitions, and obey a real Prometheus gate."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from confhub.server.testing import free_port, live_server

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
pytestmark = pytest.mark.slow

PUT_A = [{"op": "put", "namespace": "models", "key": "a", "value": {"tokens": 2}}]


def wait_for(check: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


def seed(url: str, tenant: str = "acme") -> httpx.Client:
    http = httpx.Client(base_url=url, timeout=10)
    http.post("/v1/tenants", json={"id": tenant}).raise_for_status()
    http.put(f"/v1/tenants/{tenant}/configs/models/a", json={"tokens": 1}).raise_for_status()
    return http


def state(http: httpx.Client, rollout: str = "r-1") -> str:
    return str(http.get(f"/v1/tenants/acme/rollouts/{rollout}").json()["state"])


def test_a_restart_mid_rollout_loses_nothing(tmp_path: Path) -> None:
    db = tmp_path / "confhub.db"
    with live_server(db) as url:
        http = seed(url)
        http.post("/v1/tenants/acme/rollouts", json={
            "ops": PUT_A, "steps": [50, 100], "bake": ["1h", "1s"]}).raise_for_status()
        http.get("/v1/tenants/acme/configs/models/a", headers={"X-Confhub-Client": "c1"})
        http.post("/v1/tenants/acme/consumers/c1/reports",
                  json={"rollout": "r-1", "status": "applied"}).raise_for_status()
    with live_server(db) as url:
        http = httpx.Client(base_url=url, timeout=10)
        r = http.get("/v1/tenants/acme/rollouts/r-1").json()
        assert (r["state"], r["percent"]) == ("running", 50)
        assert r["health"]["applied"] == ["c1"]
        put = http.put("/v1/tenants/acme/configs/models/a", json={"tokens": 9})
        assert put.json()["error"]["code"] == "rollout_in_progress"
        # the restarted server's gate drives it on: last step (1 s bake), then the commit
        http.post("/v1/tenants/acme/rollouts/r-1/advance").raise_for_status()
        wait_for(lambda: state(http) == "completed")
        assert http.get("/v1/tenants/acme/configs/models/a").json()["value"] == {"tokens": 2}


def test_two_servers_on_postgresql_share_rollouts_and_transition_once(pg_url: str) -> None:
    with live_server(pg_url) as one, live_server(pg_url) as two:
        a, b = seed(one), httpx.Client(base_url=two, timeout=10)
        a.post("/v1/tenants/acme/rollouts", json={
            "ops": PUT_A, "strategy": "all-at-once", "bake": "1s"}).raise_for_status()
        # a consumer on the other server sees the staged value at once
        staged = b.get("/v1/tenants/acme/configs/models/a", headers={"X-Confhub-Client": "c"})
        assert staged.json()["rollout"] == "r-1"
        wait_for(lambda: state(b) == "completed")
        history = a.get("/v1/tenants/acme/configs/models/a/history").json()["items"]
        assert [v["version"] for v in history] == [2, 1]  # committed exactly once
        a.post("/v1/tenants/acme/rollouts", json={
            "ops": [{"op": "put", "namespace": "models", "key": "a", "value": {"tokens": 3}}],
            "strategy": "all-at-once", "bake": "1h"}).raise_for_status()
        b.post("/v1/tenants/acme/consumers/c/reports",
               json={"rollout": "r-2", "status": "failed"}).raise_for_status()
        wait_for(lambda: state(a, "r-2") == "rolled_back")
        audit = [e["action"] for e in a.get("/v1/tenants/acme/audit").json()["items"]]
        assert audit.count("rollout.completed") == 1 and audit.count("rollout.rolled_back") == 1
        consumers = a.get("/v1/tenants/acme/consumers").json()["items"]
        assert [c["client_id"] for c in consumers] == ["c"]


def test_a_watch_resumed_across_transitions_gets_exactly_its_changes(tmp_path: Path) -> None:
    with live_server(tmp_path / "w.db") as url:
        http = seed(url)
        start = http.get("/v1/tenants/acme/changes").json()["revision"]
        http.post("/v1/tenants/acme/rollouts", json={
            "ops": PUT_A, "strategy": "all-at-once", "bake": "1h"}).raise_for_status()
        http.post("/v1/tenants/acme/rollouts/r-1/rollback").raise_for_status()
        headers = {"X-Confhub-Client": "c9"}
        params = {"namespace": "models", "key": "a"}

        def events(last: int, count: int) -> list[dict[str, object]]:
            found: list[dict[str, object]] = []
            with http.stream("GET", "/v1/tenants/acme/watch", params=params,
                             headers={**headers, "Last-Event-ID": str(last)}) as stream:
                for line in stream.iter_lines():
                    if line.startswith("data:") and '"changes"' in line:
                        found.append(json.loads(line[5:]))
                        if len(found) == count:
                            return found
            return found

        both = events(start, 2)
        assert [e["changes"][0]["value"] for e in both] == [{"tokens": 2}, {"tokens": 1}]
        resumed = events(int(str(both[0]["revision"])), 1)  # reconnect after the first
        assert resumed == both[1:]


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[tuple[str, Callable[[float], None]]]:
    """A real Prometheus scraping a one-gauge exporter this test serves; yields its URL and
    a setter for the gauge."""
    binary = shutil.which("prometheus") or "/usr/bin/prometheus"
    if not Path(binary).exists():
        if IN_CI:
            pytest.fail("CI=true needs Debian's prometheus package")
        pytest.skip("prometheus is not installed (apt-get install prometheus)")
    from prometheus_client import CollectorRegistry, Gauge, start_http_server

    registry = CollectorRegistry()
    errors = Gauge("confhub_test_errors", "errors the app sees", registry=registry)
    exporter_port = free_port()
    server, thread = start_http_server(exporter_port, addr="127.0.0.1", registry=registry)
    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n  - job_name: app\n    static_configs:\n"
        f"      - targets: ['127.0.0.1:{exporter_port}']\n")
    data = tempfile.mkdtemp(dir=tmp_path)
    proc = subprocess.Popen([binary, f"--config.file={config}", f"--storage.tsdb.path={data}",
                             f"--web.listen-address=127.0.0.1:{port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        def scraped() -> bool:
            try:
                answer = httpx.get(f"{url}/api/v1/query", params={"query": "up"}, timeout=1)
                return bool(answer.status_code == 200 and answer.json()["data"]["result"])
            except httpx.HTTPError:
                return False

        wait_for(scraped, timeout=30)
        yield url, errors.set
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        server.shutdown()


def test_the_prometheus_gate_holds_while_quiet_and_rolls_back_when_it_fires(
        tmp_path: Path, prometheus: tuple[str, Callable[[float], None]]) -> None:
    prom_url, set_errors = prometheus
    gate = {"gate_prometheus": prom_url, "gate_query": "confhub_test_errors > 0"}
    with live_server(tmp_path / "p.db") as url:
        http = seed(url)
        http.post("/v1/tenants/acme/rollouts", json={
            "ops": PUT_A, "strategy": "all-at-once", "bake": "1s", **gate}).raise_for_status()
        wait_for(lambda: state(http) == "completed")  # a quiet query lets it through
        http.post("/v1/tenants/acme/rollouts", json={
            "ops": [{"op": "put", "namespace": "models", "key": "a", "value": {"tokens": 3}}],
            "strategy": "all-at-once", "bake": "1h", **gate}).raise_for_status()
        set_errors(3)
        wait_for(lambda: state(http, "r-2") == "rolled_back")
        reason = http.get("/v1/tenants/acme/rollouts/r-2").json()["event_reason"]
        assert "Prometheus gate fired" in reason and "confhub_test_errors" in reason
