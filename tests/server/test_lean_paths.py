"""The lean paths (server/fastpath.py ``LeanPaths``: single-key PUT, cached single-key GET)
answer exactly what the FastAPI routes answer, and still do what the layers they skip do:
request id, metrics, the access policy.

Two servers on two fresh databases get the same requests: one as ``serve`` builds it (lean
paths), one with the fast paths off (every request through the layers and the routes).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from confhub.hub import open_embedded
from confhub.server.app import create_app
from confhub.server.auth import Limits
from confhub.server.testing import serve_in_thread

BIG = "x" * (5 * 1024 * 1024)
LONG = "/v1/tenants/default/configs/app/db"
CASES: list[tuple[str, str, dict[str, str | bytes], bytes]] = [
    ("create", "/config/app/db", {}, b'{"pool": 5}'),
    ("update", "/config/app/db", {}, b'{"pool": 6}'),
    ("long form", "/v1/tenants/default/configs/app/db", {}, b'{"pool": 7}'),
    ("If-Match right", "/config/app/db", {"If-Match": '"3"'}, b'{"pool": 8}'),
    ("If-Match wrong", "/config/app/db", {"If-Match": '"1"'}, b'{"pool": 9}'),
    ("If-None-Match on an existing key", "/config/app/db", {"If-None-Match": "*"}, b"1"),
    ("If-Match and If-None-Match", "/config/app/x", {"If-Match": '"1"',
                                                     "If-None-Match": "*"}, b"1"),
    ("bad JSON", "/config/app/x", {}, b'{"pool": '),
    ("NaN", "/config/app/x", {}, b"NaN"),
    ("empty body", "/config/app/x", {}, b""),
    ("not UTF-8", "/config/app/x", {}, b'"\xff"'),
    ("text/plain", "/config/app/x", {"Content-Type": "text/plain"}, b"1"),
    ("too large", "/config/app/x", {}, f'"{BIG}"'.encode()),
    ("bad key name", "/config/app/a%20b", {}, b"1"),
    ("reserved namespace", "/config/.rollouts/x", {}, b"1"),
    ("bad metadata header", "/config/app/x", {"X-Confhub-Metadata": "[1]"}, b"1"),
    ("audit headers", "/config/app/y", {
        "X-Confhub-Reason": "réason".encode(), "X-Confhub-Author": "ann",
        "X-Confhub-Metadata": '{"ticket": "OPS-1"}'}, b'{"a": [1, 2.5, null, true, "\\u00e9"]}'),
    ("client request id", "/config/app/z", {"X-Request-Id": "req-42"}, b"1"),
    ("unknown tenant", "/v1/tenants/nobody/configs/app/x", {}, b"1"),
    ("env layer", f"{LONG}?env=prod", {}, b'{"pool": 20}'),
    ("env layer again", f"{LONG}?env=prod", {}, b"21"),
    ("env layer and If-Match", f"{LONG}?env=prod", {"If-Match": '"2"'}, b"22"),
    ("env layer, wrong If-Match", f"{LONG}?env=prod", {"If-Match": '"9"'}, b"23"),
    ("env=base", f"{LONG}?env=base", {}, b'{"pool": 24}'),
    ("env and dry run", f"{LONG}?env=prod&dry_run=true", {}, b"25"),
    ("percent-encoded env", f"{LONG}?env=%70rod", {}, b"26"),
    ("bad env name", f"{LONG}?env=a..b", {}, b"1"),
    ("empty env", f"{LONG}?env=", {}, b"1"),
    ("simple surface ignores env", "/config/app/db?env=prod", {}, b'{"pool": 27}'),
]
NAMED_BY_FASTAPI = {"bad key name": "'a b'", "reserved namespace": "'.rollouts'"}
COMPARED_HEADERS = ("content-type", "content-length", "etag", "location",
                    "x-confhub-warnings", "connection", "www-authenticate", "retry-after")
READS: list[tuple[str, str, str, dict[str, str]]] = [
    ("GET", "cached", "/config/app/db", {}),
    ("GET", "long form", "/v1/tenants/default/configs/app/db", {}),
    ("HEAD", "cached", "/config/app/db", {}),
    ("GET", "If-None-Match current", "/config/app/db", {"If-None-Match": '"4"'}),
    ("GET", "If-None-Match old", "/config/app/db", {"If-None-Match": '"1", W/"2"'}),
    ("GET", "If-None-Match any", "/config/app/db", {"If-None-Match": "*"}),
    ("HEAD", "If-None-Match current", "/config/app/db", {"If-None-Match": '"4"'}),
    ("GET", "a consumer", "/config/app/db", {"X-Confhub-Client": "svc-1"}),
    ("GET", "missing", "/config/app/nope", {}),
    ("GET", "client request id", "/config/app/db", {"X-Request-Id": "read-1"}),
    ("GET", "env layer", f"{LONG}?env=prod", {}),
    ("HEAD", "env layer", f"{LONG}?env=prod", {}),
    ("GET", "env layer, If-None-Match", f"{LONG}?env=prod", {"If-None-Match": '"2"'}),
    ("GET", "env=base", f"{LONG}?env=base", {}),
    ("GET", "env layer without the key", f"{LONG}?env=staging", {}),
    ("GET", "env and another parameter", f"{LONG}?env=prod&resolved=true", {}),
    ("GET", "bad env name", f"{LONG}?env=a..b", {}),
    ("GET", "simple surface ignores env", "/config/app/db?env=prod", {}),
]


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[tuple[str, str]]:
    lean = create_app(open_embedded(str(tmp_path / "lean.db")), close_hub=True)
    layered = create_app(open_embedded(str(tmp_path / "full.db")), close_hub=True,
                         fast_paths=False)
    with serve_in_thread(lean) as lean_url, serve_in_thread(layered) as layered_url:
        yield lean_url, layered_url


def _normal(answer: httpx.Response) -> dict[str, Any]:
    body = re.sub(rb'"(created_at|updated_at)":"[^"]+"', b'"\\1":"T"', answer.content)
    return {"status": answer.status_code, "body": body,
            "headers": {h: answer.headers.get(h) for h in COMPARED_HEADERS}}


def test_lean_put_answers_what_the_route_answers(servers: tuple[str, str]) -> None:
    lean_url, layered_url = servers
    with httpx.Client(base_url=lean_url) as lean, httpx.Client(base_url=layered_url) as full:
        for name, path, headers, body in CASES:
            sent: dict[str, str | bytes] = {"Content-Type": "application/json", **headers}
            mine, theirs = (c.put(path, content=body, headers=sent) for c in (lean, full))
            if name in NAMED_BY_FASTAPI:  # FastAPI checks its path first, in its own words
                assert mine.status_code == theirs.status_code == 400
                assert mine.json()["error"]["code"] == "invalid_name"
                assert NAMED_BY_FASTAPI[name] in theirs.json()["error"]["message"]
            else:
                assert _normal(mine) == _normal(theirs), name
            request_id = mine.headers["x-request-id"]
            assert request_id == headers.get("X-Request-Id", request_id) and request_id
        # the write carried the audit fields the headers gave
        history = lean.get("/v1/tenants/default/configs/app/y/history").json()["items"][0]
        assert (history["reason"], history["author"], history["metadata"]) == (
            "réason", "ann", {"ticket": "OPS-1"})


def test_lean_read_answers_what_the_route_answers(servers: tuple[str, str]) -> None:
    lean_url, layered_url = servers
    with httpx.Client(base_url=lean_url) as lean, httpx.Client(base_url=layered_url) as full:
        for client in (lean, full):
            for i in range(4):
                client.put("/config/app/db", json={"pool": i, "name": "é"})
            for i in range(2):
                client.put(f"{LONG}?env=prod", json={"pool": 10 + i})
            client.get("/config/app/db")  # cached from now on
        for method, name, path, headers in READS:
            mine, theirs = (c.request(method, path, headers=headers) for c in (lean, full))
            assert _normal(mine) == _normal(theirs), f"{method} {name}"
            assert mine.headers["x-request-id"] == headers.get(
                "X-Request-Id", mine.headers["x-request-id"])
        hits = _sample(lean.get("/metrics").text, "confhub_http_cached_reads_total")
        assert hits >= 7  # the cached reads above were answered by the lean path
        prod = lean.get(f"{LONG}?env=prod")
        assert prod.json()["value"] == {"pool": 11} and prod.json()["env"] == "prod"
        assert _sample(lean.get("/metrics").text, "confhub_http_cached_reads_total") == \
            hits + 1  # an env layer's read is answered from the cache too


def _sample(text: str, name: str, **labels: str) -> float:
    for line in text.splitlines():
        if line.startswith((name + "{", name + " ")) and all(
                f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_lean_put_is_counted_like_any_answer(servers: tuple[str, str]) -> None:
    lean_url, _ = servers
    with httpx.Client(base_url=lean_url) as http:
        for i in range(3):
            assert http.put(f"/config/m/k{i}", json=i).status_code == 201
        assert http.put("/config/m/k0", content=b"{", headers={
            "Content-Type": "application/json"}).status_code == 400
        layered = http.put("/v1/tenants/default/configs/m/k0?env=prod", json="p")
        assert layered.status_code == 201 and layered.json()["env"] == "prod"
        text = http.get("/metrics").text
    route = "/config/{namespace}/{key}"
    assert _sample(text, "confhub_http_requests_total", method="PUT", route=route,
                   status="201") == 3
    assert _sample(text, "config_errors_total", code="invalid_request") == 1
    assert _sample(text, "config_changes_total", tenant="default", operation="put") == 4
    assert _sample(text, "confhub_http_lean_writes_total") == 5  # the env layer's PUT too


def test_lean_paths_apply_the_access_policy(tmp_path: Path) -> None:
    hub = open_embedded(str(tmp_path / "auth.db"))
    admin, _ = hub.create_token(tenant="default", role="admin", name="ann")
    viewer, _ = hub.create_token(tenant="default", role="viewer", name="vic")
    with serve_in_thread(create_app(hub, close_hub=True)) as url, \
            httpx.Client(base_url=url) as http:
        anonymous = http.put("/config/app/db", json=1)
        assert anonymous.status_code == 401
        assert anonymous.headers["www-authenticate"] == 'Bearer realm="confhub"'
        refused = http.put("/config/app/db", json=1,
                           headers={"Authorization": f"Bearer {viewer}"})
        assert refused.status_code == 403
        written = http.put("/config/app/db", json=1,
                           headers={"Authorization": f"Bearer {admin}"})
        assert written.status_code == 201
        for _ in range(2):  # the second read is answered from the cache
            assert http.get("/config/app/db").status_code == 401
            read = http.get("/config/app/db", headers={"Authorization": f"Bearer {viewer}"})
            assert read.status_code == 200 and read.json()["value"] == 1
        audit = http.get("/v1/tenants/default/audit",
                         headers={"Authorization": f"Bearer {admin}"}).json()["items"]
        assert ("ann", "config.put") in [(a["actor"], a["action"]) for a in audit]


WATCHES: list[tuple[str, str, dict[str, str]]] = [
    ("the tenant", "/v1/tenants/default/watch", {}),
    ("filtered", "/v1/tenants/default/watch?namespace=app&key=db&env=base", {}),
    ("resumed", "/v1/tenants/default/watch", {"Last-Event-ID": "1"}),
    ("since", "/v1/tenants/default/watch?since=0", {}),
    ("client request id", "/v1/tenants/default/watch", {"X-Request-Id": "watch-1"}),
    ("missing tenant", "/v1/tenants/nobody/watch", {}),
    ("bad Last-Event-ID", "/v1/tenants/default/watch", {"Last-Event-ID": "x"}),
    ("since too far", "/v1/tenants/default/watch?since=99", {}),
    ("unknown parameter", "/v1/tenants/default/watch?colour=red", {}),
    ("bad namespace", "/v1/tenants/default/watch?namespace=a..b", {}),
]


def _first_event(client: httpx.Client, path: str, headers: dict[str, str]) -> dict[str, Any]:
    """The answer's status and headers, and its body up to the end of the first event."""
    with client.stream("GET", path, headers=headers) as answer:
        body = b""
        for chunk in answer.iter_bytes():
            body += chunk
            if answer.status_code != 200 or b"\r\n\r\n" in body:
                break
        return {"status": answer.status_code, "body": body.split(b"\r\n\r\n")[0],
                "headers": {h: answer.headers.get(h) for h in (
                    "content-type", "cache-control", "x-accel-buffering", "content-length")},
                "request id": answer.headers.get("x-request-id")}


def test_lean_watch_answers_what_the_route_answers(servers: tuple[str, str]) -> None:
    lean_url, layered_url = servers
    with httpx.Client(base_url=lean_url) as lean, httpx.Client(base_url=layered_url) as full:
        for client in (lean, full):
            client.put("/config/app/db", json={"pool": 1})
            client.put("/config/app/db", json={"pool": 2})
        statuses = []
        for name, path, headers in WATCHES:
            mine, theirs = (_first_event(c, path, headers) for c in (lean, full))
            request_id = mine.pop("request id")
            assert request_id == headers.get("X-Request-Id", request_id) and request_id
            theirs.pop("request id")
            assert mine == theirs, name
            statuses.append(mine["status"])
        deadline = time.monotonic() + 10  # each stream is counted once the server saw it end
        while _sample(metrics := lean.get("/metrics").text, "confhub_watch_streams") and \
                time.monotonic() < deadline:
            time.sleep(0.02)
    assert statuses.count(404) == 1 and statuses.count(400) >= 2  # the errors were compared
    route = "/v1/tenants/{tenant}/watch"
    for status in set(statuses):  # each stream counted under the route's template
        assert _sample(metrics, "confhub_http_requests_total", method="GET", route=route,
                       status=str(status)) == statuses.count(status)
    assert _sample(metrics, "config_errors_total", code="not_found") >= 1
    assert _sample(metrics, "confhub_watch_streams") == 0  # every stream closed and counted


def test_lean_watch_applies_the_access_policy(tmp_path: Path) -> None:
    hub = open_embedded(str(tmp_path / "auth.db"))
    viewer, _ = hub.create_token(tenant="default", role="viewer", name="vic")
    app = create_app(hub, close_hub=True, limits=Limits(watchers=1))
    auth = {"Authorization": f"Bearer {viewer}"}
    with serve_in_thread(app) as url, httpx.Client(base_url=url) as http:
        anonymous = _first_event(http, "/v1/tenants/default/watch", {})
        assert anonymous["status"] == 401
        with http.stream("GET", "/v1/tenants/default/watch", headers=auth) as first:
            assert first.status_code == 200
            chunks = first.iter_bytes()  # (kept: a dropped iterator would close the stream)
            next(chunks)  # the stream is open: it holds the token's one slot
            second = _first_event(http, "/v1/tenants/default/watch", auth)
            assert second["status"] == 429
            assert b"at most 1 open watch streams" in second["body"]
        # the slot is free again once the first stream is gone
        deadline = time.monotonic() + 10
        while (status := _first_event(http, "/v1/tenants/default/watch", auth)["status"]) \
                == 429 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert status == 200
