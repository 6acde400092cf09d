"""Rollouts and consumers over HTTP on a real ``confhub serve``: the API, identities on
every read path, the error answers, and the remote client."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import confhub
from confhub.cohort import bucket
from confhub.server.testing import live_server

PUT_A = [{"op": "put", "namespace": "models", "key": "a", "value": {"tokens": 2}}]


def wait_for(check: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


@pytest.fixture(scope="module")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with live_server(tmp_path_factory.mktemp("rollouts") / "confhub.db") as url:
        yield url


@pytest.fixture
def http(server_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server_url, timeout=10) as client:
        yield client


@pytest.fixture
def tenant(http: httpx.Client) -> str:
    name = "t-" + uuid.uuid4().hex[:10]
    assert http.post("/v1/tenants", json={"id": name}).status_code == 201
    assert http.put(f"/v1/tenants/{name}/configs/models/a", json={"tokens": 1}).status_code == 201
    return name


def start(http: httpx.Client, tenant: str, **body: object) -> dict[str, object]:
    answer = http.post(f"/v1/tenants/{tenant}/rollouts", json={"ops": PUT_A, **body})
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


class TestApi:
    def test_start_get_list_and_read_as_a_consumer(self, http: httpx.Client,
                                                   tenant: str) -> None:
        r = start(http, tenant, steps=[10, 100], bake="1h", reason="more")
        assert (r["id"], r["state"], r["percent"]) == ("r-1", "running", 10)
        inside = next(f"c{i}" for i in range(100) if bucket(f"{tenant}/r-1", f"c{i}") < 1000)
        outside = next(f"c{i}" for i in range(100) if bucket(f"{tenant}/r-1", f"c{i}") >= 1000)
        path = f"/v1/tenants/{tenant}/configs/models/a"
        staged = http.get(path, headers={"X-Confhub-Client": inside}).json()
        assert staged["value"] == {"tokens": 2} and staged["rollout"] == "r-1"
        assert http.get(path, params={"client_id": inside}).json()["value"] == {"tokens": 2}
        assert http.get(path, headers={"X-Confhub-Client": outside}).json()["value"] == {
            "tokens": 1}
        assert "rollout" not in http.get(path).json()
        resolved = http.get(path, params={"resolved": "true", "client_id": inside}).json()
        assert resolved["rollouts"] == ["r-1"]
        listed = http.get(f"/v1/tenants/{tenant}/rollouts").json()["items"]
        assert [x["id"] for x in listed] == ["r-1"]
        one = http.get(f"/v1/tenants/{tenant}/rollouts/r-1").json()
        assert one["health"]["cohort"] == 1 and one["health"]["silent"] == [inside]
        consumers = http.get(f"/v1/tenants/{tenant}/consumers").json()["items"]
        assert {c["client_id"] for c in consumers} == {inside, outside}

    def test_advance_to_completion_commits_with_the_rollout_id(self, http: httpx.Client,
                                                              tenant: str) -> None:
        start(http, tenant, strategy="canary", bake="1h")
        assert http.post(f"/v1/tenants/{tenant}/rollouts/r-1/advance").json()["percent"] == 100
        done = http.post(f"/v1/tenants/{tenant}/rollouts/r-1/advance",
                         json={"reason": "looks good"}).json()
        assert done["state"] == "completed"
        history = http.get(f"/v1/tenants/{tenant}/configs/models/a/history").json()["items"]
        assert history[0]["metadata"] == {"rollout": "r-1"} and history[0]["version"] == 2

    def test_report_failure_rolls_back(self, http: httpx.Client, tenant: str) -> None:
        start(http, tenant, strategy="all-at-once", bake="1h")
        answer = http.post(f"/v1/tenants/{tenant}/consumers/api-1/reports",
                           json={"rollout": "r-1", "status": "failed", "reason": "crash"})
        assert answer.status_code == 201
        wait_for(lambda: http.get(f"/v1/tenants/{tenant}/rollouts/r-1").json()["state"]
                 == "rolled_back")
        reports = http.get(f"/v1/tenants/{tenant}/consumers/api-1/reports").json()["items"]
        assert reports[0]["status"] == "failed" and reports[0]["reason"] == "crash"

    def test_transitions_are_in_the_watch_stream(self, http: httpx.Client, tenant: str) -> None:
        start(http, tenant, strategy="all-at-once", bake="1h")
        http.post(f"/v1/tenants/{tenant}/rollouts/r-1/rollback")
        with http.stream("GET", f"/v1/tenants/{tenant}/watch",
                         params={"since": 1, "client_id": "anyone"}) as stream:
            events = _sse_events(stream, 2)
        first, second = events
        assert [c["namespace"] for c in first["changes"]] == [".rollouts", "models"]
        assert first["changes"][1]["value"] == {"tokens": 2}
        assert second["changes"][1]["value"] == {"tokens": 1}
        assert second["changes"][0]["value"]["state"] == "rolled_back"


def _sse_events(stream: httpx.Response, count: int) -> list[dict[str, object]]:
    events: list[dict[str, object]] = []
    for line in stream.iter_lines():
        if line.startswith("data:") and '"changes"' in line:
            events.append(json.loads(line[5:]))
            if len(events) == count:
                break
    return events


class TestBadInput:
    @pytest.mark.parametrize(("body", "status", "code", "named"), [
        ({"selector": "region ~ eu"}, 400, "invalid_request", "region ~ eu"),
        ({"selector": "region like (eu)"}, 400, "invalid_request", "unknown operator 'like'"),
        ({"steps": [10, 50]}, 400, "invalid_request", "end at 100"),
        ({"strategy": "sideways"}, 400, "invalid_request", "strategy"),
        ({"stepz": [100]}, 400, "invalid_request", "stepz"),
        ({"max_failure": 3}, 400, "invalid_request", "max_failure"),
    ])
    def test_a_bad_rollout_is_a_clear_4xx_and_starts_nothing(
            self, http: httpx.Client, tenant: str, body: dict[str, object], status: int,
            code: str, named: str) -> None:
        answer = http.post(f"/v1/tenants/{tenant}/rollouts", json={"ops": PUT_A, **body})
        assert answer.status_code == status, answer.text
        error = answer.json()["error"]
        assert error["code"] == code and named in error["message"]
        assert http.get(f"/v1/tenants/{tenant}/rollouts").json()["items"] == []

    def test_direct_write_and_second_rollout_answer_409_rollout_in_progress(
            self, http: httpx.Client, tenant: str) -> None:
        start(http, tenant, bake="1h")
        put = http.put(f"/v1/tenants/{tenant}/configs/models/a", json={"tokens": 5})
        assert put.status_code == 409
        assert put.json()["error"]["code"] == "rollout_in_progress"
        assert put.json()["error"]["details"]["rollout"] == "r-1"
        again = http.post(f"/v1/tenants/{tenant}/rollouts", json={"ops": PUT_A})
        assert again.status_code == 409 and "r-1" in again.json()["error"]["message"]

    def test_report_for_an_unknown_rollout_is_404(self, http: httpx.Client,
                                                  tenant: str) -> None:
        answer = http.post(f"/v1/tenants/{tenant}/consumers/api-1/reports",
                           json={"rollout": "r-42", "status": "failed"})
        assert answer.status_code == 404 and "r-42" in answer.json()["error"]["message"]

    def test_unknown_selector_key_is_refused_once_consumers_are_known(
            self, http: httpx.Client, tenant: str) -> None:
        http.get(f"/v1/tenants/{tenant}/configs/models/a",
                 headers={"X-Confhub-Client": "api-1", "X-Confhub-Labels": "region=eu"})
        answer = http.post(f"/v1/tenants/{tenant}/rollouts",
                           json={"ops": PUT_A, "selector": "regoin=eu"})
        assert answer.status_code == 400 and "'regoin'" in answer.json()["error"]["message"]

    def test_finished_rollouts_refuse_transitions_with_409(self, http: httpx.Client,
                                                           tenant: str) -> None:
        start(http, tenant, bake="1h")
        http.post(f"/v1/tenants/{tenant}/rollouts/r-1/rollback")
        answer = http.post(f"/v1/tenants/{tenant}/rollouts/r-1/pause")
        assert answer.status_code == 409
        assert answer.json()["error"]["code"] == "invalid_transition"


class TestRemoteClient:
    def test_the_remote_surface_matches_the_embedded_one(self, server_url: str,
                                                         tenant: str) -> None:
        with confhub.open(server_url) as hub:
            cfg = hub.tenant(tenant)
            r = cfg.rollouts.start(PUT_A, strategy="all-at-once", bake="1h")
            member = hub.tenant(tenant, client_id="api-9", labels={"region": "eu"})
            assert member.get("models", "a").rollout == r.id
            live = member.live("models", "a", cache_file=False)
            assert live.value == {"tokens": 2} and live.rollouts == (r.id,)
            wait_for(lambda: cfg.rollouts.get(r.id).health.applied == ("api-9",))
            arrived = threading.Event()
            live.on_change(lambda old, new: arrived.set())
            assert [x.id for x in cfg.rollouts.list()] == [r.id]
            cfg.rollouts.rollback(r.id, reason="enough")
            assert arrived.wait(5) and live.value == {"tokens": 1}
            [consumer] = cfg.consumers()
            assert consumer.client_id == "api-9" and consumer.labels == {"region": "eu"}
            live.close()


class TestAnonymousReports:
    """A report needs a client id; the remote client refuses one without it exactly as the
    embedded hub does, and before sending anything (its server here is unreachable)."""

    @pytest.fixture
    def both(self, tmp_path: Path) -> Iterator[tuple[Any, Any]]:
        with confhub.open(str(tmp_path / "r.db")) as embedded, \
                confhub.open("http://127.0.0.1:9") as remote:
            yield embedded.tenant(), remote.tenant()

    def refusal(self, call: Callable[[], object]) -> tuple[type, int, str]:
        with pytest.raises(confhub.InvalidRequest) as caught:
            call()
        return type(caught.value), caught.value.http_status, caught.value.message

    def test_report_without_a_client_id_is_the_same_400_embedded_and_remote(
            self, both: tuple[Any, Any]) -> None:
        embedded, remote = both
        expected = (confhub.InvalidRequest, 400, "a report needs a client id: open the "
                    "tenant with client_id=... or labels=...")
        assert self.refusal(lambda: embedded.rollouts.report("r-1", "failed")) == expected
        assert self.refusal(lambda: remote.rollouts.report("r-1", "failed")) == expected

    def test_report_health_without_a_client_id_is_a_400_naming_the_client_id(
            self, both: tuple[Any, Any]) -> None:
        for tenant in both:
            kind, status, message = self.refusal(tenant.report_health)
            assert (kind, status) == (confhub.InvalidRequest, 400)
            assert "needs a client id" in message


def test_metrics_count_rollouts_by_state_and_consumers(http: httpx.Client, tenant: str) -> None:
    start(http, tenant, bake="1h")
    http.get(f"/v1/tenants/{tenant}/configs/models/a", headers={"X-Confhub-Client": "m-1"})
    text = http.get("/metrics").text
    running = [line for line in text.splitlines()
               if line.startswith('confhub_rollouts{state="running"}')]
    assert running and float(running[0].split()[-1]) >= 1
    consumers = [line for line in text.splitlines() if line.startswith("confhub_consumers ")]
    assert consumers and float(consumers[0].split()[-1]) >= 1


def test_the_async_client_reads_as_a_consumer(server_url: str, http: httpx.Client,
                                              tenant: str) -> None:
    import asyncio

    from confhub.remote import AsyncRemoteHub

    start(http, tenant, strategy="all-at-once", bake="1h")

    async def read() -> tuple[object, object]:
        async with AsyncRemoteHub(server_url) as hub:
            member = hub.tenant(tenant, client_id="async-1")
            staged = await member.get("models", "a")
            plain = await hub.tenant(tenant).get("models", "a")
            return staged.value, plain.value

    assert asyncio.run(read()) == ({"tokens": 2}, {"tokens": 1})
