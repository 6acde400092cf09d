"""One error shape for every failure, and no 500 for anything a client can send."""

from __future__ import annotations

import httpx
import pytest

from confhub.errors import (
    ConfhubError,
    NotFound,
    TooLarge,
    ValidationFailed,
    VersionConflict,
)


def assert_error(r: httpx.Response, status: int, code: str | None = None) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert isinstance(body["error"]["details"], dict)
    if code is not None:
        assert body["error"]["code"] == code


@pytest.mark.parametrize("error", [
    NotFound("x", key="k"), VersionConflict("x", current_version=2), TooLarge("x", size=1),
    ValidationFailed("x", report={"valid": False}), ConfhubError("x"),
])
def test_every_error_class_serialises_to_the_shape(error: ConfhubError) -> None:
    body = error.to_dict()
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == error.code


class TestBadRequests:
    def test_unknown_route_is_json_404(self, http: httpx.Client) -> None:
        assert_error(http.get("/nowhere"), 404, "not_found")

    def test_wrong_method_is_json_405(self, http: httpx.Client) -> None:
        assert_error(http.post("/config/a/b"), 405, "method_not_allowed")

    def test_malformed_json_is_400(self, http: httpx.Client, ns: str) -> None:
        assert_error(http.put(f"/config/{ns}/k", content=b'{"a":',
                              headers={"content-type": "application/json"}), 400,
                     "invalid_request")

    def test_empty_body_is_400(self, http: httpx.Client, ns: str) -> None:
        assert_error(http.put(f"/config/{ns}/k", content=b""), 400)

    def test_nan_is_not_json(self, http: httpx.Client, ns: str) -> None:
        assert_error(http.put(f"/config/{ns}/k", content=b'{"a": NaN}'), 400)

    def test_invalid_utf8_is_400(self, http: httpx.Client, ns: str) -> None:
        assert_error(http.put(f"/config/{ns}/k", content=b'"\xff\xfe"'), 400)

    def test_lone_surrogate_is_400(self, http: httpx.Client, ns: str) -> None:
        assert_error(http.put(f"/config/{ns}/k", content=b'{"a": "\\ud800"}'), 400)

    def test_wrong_media_type_is_415(self, http: httpx.Client, ns: str) -> None:
        assert_error(http.put(f"/config/{ns}/k", content=b"a=b",
                              headers={"content-type": "application/x-www-form-urlencoded"}),
                     415, "unsupported_media_type")

    def test_patch_with_plain_text_is_415(self, http: httpx.Client, ns: str) -> None:
        assert_error(http.patch(f"/v1/tenants/default/configs/{ns}/k", content=b"{}",
                                headers={"content-type": "text/plain"}), 415)

    def test_huge_body_is_413(self, http: httpx.Client, ns: str) -> None:
        assert_error(http.put(f"/config/{ns}/k", content=b'"' + b"x" * (5 << 20) + b'"'), 413,
                     "too_large")

    def test_value_over_one_mib_is_413(self, http: httpx.Client, ns: str) -> None:
        assert_error(http.put(f"/config/{ns}/k", content=b'"' + b"x" * (1 << 20) + b'"'), 413)

    @pytest.mark.parametrize("depth", [70, 300, 100_000])
    def test_deep_nesting_is_400(self, http: httpx.Client, ns: str, depth: int) -> None:
        assert_error(http.put(f"/config/{ns}/k", content=b"[" * depth + b"]" * depth), 400)

    @pytest.mark.parametrize("name", ["a..b", "-a", "%00", "caf%C3%A9", "%F0%9F%92%A9",
                                      "a%20b", "x" * 200, "%ff", "a%2Fb"])
    def test_odd_names_are_4xx(self, http: httpx.Client, name: str) -> None:
        r = http.put(f"/config/ns/{name}", json=1)
        assert r.status_code in (400, 404), r.text
        assert_error(r, r.status_code)

    @pytest.mark.parametrize("query", [
        "version=-1", "version=abc", "version=99999999999999999999999999",
        "version=1e3", "env=%00", "env=" + "e" * 300, "resolved=maybe",
    ])
    def test_absurd_query_parameters_are_400(self, http: httpx.Client, query: str) -> None:
        assert_error(http.get(f"/v1/tenants/default/configs/ns/k?{query}"), 400)

    @pytest.mark.parametrize("query", ["since=-5", "limit=0", "limit=10000000000",
                                       "since=1e400"])
    def test_absurd_feed_parameters_are_400(self, http: httpx.Client, query: str) -> None:
        assert_error(http.get(f"/v1/tenants/default/changes?{query}"), 400)

    @pytest.mark.parametrize("header", ['"abc"', "W/", '"-1"', '"' + "9" * 40 + '"'])
    def test_bad_if_match_is_400(self, http: httpx.Client, ns: str, header: str) -> None:
        assert_error(http.put(f"/config/{ns}/k", json=1, headers={"if-match": header}), 400)

    def test_bad_metadata_header_is_400(self, http: httpx.Client, ns: str) -> None:
        assert_error(http.put(f"/config/{ns}/k", json=1,
                              headers={"x-confhub-metadata": "[1"}), 400)

    @pytest.mark.parametrize("body", [b"{}", b"[]", b'{"ops": "x"}', b'{"ops": [{"op": "x"}]}',
                                      b'{"ops": [{"op": "put"}]}', b'{"ops": []}'])
    def test_bad_txn_bodies_are_400(self, http: httpx.Client, body: bytes) -> None:
        assert_error(http.post("/v1/tenants/default/txn", content=body), 400)

    def test_conflict_details_carry_current_version(self, http: httpx.Client, ns: str) -> None:
        http.put(f"/config/{ns}/k", json=1)
        r = http.put(f"/config/{ns}/k", json=1, headers={"if-none-match": "*"})
        assert_error(r, 412, "version_conflict")
        assert r.json()["error"]["details"]["current_version"] == 1
