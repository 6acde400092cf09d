"""``GET /v1/tenants/{t}/watch`` against real server processes: the event stream itself,
resume by ``Last-Event-ID``, restarts, several instances on one database, many watchers."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from httpx_sse import ServerSentEvent, aconnect_sse, connect_sse

import confhub
from confhub.server.testing import free_port, live_server


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """One server with a short heartbeat (0.2 s) so keep-alives can be observed."""
    db = tmp_path_factory.mktemp("sse") / "confhub.db"
    with live_server(db, heartbeat=0.2) as url:
        yield url, db


@pytest.fixture
def url(served: tuple[str, Path]) -> str:
    return served[0]


@pytest.fixture
def tenant(url: str) -> str:
    name = "w-" + uuid.uuid4().hex[:10]
    assert httpx.post(f"{url}/v1/tenants", json={"id": name}).status_code == 201
    return name


def _put(url: str, tenant: str, ns: str, key: str, value: Any, **params: Any) -> None:
    r = httpx.put(f"{url}/v1/tenants/{tenant}/configs/{ns}/{key}", json=value, params=params)
    assert r.status_code in (200, 201), r.text


def _read(url: str, tenant: str, count: int, *, headers: dict[str, str] | None = None,
          **params: Any) -> list[ServerSentEvent]:
    """The first ``count`` events of a stream (keep-alive comments are not events)."""
    events: list[ServerSentEvent] = []
    with httpx.Client(base_url=url, timeout=20) as client, connect_sse(
            client, "GET", f"/v1/tenants/{tenant}/watch", params=params,
            headers=headers or {}) as source:
        assert source.response.status_code == 200
        assert source.response.headers["content-type"].startswith("text/event-stream")
        for sse in source.iter_sse():
            if _is_event(sse):
                events.append(sse)
            if len(events) == count:
                break
    return events


def _is_event(sse: ServerSentEvent) -> bool:
    """httpx-sse reports a keep-alive comment as an empty message; SSE dispatches nothing."""
    return bool(sse.data)


class TestStream:
    def test_ready_then_one_event_per_revision_with_all_its_changes(self, url: str,
                                                                      tenant: str) -> None:
        r = httpx.post(f"{url}/v1/tenants/{tenant}/txn", json={"ops": [
            {"op": "put", "namespace": "routing", "key": "a", "value": 1},
            {"op": "put", "namespace": "models", "key": "b", "value": {"x": 2}}]})
        assert r.status_code == 200, r.text
        _put(url, tenant, "models", "b", {"x": 3})
        ready, first, second = _read(url, tenant, 3, since=0)
        assert (ready.event, ready.id, json.loads(ready.data)) == ("ready", "0", {"revision": 0})
        assert (first.event, first.id) == ("message", "1")
        body = json.loads(first.data)
        assert body["revision"] == 1
        assert [(c["namespace"], c["key"], c["value"]) for c in body["changes"]] == [
            ("models", "b", {"x": 2}), ("routing", "a", 1)]
        change = body["changes"][0]
        assert {k: change[k] for k in ("tenant", "env", "version", "op")} == {
            "tenant": tenant, "env": "base", "version": 1, "op": "put"}
        assert json.loads(second.data)["changes"][0]["value"] == {"x": 3}

    def test_a_filter_keeps_only_matching_changes_of_a_revision(self, url: str,
                                                                 tenant: str) -> None:
        httpx.post(f"{url}/v1/tenants/{tenant}/txn", json={"ops": [
            {"op": "put", "namespace": "routing", "key": "a", "value": 1},
            {"op": "put", "namespace": "models", "key": "b", "value": 2}]})
        _put(url, tenant, "models", "b", 3, env="production")
        _, event, other = _read(url, tenant, 3, since=0, namespace="routing", env="base")
        assert [c["key"] for c in json.loads(event.data)["changes"]] == ["a"]
        # The production change does not match; the stream says how far it has looked.
        assert (other.event, other.id) == ("progress", "2")

    def test_last_event_id_resumes_right_after_it(self, url: str, tenant: str) -> None:
        for i in range(5):
            _put(url, tenant, "models", "a", i)
        events = _read(url, tenant, 3, headers={"Last-Event-ID": "3"}, since=0)
        assert [e.id for e in events] == ["3", "4", "5"]  # ready at 3, then 4 and 5
        assert [json.loads(e.data).get("changes", [{}])[0].get("value") for e in events[1:]] \
            == [3, 4]

    def test_without_since_it_starts_at_the_current_revision(self, url: str,
                                                              tenant: str) -> None:
        _put(url, tenant, "models", "a", 1)
        (ready,) = _read(url, tenant, 1)
        assert (ready.event, ready.id) == ("ready", "1")

    def test_idle_streams_send_keep_alive_comments(self, url: str, tenant: str) -> None:
        lines: list[str] = []
        with httpx.stream("GET", f"{url}/v1/tenants/{tenant}/watch", timeout=10) as r:
            for line in r.iter_lines():
                lines.append(line)
                if sum(1 for x in lines if x.startswith(":")) >= 2:
                    break
        assert any(line.startswith(": ping") for line in lines)

    def test_deleting_the_tenant_ends_the_stream_with_an_error_event(self, url: str,
                                                                      tenant: str) -> None:
        timer = threading.Timer(0.3, lambda: httpx.delete(f"{url}/v1/tenants/{tenant}"))
        timer.start()
        ready, error = _read(url, tenant, 2)
        timer.join()
        assert ready.event == "ready"
        assert error.event == "error"
        assert json.loads(error.data)["error"]["code"] == "not_found"


class TestErrors:
    def test_unknown_tenant_is_404_before_any_stream(self, url: str) -> None:
        r = httpx.get(f"{url}/v1/tenants/nobody/watch")
        assert r.status_code == 404
        assert r.json()["error"]["code"] == "not_found"

    @pytest.mark.parametrize("params,headers", [
        ({"key": "a"}, {}),
        ({"namespace": "bad name"}, {}),
        ({"since": "-1"}, {}),
        ({"since": "x"}, {}),
        ({}, {"Last-Event-ID": "abc"}),
    ])
    def test_bad_requests_are_400(self, url: str, tenant: str, params: dict[str, str],
                                  headers: dict[str, str]) -> None:
        r = httpx.get(f"{url}/v1/tenants/{tenant}/watch", params=params, headers=headers)
        assert r.status_code == 400, r.text
        assert r.json()["error"]["message"]

    def test_an_unknown_query_parameter_is_ignored_as_on_every_route(self, url: str,
                                                                      tenant: str) -> None:
        _put(url, tenant, "models", "a", 1)
        ready, event = _read(url, tenant, 2, since=0, namespace="models", utm_source="x")
        assert ready.event == "ready"
        assert [c["key"] for c in json.loads(event.data)["changes"]] == ["a"]

    def test_history_removed_by_retention_is_410(self, served: tuple[str, Path],
                                                 tenant: str) -> None:
        url, db = served
        for i in range(4):
            _put(url, tenant, "models", "a", i)
        # Retention is not built yet; mark revisions up to 3 as compacted the way it will.
        with sqlite3.connect(db) as conn:
            conn.execute("UPDATE confhub_tenants SET compacted_revision = 3 WHERE id = ?",
                         (tenant,))
        r = httpx.get(f"{url}/v1/tenants/{tenant}/watch", params={"since": 1})
        assert r.status_code == 410
        assert r.json()["error"]["details"]["compacted_revision"] == 3
        assert _read(url, tenant, 1, since=3)[0].event == "ready"  # at the boundary is fine


class TestResume:
    def test_a_watcher_that_disconnects_mid_burst_resumes_exactly_once(
            self, url: str, tenant: str) -> None:
        total = 1000
        writer = threading.Thread(target=lambda: _burst(url, tenant, total))
        got: list[int] = []
        values: list[int] = []
        with httpx.Client(base_url=url, timeout=30) as client:
            writer.start()
            last = "0"
            while len(got) < total:
                with connect_sse(client, "GET", f"/v1/tenants/{tenant}/watch",
                                 headers={"Last-Event-ID": last}) as source:
                    taken = 0
                    for sse in source.iter_sse():
                        if not _is_event(sse):
                            continue
                        last = sse.id
                        if sse.event == "message":
                            for change in json.loads(sse.data)["changes"]:
                                got.append(change["revision"])
                                values.append(change["value"])
                            taken += 1
                        if taken == 150 or len(got) == total:
                            break  # hang up in the middle of the burst
            writer.join()
        assert got == list(range(1, total + 1))
        assert values == list(range(total))

    def test_the_client_resumes_across_a_server_restart(self, tmp_path: Path) -> None:
        db, port = tmp_path / "c.db", free_port()
        seen: list[confhub.Change] = []
        done = threading.Event()

        def record(change: confhub.Change) -> None:
            seen.append(change)
            if len(seen) == 9:
                done.set()

        with live_server(db, port=port) as url:
            hub = confhub.open(url)
            cfg = hub.tenant()
            handle = cfg.watch(record, since=0)
            for i in range(3):
                cfg.set("models", "a", i)
        offline = confhub.open(str(db))  # the server is down: write behind its back
        for i in range(3, 6):
            offline.tenant().set("models", "a", i)
        offline.close()
        try:
            with live_server(db, port=port):
                for i in range(6, 9):
                    cfg.set("models", "a", i)
                assert done.wait(20), [c.value for c in seen]
        finally:
            handle.stop()
            hub.close()
        assert [c.revision for c in seen] == list(range(1, 10))
        assert [c.value for c in seen] == list(range(9))


def _burst(url: str, tenant: str, total: int) -> None:
    with httpx.Client(base_url=url, timeout=30) as client:
        for i in range(total):
            r = client.put(f"/v1/tenants/{tenant}/configs/load/k", json=i)
            assert r.status_code in (200, 201)


class TestManyWatchers:
    def test_a_hundred_watchers_each_get_every_revision_in_order(self, url: str,
                                                                  tenant: str) -> None:
        watchers, writes = 100, 20

        async def watcher(client: httpx.AsyncClient, opened: asyncio.Queue[None]) -> list[int]:
            out: list[int] = []
            async with aconnect_sse(client, "GET", f"/v1/tenants/{tenant}/watch") as source:
                async for sse in source.aiter_sse():
                    if sse.event == "ready":
                        opened.put_nowait(None)
                    elif sse.event == "message" and _is_event(sse):
                        out.append(int(sse.id))
                        if len(out) == writes:
                            return out
            return out

        async def main() -> list[list[int]]:
            limits = httpx.Limits(max_connections=watchers + 10)
            async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:
                opened: asyncio.Queue[None] = asyncio.Queue()
                tasks = [asyncio.create_task(watcher(client, opened)) for _ in range(watchers)]
                for _ in range(watchers):
                    await asyncio.wait_for(opened.get(), 30)
                for i in range(writes):
                    r = await client.put(f"/v1/tenants/{tenant}/configs/m/k", json=i)
                    assert r.status_code in (200, 201)
                return await asyncio.wait_for(asyncio.gather(*tasks), 60)

        results = asyncio.run(main())
        assert all(r == list(range(1, writes + 1)) for r in results)


class TestSeveralInstances:
    @pytest.mark.parametrize("storage", ["sqlite", "postgres"])
    def test_a_write_through_one_instance_reaches_watchers_on_another(
            self, storage: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
        db = (str(request.getfixturevalue("pg_url")) if storage == "postgres"
              else str(tmp_path / "shared.db"))
        seen: list[confhub.Change] = []
        with live_server(db) as first, live_server(db) as second:
            watching, writing = confhub.open(first), confhub.open(second)
            handle = watching.tenant().watch(seen.append, since=0)
            try:
                for i in range(30):
                    writing.tenant().set("models", "a", i)
                _wait(lambda: len(seen) >= 30)
            finally:
                handle.stop()
                watching.close()
                writing.close()
        assert [c.value for c in seen] == list(range(30))
        assert [c.revision for c in seen] == list(range(1, 31))


def _wait(check: Any, timeout: float = 20.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)
