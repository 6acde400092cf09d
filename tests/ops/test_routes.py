"""Retention, compaction and doctor over HTTP (the routes and their errors)."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import httpx

from confhub.server.testing import server_process

from .conftest import Served


def test_retention_can_be_set_read_and_applied_over_http(served: Served) -> None:
    tenant = "r-" + uuid.uuid4().hex[:8]
    with httpx.Client(base_url=served.url) as http:
        assert http.post("/v1/tenants", json={"id": tenant}).status_code == 201
        for i in range(4):
            http.put(f"/v1/tenants/{tenant}/configs/m/a", json={"i": i})
        put = http.put(f"/v1/tenants/{tenant}/retention", json={"keep_last": 1})
        assert put.status_code == 200
        assert put.json() == {"tenant": tenant, "namespace": None, "keep_last": 1,
                              "keep_for_seconds": None}
        ns = http.put(f"/v1/tenants/{tenant}/retention/flags",
                      json={"keep_last": 5, "keep_for_seconds": 86400})
        assert ns.json()["namespace"] == "flags"
        listed = http.get(f"/v1/tenants/{tenant}/retention").json()["policies"]
        assert [p["namespace"] for p in listed] == [None, "flags"]
        report = http.post(f"/v1/tenants/{tenant}/compact").json()
        assert report["tenants"][tenant] == {"removed": 3, "compacted_revision": 4}
        gone = http.get(f"/v1/tenants/{tenant}/changes", params={"since": 1})
        assert gone.status_code == 410 and gone.json()["error"]["code"] == "gone"
        info = http.get(f"/v1/tenants/{tenant}").json()
        assert info["compacted_revision"] == 4


def test_bad_retention_input_is_a_400_naming_the_field(served: Served) -> None:
    with httpx.Client(base_url=served.url) as http:
        for body, field in (({"keep_last": 0}, "keep_last"),
                            ({"keep_for_seconds": 10**30}, "keep_for_seconds"),
                            ({"keep_lats": 3}, "keep_lats")):
            answer = http.put("/v1/tenants/default/retention", json=body)
            assert answer.status_code == 400, answer.text
            assert field in answer.text
        assert http.put("/v1/tenants/nobody/retention",
                        json={"keep_last": 1}).status_code == 404


def test_doctor_over_http_reports_the_servers_checks(served: Served) -> None:
    httpx.put(served.url + "/config/doc/a", json={"x": 1})
    report = httpx.get(served.url + "/v1/doctor").json()
    assert report["ok"] is True and report["backend"] == "sqlite"
    assert report["checked"]["tenants"] >= 1 and report["checked"]["versions"] >= 1


def test_serve_compacts_in_the_background_and_stops_cleanly(tmp_path: Path) -> None:
    """``--compact-interval``: a retention policy is applied without anyone calling compact,
    and the compaction thread, executor and store are shut down on SIGTERM without error."""
    with server_process(tmp_path / "c.db", options=["--compact-interval", "0.2"]) as running, \
            httpx.Client(base_url=running.url) as http:
        for i in range(4):
            assert http.put("/config/m/a", json={"i": i}).status_code in (200, 201)
        assert http.put("/v1/tenants/default/retention", json={"keep_last": 1}).status_code \
            == 200
        deadline = time.monotonic() + 30
        while http.get("/v1/tenants/default").json().get("compacted_revision", 0) < 4:
            assert time.monotonic() < deadline, "no background compaction within 30 s"
            time.sleep(0.05)
        versions = http.get("/v1/tenants/default/configs/m/a/history").json()
        assert [v["version"] for v in versions["items"]] == [4]
