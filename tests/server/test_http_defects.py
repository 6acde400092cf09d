"""HTTP defects found by trying confhub as a new user and with other people's clients
(issue 11): each test reproduces one, against the shared real server."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

KEY = "/v1/tenants/{tenant}/configs/models/m"


class TestAllowHeader:
    @pytest.mark.parametrize(("method", "path", "allowed"), [
        ("POST", "/config/a/b", {"GET", "HEAD", "PUT", "DELETE"}),
        ("POST", "/v1/tenants/default/configs/a/b", {"GET", "HEAD", "PUT", "PATCH", "DELETE"}),
        ("DELETE", "/v1/tenants", {"GET", "HEAD", "POST"}),
        ("GET", "/v1/tenants/default/txn", {"POST"}),
    ])
    def test_405_lists_every_allowed_method(self, http: httpx.Client, method: str, path: str,
                                            allowed: set[str]) -> None:
        r = http.request(method, path)
        assert r.status_code == 405
        assert {m.strip() for m in r.headers["allow"].split(",")} == allowed
        assert r.json()["error"]["code"] == "method_not_allowed"


class TestIfMatch:
    def _put(self, http: httpx.Client, tenant: str, value: object,
             if_match: str | None = None) -> httpx.Response:
        headers = {"if-match": if_match} if if_match is not None else {}
        return http.put(KEY.format(tenant=tenant), json=value, headers=headers)

    def test_a_weak_tag_never_matches(self, http: httpx.Client, tenant: str) -> None:
        assert self._put(http, tenant, 1).status_code == 201
        r = self._put(http, tenant, 2, 'W/"1"')
        assert r.status_code == 412
        assert r.json()["error"]["details"]["current_version"] == 1
        assert http.get(KEY.format(tenant=tenant)).json()["value"] == 1

    def test_a_list_matches_when_any_member_does(self, http: httpx.Client,
                                                 tenant: str) -> None:
        self._put(http, tenant, 1)
        self._put(http, tenant, 2)
        r = self._put(http, tenant, 3, '"1", "2"')
        assert r.status_code == 200, r.text
        assert r.json()["version"] == 3
        r = self._put(http, tenant, 4, '"1", "2"')
        assert r.status_code == 412
        assert r.json()["error"]["details"]["current_version"] == 3

    def test_a_single_strong_tag_still_works(self, http: httpx.Client, tenant: str) -> None:
        self._put(http, tenant, 1)
        assert self._put(http, tenant, 2, '"1"').status_code == 200
        assert self._put(http, tenant, 3, '"1"').status_code == 412

    def test_a_malformed_tag_is_a_400(self, http: httpx.Client, tenant: str) -> None:
        self._put(http, tenant, 1)
        assert self._put(http, tenant, 2, '"1", banana').status_code == 400


def test_resolved_with_a_version_is_refused_not_ignored(http: httpx.Client,
                                                        tenant: str) -> None:
    http.put(KEY.format(tenant=tenant), json={"a": 1})
    http.put(KEY.format(tenant=tenant), json={"a": 2})
    r = http.get(KEY.format(tenant=tenant), params={"resolved": "true", "version": 1})
    assert r.status_code == 400
    assert "version" in r.json()["error"]["message"]


def test_a_txn_put_without_value_is_refused(http: httpx.Client, tenant: str) -> None:
    r = http.post(f"/v1/tenants/{tenant}/txn", json={"ops": [
        {"op": "put", "namespace": "models", "key": "ok", "value": 1},
        {"op": "put", "namespace": "models", "key": "m"}]})
    assert r.status_code == 400
    assert "op 1" in r.json()["error"]["message"] and "value" in r.json()["error"]["message"]
    assert http.get(f"/v1/tenants/{tenant}/configs/models/ok").status_code == 404
    # an explicit null is still a value
    r = http.post(f"/v1/tenants/{tenant}/txn", json={"ops": [
        {"op": "put", "namespace": "models", "key": "m", "value": None}]})
    assert r.status_code == 200


def test_a_bad_metadata_header_is_named(http: httpx.Client, tenant: str) -> None:
    r = http.put(KEY.format(tenant=tenant), json=1, headers={"x-confhub-metadata": "{bad"})
    assert r.status_code == 400
    message = r.json()["error"]["message"]
    assert "X-Confhub-Metadata" in message and "body" not in message


class TestAuditFieldCaps:
    def test_a_huge_reason_is_refused(self, http: httpx.Client, tenant: str) -> None:
        r = http.put(KEY.format(tenant=tenant), json=1,
                     headers={"x-confhub-reason": "x" * 100_000})
        assert r.status_code == 400
        assert "reason" in r.json()["error"]["message"]
        assert http.get(KEY.format(tenant=tenant)).status_code == 404

    def test_a_huge_author_is_refused(self, http: httpx.Client, tenant: str) -> None:
        r = http.put(KEY.format(tenant=tenant), json=1, headers={"x-confhub-author": "a" * 201})
        assert r.status_code == 400

    def test_a_huge_txn_reason_is_refused(self, http: httpx.Client, tenant: str) -> None:
        r = http.post(f"/v1/tenants/{tenant}/txn", json={"reason": "r" * 1001, "ops": [
            {"op": "put", "namespace": "models", "key": "m", "value": 1}]})
        assert r.status_code == 400

    def test_a_reason_at_the_limit_is_kept(self, http: httpx.Client, tenant: str) -> None:
        r = http.put(KEY.format(tenant=tenant), json=1, headers={"x-confhub-reason": "y" * 1000})
        assert r.status_code == 201
        history = http.get(KEY.format(tenant=tenant) + "/history").json()["items"]
        assert history[0]["reason"] == "y" * 1000


class TestErrorsSpeakJson:
    def test_a_failed_json_patch_test_names_json_types(self, http: httpx.Client,
                                                       tenant: str) -> None:
        http.put(KEY.format(tenant=tenant), json={"a": 1})
        r = http.patch(KEY.format(tenant=tenant),
                       content=json.dumps([{"op": "test", "path": "/a", "value": "x"}]),
                       headers={"content-type": "application/json-patch+json"})
        assert r.status_code == 400
        message = r.json()["error"]["message"]
        assert "<class" not in message
        assert 'the value there is 1, not "x"' in message

    def test_a_bad_token_id_is_explained(self, http: httpx.Client) -> None:
        r = http.delete("/v1/tokens/nosuchid")
        assert r.status_code == 400
        message = r.json()["error"]["message"]
        assert "12 hexadecimal digits" in message and "pattern" not in message

    def test_a_bad_env_name_is_explained(self, http: httpx.Client, tenant: str) -> None:
        r = http.get(KEY.format(tenant=tenant), params={"env": "no spaces"})
        assert r.status_code == 400
        assert "pattern" not in r.json()["error"]["message"]


@pytest.fixture(scope="module")
def doc(server_url: str) -> dict[str, Any]:
    return dict(httpx.get(server_url + "/openapi.json").json())


class TestOpenApiTruth:
    def test_no_fastapi_422_is_promised(self, doc: dict[str, Any]) -> None:
        text = json.dumps(doc)
        assert "HTTPValidationError" not in text

    def test_every_reference_resolves(self, doc: dict[str, Any]) -> None:
        text = json.dumps(doc)
        assert "#/$defs/" not in text
        schemas = doc["components"]["schemas"]
        refs = {part.split('"')[0]
                for part in text.split('"$ref": "#/components/schemas/')[1:]}
        assert refs and all(ref in schemas for ref in refs), refs - set(schemas)

    def test_the_txn_op_schema_is_reachable(self, doc: dict[str, Any]) -> None:
        body = doc["paths"]["/v1/tenants/{tenant}/txn"]["post"]["requestBody"]
        items = body["content"]["application/json"]["schema"]["properties"]["ops"]["items"]
        assert items == {"$ref": "#/components/schemas/TxnOp"}

    def test_bearer_auth_and_write_headers_are_documented(self, doc: dict[str, Any]) -> None:
        assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
        put = doc["paths"]["/v1/tenants/{tenant}/configs/{namespace}/{key}"]["put"]
        names = {p["name"] for p in put["parameters"]}
        assert {"If-Match", "If-None-Match", "X-Confhub-Reason", "X-Confhub-Author",
                "X-Confhub-Metadata"} <= names

    def test_audit_jsonl_is_documented(self, doc: dict[str, Any]) -> None:
        ok = doc["paths"]["/v1/tenants/{tenant}/audit"]["get"]["responses"]["200"]
        assert "application/x-ndjson" in ok["content"]

    def test_parameter_rules_are_stated(self, doc: dict[str, Any]) -> None:
        diff = doc["paths"]["/v1/tenants/{tenant}/configs/{namespace}/{key}/diff"]["get"]
        for param in diff["parameters"]:
            if param["name"] in ("from", "to"):
                assert param["schema"]["minimum"] == 1
            if param["name"] == "env":
                assert "pattern" in json.dumps(param["schema"])


def test_head_is_answered_wherever_get_is(http: httpx.Client, tenant: str) -> None:
    assert http.head("/v1/tenants").status_code == 200
    r = http.head(f"/v1/tenants/{tenant}/configs")
    assert r.status_code == 200 and r.content == b""
    with httpx.Client(base_url=str(http.base_url), timeout=10) as client:
        r = client.head(f"/v1/tenants/{tenant}/watch")  # ends after its headers
        assert r.status_code == 200 and r.content == b""
