"""Validation over HTTP: 422 in the one error shape, warnings on writes, dry runs, schemas."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

SCHEMA: dict[str, Any] = {
    "type": "object", "additionalProperties": False,
    "properties": {"depth": {"type": "integer", "minimum": 1, "maximum": 64},
                   "size": {"type": "integer"}, "order": {"type": "integer"}}}
RULES = [{"name": "size-covers-depth", "expr": "self.size >= self.depth * 32",
          "message": "size must be at least depth * 32", "severity": "error"},
         {"expr": "!has(self.order) || self.order <= 16", "message": "slow", "path": "/order",
          "severity": "warning"}]


@pytest.fixture
def strict(http: httpx.Client, tenant: str) -> str:
    answer = http.put(f"/v1/tenants/{tenant}/schemas/params",
                      json={"schema": SCHEMA, "rules": RULES})
    assert answer.status_code == 200, answer.text
    return tenant


def key(tenant: str) -> str:
    return f"/v1/tenants/{tenant}/configs/params/agent"


def test_a_refused_write_is_422_with_errors_in_details(http: httpx.Client, strict: str) -> None:
    answer = http.put(key(strict), json={"depth": 65, "size": 64, "x": 1})
    assert answer.status_code == 422
    error = answer.json()["error"]
    assert set(error) == {"code", "message", "details"}
    assert error["code"] == "validation_failed"
    paths = {e["path"] for e in error["details"]["errors"]}
    assert paths == {"/depth", "/size", "/x"}
    assert error["details"]["warnings"] == []
    rule = next(e for e in error["details"]["errors"] if e["path"] == "/size")
    assert rule["rule"] == "size-covers-depth" and rule["severity"] == "error"
    assert http.get(key(strict)).status_code == 404


def test_warnings_come_with_a_successful_write(http: httpx.Client, strict: str) -> None:
    answer = http.put(key(strict), json={"depth": 1, "size": 32, "order": 20})
    assert answer.status_code == 201
    assert answer.headers["x-confhub-warnings"] == "1"
    assert [w["path"] for w in answer.json()["warnings"]] == ["/order"]
    quiet = http.put(key(strict), json={"depth": 1, "size": 32})
    assert "x-confhub-warnings" not in quiet.headers and "warnings" not in quiet.json()


def test_dry_runs_validate_and_diff_without_writing(http: httpx.Client, strict: str) -> None:
    http.put(key(strict), json={"depth": 1, "size": 32})
    bad = http.put(key(strict), params={"dry_run": "true"}, json={"depth": 2, "size": 32})
    assert bad.status_code == 422
    good = http.patch(key(strict), params={"dry_run": "true"}, json={"size": 64},
                      headers={"content-type": "application/merge-patch+json"})
    assert good.status_code == 200 and good.json()["dry_run"] is True
    assert good.json()["diff"] == [{"op": "replace", "path": "/size", "value": 64}]
    assert http.get(key(strict)).json()["version"] == 1


def test_txn_is_refused_as_a_whole(http: httpx.Client, strict: str) -> None:
    ops = [{"op": "put", "namespace": "params", "key": "a", "value": {"depth": 1, "size": 32}},
           {"op": "put", "namespace": "params", "key": "b", "value": {"depth": 3, "size": 32}}]
    answer = http.post(f"/v1/tenants/{strict}/txn", json={"ops": ops})
    assert answer.status_code == 422
    assert [e["key"] for e in answer.json()["error"]["details"]["errors"]] == ["b"]
    assert http.get(f"/v1/tenants/{strict}/configs/params/a").status_code == 404


def test_validate_endpoint(http: httpx.Client, strict: str) -> None:
    answer = http.post(f"/v1/tenants/{strict}/validate",
                       json={"namespace": "params", "key": "agent",
                             "value": {"depth": 2, "size": 32}})
    assert answer.status_code == 200
    body = answer.json()
    assert body["valid"] is False and body["errors"][0]["path"] == "/size"
    assert http.get(key(strict)).status_code == 404


def test_schema_routes(http: httpx.Client, strict: str) -> None:
    base = f"/v1/tenants/{strict}/schemas"
    got = http.get(f"{base}/params").json()
    assert (got["version"], got["scope"], got["schema"]) == (1, strict, SCHEMA)
    assert [s["namespace"] for s in http.get(base).json()["items"]] == ["params"]
    http.put(f"{base}/params", json={"schema": SCHEMA})
    history = http.get(f"{base}/params/history").json()["items"]
    assert [s["version"] for s in history] == [2, 1]
    back = http.post(f"{base}/params/rollback", json={"to_version": 1})
    assert back.status_code == 200 and back.json()["rollback_of"] == 1
    assert http.delete(f"{base}/params").json()["deleted"] is True
    assert http.get(f"{base}/params").status_code == 404


@pytest.mark.parametrize("body", [
    {"schema": {"type": "integr"}},
    {"schema": {}, "rules": [{"expr": "self.a >", "message": "m"}]},
    {"schema": {}, "rules": [{"expr": "x.a > 1"}]},
    {"schema": {"$ref": "https://example.com/s.json"}},
    {"schema": {}, "rules": "nope"},
    {"rules": []},
])
def test_bad_schemas_are_400_never_500(http: httpx.Client, tenant: str,
                                       body: dict[str, Any]) -> None:
    answer = http.put(f"/v1/tenants/{tenant}/schemas/params", json=body)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["code"] in ("invalid_request", "invalid_value")


def test_a_schema_existing_values_break_is_422_listing_keys(http: httpx.Client,
                                                          tenant: str) -> None:
    http.put(f"/v1/tenants/{tenant}/configs/params/old", json={"depth": 100})
    answer = http.put(f"/v1/tenants/{tenant}/schemas/params", json={"schema": SCHEMA})
    assert answer.status_code == 422
    assert answer.json()["error"]["details"]["keys"] == ["params/old"]
