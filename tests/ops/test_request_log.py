"""``serve --log-format json``: one line per request, with the request id the audit log also
records, and never a value or a secret."""

from __future__ import annotations

import json
import re
import time
import uuid
from datetime import UTC, datetime

import httpx

from .conftest import Served


def log_lines(served: Served, request_id: str) -> list[dict[str, object]]:
    """The request's JSON log lines, waiting (briefly) until the worker has written them."""
    deadline = time.monotonic() + 10
    while True:
        found = []
        for line in served.log.read_text().splitlines():
            if line.startswith("{") and request_id in line:
                found.append(json.loads(line))
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def test_each_request_is_one_json_line_with_its_id_route_and_status(served: Served) -> None:
    request_id = "req-" + uuid.uuid4().hex
    before = datetime.now(UTC).replace(microsecond=0)
    r = httpx.put(f"{served.url}/v1/tenants/default/configs/logs/a", json={"x": 1},
                  headers={"X-Request-Id": request_id})
    assert r.status_code in (200, 201)
    assert r.headers["x-request-id"] == request_id
    [line] = log_lines(served, request_id)
    assert line["method"] == "PUT"
    assert line["route"] == "/v1/tenants/{tenant}/configs/{namespace}/{key}"
    assert line["tenant"] == "default"
    assert line["status"] == r.status_code
    assert isinstance(line["duration_ms"], float)
    # ISO 8601 in UTC to the millisecond, the time of this request
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", str(line["time"]))
    assert before <= datetime.fromisoformat(str(line["time"])) <= datetime.now(UTC)


def test_a_request_without_an_id_gets_one_and_the_audit_log_has_it(served: Served) -> None:
    r = httpx.put(f"{served.url}/config/logs/b", json={"y": 2})
    request_id = r.headers["x-request-id"]
    assert len(request_id) >= 16
    assert log_lines(served, request_id)[0]["tenant"] == "default"
    audit = httpx.get(f"{served.url}/v1/tenants/default/audit", params={"limit": 1000}).json()
    records = audit.get("records", audit.get("items", audit)) if isinstance(audit, dict) \
        else audit
    assert any(rec.get("request_id") == request_id and rec.get("target") == "logs/b"
               for rec in records)


def test_no_value_or_secret_reaches_the_log(served: Served) -> None:
    canary = "canary-" + uuid.uuid4().hex
    request_id = "req-" + uuid.uuid4().hex
    httpx.put(f"{served.url}/config/logs/c?note={canary}", json={"password": canary},
              headers={"X-Request-Id": request_id, "Authorization": f"Bearer {canary}",
                       "X-Confhub-Reason": canary})
    assert log_lines(served, request_id)
    assert canary not in served.log.read_text()


def test_an_error_answer_is_logged_with_its_code(served: Served) -> None:
    request_id = "req-" + uuid.uuid4().hex
    r = httpx.get(f"{served.url}/v1/tenants/no-such-tenant/configs/a/b",
                  headers={"X-Request-Id": request_id})
    assert r.status_code == 404
    [line] = log_lines(served, request_id)
    assert line["status"] == 404 and line["error"] == "not_found"


def test_request_ids_are_unique_across_workers(served: Served) -> None:
    """Both workers make up ids for requests that bring none: every id differs (a generator
    seeded before the workers were forked gave each worker the same sequence)."""
    ids = []
    for _ in range(120):  # a new connection each time, so both workers answer some
        r = httpx.get(f"{served.url}/healthz", headers={"Connection": "close"})
        ids.append(r.headers["x-request-id"])
    assert len(set(ids)) == len(ids)
