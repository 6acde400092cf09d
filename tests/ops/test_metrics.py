"""GET /metrics counts what a dashboard needs, for the whole server (both workers), and a real
Prometheus scrapes it."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from confhub.server.testing import free_port

from .conftest import Served, require_binary, serve


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(url + "/metrics", timeout=10).text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def sample(url: str, name: str, **labels: str) -> float:
    return scrape(url).get((name, tuple(sorted(labels.items()))), 0.0)


def fresh_tenant(url: str) -> str:
    name = "m-" + uuid.uuid4().hex[:8]
    assert httpx.post(url + "/v1/tenants", json={"id": name}).status_code == 201
    return name


def test_a_write_moves_the_commit_and_change_counters(served: Served) -> None:
    tenant = fresh_tenant(served.url)
    for i in range(5):
        r = httpx.put(f"{served.url}/v1/tenants/{tenant}/configs/app/k{i}", json={"n": i})
        assert r.status_code == 201
    # Each scrape may reach either worker: every one of them must report all five.
    for _ in range(6):
        assert sample(served.url, "confhub_commits_total", tenant=tenant) == 5
        assert sample(served.url, "config_changes_total", tenant=tenant,
                      operation="put") == 5


def test_one_worker_counts_in_memory_as_well(tmp_path: Path) -> None:
    """A single worker keeps its metrics in memory (no multiprocess files): the same
    figures."""
    with serve(tmp_path / "one.db", workers=1) as one:
        tenant = fresh_tenant(one.url)
        for i in range(3):
            r = httpx.put(f"{one.url}/v1/tenants/{tenant}/configs/app/k{i}", json={"n": i})
            assert r.status_code == 201
        assert sample(one.url, "confhub_commits_total", tenant=tenant) == 3
        assert sample(one.url, "config_changes_total", tenant=tenant, operation="put") == 3


def test_a_dry_run_commits_nothing_and_is_not_counted(served: Served) -> None:
    tenant = fresh_tenant(served.url)
    r = httpx.put(f"{served.url}/v1/tenants/{tenant}/configs/app/k?dry_run=true", json={})
    assert r.status_code == 200
    assert sample(served.url, "confhub_commits_total", tenant=tenant) == 0


def test_a_conflict_moves_the_conflict_and_error_counters(served: Served) -> None:
    before = scrape(served.url)
    tenant = fresh_tenant(served.url)
    url = f"{served.url}/v1/tenants/{tenant}/configs/app/k"
    assert httpx.put(url, json={"n": 1}).status_code == 201
    assert httpx.put(url, json={"n": 2}, headers={"If-Match": '"7"'}).status_code == 412
    assert httpx.post(f"{served.url}/v1/tenants", json={"id": tenant}).status_code == 409
    after = scrape(served.url)
    assert after[("confhub_conflicts_total", ())] - before.get(
        ("confhub_conflicts_total", ()), 0) == 2
    key = ("config_errors_total", (("code", "version_conflict"),))
    assert after[key] - before.get(key, 0) == 1


def test_a_rollback_moves_the_rollback_counter(served: Served) -> None:
    tenant = fresh_tenant(served.url)
    url = f"{served.url}/v1/tenants/{tenant}/configs/app/k"
    httpx.put(url, json={"n": 1})
    httpx.put(url, json={"n": 2})
    assert httpx.post(url + "/rollback", json={"to_version": 1}).status_code == 200
    assert sample(served.url, "config_rollbacks_total", tenant=tenant) == 1
    assert sample(served.url, "config_changes_total", tenant=tenant,
                  operation="rollback") == 1


def test_requests_are_counted_by_route_template_and_status(served: Served) -> None:
    tenant = fresh_tenant(served.url)
    route = "/v1/tenants/{tenant}/configs/{namespace}/{key}"
    before = sample(served.url, "confhub_http_requests_total", method="GET", route=route,
                    status="404")
    assert httpx.get(f"{served.url}/v1/tenants/{tenant}/configs/app/nope").status_code == 404
    after = sample(served.url, "confhub_http_requests_total", method="GET", route=route,
                   status="404")
    assert after - before == 1
    assert sample(served.url, "config_latency_seconds_count", operation="read") >= 1


def test_store_gauges_are_read_from_storage(served: Served) -> None:
    tenant = fresh_tenant(served.url)
    for i in range(3):
        httpx.put(f"{served.url}/v1/tenants/{tenant}/configs/app/k{i}", json={})
    deadline = time.monotonic() + 10  # gauges are cached for two seconds per worker
    while (figures := scrape(served.url)).get(
            ("confhub_store_revision", (("tenant", tenant),))) != 3:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert figures[("confhub_store_configs", ())] >= 3
    assert figures[("confhub_store_versions", ())] >= 3
    assert figures[("confhub_store_size_bytes", ())] > 0


PROMETHEUS_CONFIG = """\
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: confhub
    static_configs:
      - targets: ["{target}"]
"""


@pytest.fixture(scope="module")
def prometheus(served: Served, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = require_binary("/usr/bin/prometheus")
    home: Path = tmp_path_factory.mktemp("prometheus")
    (home / "prometheus.yml").write_text(
        PROMETHEUS_CONFIG.format(target=served.url.removeprefix("http://")))
    port = free_port()
    log = (home / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        [binary, f"--config.file={home / 'prometheus.yml'}",
         f"--storage.tsdb.path={home / 'data'}", f"--web.listen-address=127.0.0.1:{port}"],
        stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, (home / "prometheus.log").read_text()
            try:
                if httpx.get(url + "/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "prometheus did not become ready"
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


def promql(url: str, query: str) -> list[dict[str, object]]:
    body = httpx.get(url + "/api/v1/query", params={"query": query}, timeout=5).json()
    assert body["status"] == "success", body
    return body["data"]["result"]  # type: ignore[no-any-return]


def test_prometheus_scrapes_the_server_and_promql_returns_the_figures(
        served: Served, prometheus: str) -> None:
    tenant = fresh_tenant(served.url)
    for i in range(7):
        httpx.put(f"{served.url}/v1/tenants/{tenant}/configs/app/k{i}", json={"n": i})
    query = f'sum(confhub_commits_total{{tenant="{tenant}"}})'
    deadline = time.monotonic() + 30
    while True:  # Prometheus scrapes every second: wait until it has seen all seven
        result = promql(prometheus, query)
        if result and float(result[0]["value"][1]) == 7:  # type: ignore[index]
            break
        assert time.monotonic() < deadline, f"Prometheus answered {result}"
        time.sleep(0.3)
    up = promql(prometheus, 'up{job="confhub"}')
    assert up and float(up[0]["value"][1]) == 1  # type: ignore[index]
    revision = promql(prometheus, f'confhub_store_revision{{tenant="{tenant}"}}')
    deadline = time.monotonic() + 30
    while not revision or float(revision[0]["value"][1]) != 7:  # type: ignore[index]
        assert time.monotonic() < deadline, f"Prometheus answered {revision}"
        time.sleep(0.3)
        revision = promql(prometheus, f'confhub_store_revision{{tenant="{tenant}"}}')
