"""OFREP over HTTP, against a real ``confhub serve``: the protocol's shapes to the letter,
and the official Python OFREP provider (``openfeature-provider-ofrep``) unchanged."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from openfeature import api
from openfeature.contrib.provider.ofrep import OFREPProvider
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import Reason

import confhub
from confhub.server.testing import live_server

FLAGS: dict[str, Any] = {
    "flagset.metadata": {"flagSetId": "shop"},
    "flagset.evaluators": {"staff": {"ends_with": [{"var": "email"}, "@acme.com"]}},
    "new-checkout": {"state": "ENABLED", "variants": {"on": True, "off": False},
                     "defaultVariant": "off",
                     "targeting": {"if": [{"$ref": "staff"}, "on", None]},
                     "metadata": {"owner": "payments"}},
    "banner": {"state": "ENABLED", "variants": {"red": "#f00", "blue": "#00f"},
               "defaultVariant": "red",
               "targeting": {"fractional": [["red", 50], ["blue", 50]]}},
    "limits": {"state": "ENABLED", "variants": {"low": 10, "high": 1000},
               "defaultVariant": "low"},
    "ratio": {"state": "ENABLED", "variants": {"a": 0.25, "b": 0.75}, "defaultVariant": "b"},
    "layout": {"state": "ENABLED", "variants": {"grid": {"cols": 3}}, "defaultVariant": "grid"},
    "old-ui": {"state": "DISABLED", "variants": {"on": True}, "defaultVariant": "on"},
    "code-default": {"state": "ENABLED", "variants": {"on": True, "off": False},
                     "defaultVariant": None},
    "broken": {"state": "ENABLED", "variants": {"on": True}, "defaultVariant": "on",
               "targeting": {"/": [1, 0]}},
    "stray": {"state": "ENABLED", "variants": {"on": True}, "defaultVariant": "on",
              "targeting": {"if": [True, "elsewhere", "on"]}},
}


def _load(cfg: Any, flags: dict[str, Any]) -> None:
    with cfg.transaction(reason="test flags") as tx:
        for key, value in flags.items():
            tx.set("flags", key, value)


def _tenant(server_url: str) -> str:
    name = "ofrep-" + uuid.uuid4().hex[:8]
    with confhub.open(server_url) as hub:
        hub.create_tenant(name)
        _load(hub.tenant(name), FLAGS)
    return name


@pytest.fixture
def base(server_url: str) -> str:
    """An OFREP base URL on a fresh tenant holding FLAGS (the tenant path form)."""
    return f"{server_url}/v1/tenants/{_tenant(server_url)}"


def post(url: str, body: Any = None, **kwargs: Any) -> httpx.Response:
    return httpx.post(url, json={"context": {}} if body is None else body, **kwargs)


class TestSingleEvaluation:
    def test_a_targeting_match_has_value_variant_reason_and_metadata(self, base: str) -> None:
        answer = post(f"{base}/ofrep/v1/evaluate/flags/new-checkout",
                      {"context": {"targetingKey": "u1", "email": "kim@acme.com"}})
        assert answer.status_code == 200
        assert answer.headers["content-type"] == "application/json"
        assert answer.json() == {"key": "new-checkout", "value": True, "variant": "on",
                                 "reason": "TARGETING_MATCH",
                                 "metadata": {"flagSetId": "shop", "owner": "payments",
                                              "version": 1}}

    def test_a_flag_without_targeting_is_static(self, base: str) -> None:
        body = post(f"{base}/ofrep/v1/evaluate/flags/limits").json()
        assert (body["value"], body["variant"], body["reason"]) == (10, "low", "STATIC")

    def test_targeting_that_returns_null_falls_back_with_reason_default(self, base: str) -> None:
        body = post(f"{base}/ofrep/v1/evaluate/flags/new-checkout",
                    {"context": {"targetingKey": "u1", "email": "kim@else.com"}}).json()
        assert (body["value"], body["variant"], body["reason"]) == (False, "off", "DEFAULT")

    def test_a_fractional_choice_is_a_split(self, base: str) -> None:
        body = post(f"{base}/ofrep/v1/evaluate/flags/banner",
                    {"context": {"targetingKey": "user-7"}}).json()
        assert body["reason"] == "SPLIT" and body["value"] in ("#f00", "#00f")

    def test_disabled_and_code_default_flags_carry_no_value(self, base: str) -> None:
        for key, reason in (("old-ui", "DISABLED"), ("code-default", "DEFAULT")):
            body = post(f"{base}/ofrep/v1/evaluate/flags/{key}").json()
            assert "value" not in body and body["reason"] == reason and body["variant"] == ""

    def test_an_unknown_flag_is_404_flag_not_found(self, base: str) -> None:
        answer = post(f"{base}/ofrep/v1/evaluate/flags/nope")
        assert answer.status_code == 404
        assert answer.json()["key"] == "nope"
        assert answer.json()["errorCode"] == "FLAG_NOT_FOUND"
        assert "nope" in answer.json()["errorDetails"]

    def test_a_targeting_rule_that_fails_is_400_parse_error(self, base: str) -> None:
        answer = post(f"{base}/ofrep/v1/evaluate/flags/broken")
        assert answer.status_code == 400
        assert answer.json()["errorCode"] == "PARSE_ERROR" and answer.json()["key"] == "broken"

    def test_targeting_that_names_no_variant_is_400_general(self, base: str) -> None:
        answer = post(f"{base}/ofrep/v1/evaluate/flags/stray")
        assert answer.status_code == 400
        assert answer.json()["errorCode"] == "GENERAL"
        assert "elsewhere" in answer.json()["errorDetails"]

    @pytest.mark.parametrize("body", [b"{not json", b"[1]", b'{"context": 5}',
                                      b'{"context": {"targetingKey": 7}}'])
    def test_a_malformed_request_is_400_invalid_context(self, base: str, body: bytes) -> None:
        answer = httpx.post(f"{base}/ofrep/v1/evaluate/flags/limits", content=body,
                            headers={"content-type": "application/json"})
        assert answer.status_code == 400
        assert answer.json()["errorCode"] == "INVALID_CONTEXT"
        assert answer.json()["key"] == "limits"

    def test_an_oversized_request_is_413(self, base: str) -> None:
        answer = post(f"{base}/ofrep/v1/evaluate/flags/limits",
                      {"context": {"targetingKey": "u", "blob": "x" * 300_000}})
        assert answer.status_code == 413 and answer.json()["error"]["code"] == "too_large"

    def test_a_request_without_context_is_an_empty_context(self, base: str) -> None:
        for body in ({}, None):
            answer = httpx.post(f"{base}/ofrep/v1/evaluate/flags/limits", json=body)
            assert answer.status_code == 200 and answer.json()["value"] == 10


class TestBulkEvaluation:
    def test_every_flag_is_answered_with_the_set_metadata_and_an_etag(self, base: str) -> None:
        answer = post(f"{base}/ofrep/v1/evaluate/flags",
                      {"context": {"targetingKey": "u1", "email": "kim@acme.com"}})
        assert answer.status_code == 200
        body = answer.json()
        assert body["metadata"] == {"flagSetId": "shop"}
        by_key = {item["key"]: item for item in body["flags"]}
        assert set(by_key) == {k for k in FLAGS if not k.startswith("flagset.")}
        assert by_key["new-checkout"]["value"] is True
        assert by_key["broken"]["errorCode"] == "PARSE_ERROR" and "value" not in by_key["broken"]
        assert by_key["ratio"]["value"] == 0.75
        assert answer.headers["etag"].startswith('"')

    def test_if_none_match_gives_304_until_something_changes(self, server_url: str) -> None:
        tenant = _tenant(server_url)
        url = f"{server_url}/v1/tenants/{tenant}/ofrep/v1/evaluate/flags"
        context = {"context": {"targetingKey": "u1"}}
        first = post(url, context)
        etag = first.headers["etag"]
        again = post(url, context, headers={"if-none-match": etag})
        assert again.status_code == 304 and again.content == b""
        assert again.headers["etag"] == etag
        other = post(url, {"context": {"targetingKey": "u1", "email": "kim@acme.com"}},
                     headers={"if-none-match": etag})
        assert other.status_code == 200  # another context evaluates differently
        with confhub.open(server_url) as hub:
            hub.tenant(tenant).patch("flags", "limits", {"defaultVariant": "high"})
        changed = post(url, context, headers={"if-none-match": etag})
        assert changed.status_code == 200 and changed.headers["etag"] != etag
        assert {f["key"]: f for f in changed.json()["flags"]}["limits"]["value"] == 1000

    def test_a_malformed_bulk_request_is_400_invalid_context(self, base: str) -> None:
        answer = httpx.post(f"{base}/ofrep/v1/evaluate/flags", content=b'{"context": []}')
        assert answer.status_code == 400
        assert answer.json() == {"errorCode": "INVALID_CONTEXT",
                                 "errorDetails": answer.json()["errorDetails"]}

    def test_a_tenant_without_flags_answers_an_empty_list(self, server_url: str) -> None:
        name = "empty-" + uuid.uuid4().hex[:8]
        with confhub.open(server_url) as hub:
            hub.create_tenant(name)
        body = post(f"{server_url}/v1/tenants/{name}/ofrep/v1/evaluate/flags").json()
        assert body == {"flags": [], "metadata": {}}


class TestOfficialProvider:
    """``openfeature-provider-ofrep`` against confhub serve, through the OpenFeature SDK."""

    @pytest.fixture
    def client(self, base: str) -> Iterator[Any]:
        domain = "ofrep-" + uuid.uuid4().hex[:8]
        api.set_provider_and_wait(OFREPProvider(base), domain)
        yield api.get_client(domain)

    def test_every_type_resolves_with_variant_reason_and_version(self, client: Any) -> None:
        staff = EvaluationContext("u1", {"email": "kim@acme.com"})
        details = client.get_boolean_details("new-checkout", False, staff)
        assert (details.value, details.variant, details.reason) == (True, "on",
                                                                    Reason.TARGETING_MATCH)
        assert details.flag_metadata["version"] == 1
        assert client.get_integer_value("limits", 0) == 10
        assert client.get_float_value("ratio", 0.0) == 0.75
        assert client.get_object_value("layout", {}) == {"cols": 3}
        assert client.get_string_details("banner", "", EvaluationContext("u2")).reason \
            == Reason.SPLIT

    def test_disabled_flags_give_the_code_default(self, client: Any) -> None:
        details = client.get_boolean_details("old-ui", False)
        assert details.value is False and details.reason == Reason.DISABLED

    def test_errors_reach_the_application_as_openfeature_errors(self, client: Any) -> None:
        missing = client.get_boolean_details("nope", True)
        assert (missing.value, missing.error_code) == (True, ErrorCode.FLAG_NOT_FOUND)
        wrong = client.get_string_details("new-checkout", "x")
        assert (wrong.value, wrong.error_code) == ("x", ErrorCode.TYPE_MISMATCH)
        broken = client.get_boolean_details("broken", False)
        assert (broken.value, broken.error_code) == (False, ErrorCode.PARSE_ERROR)


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    db: Path = tmp_path_factory.mktemp("ofrep-auth") / "confhub.db"
    with confhub.open(f"sqlite:///{db}") as hub:
        hub.create_tenant("acme")
        _load(hub.tenant("acme"), {"limits": FLAGS["limits"]})
        _load(hub.tenant(), {"limits": {**FLAGS["limits"], "defaultVariant": "high"}})
        tokens = {
            "acme": hub.create_token(tenant="acme", role="viewer")[0],
            "flags-only": hub.create_token(tenant="acme", role="viewer",
                                           namespaces=["flags"])[0],
            "other-ns": hub.create_token(tenant="acme", role="viewer",
                                         namespaces=["models"])[0],
            "super": hub.create_token(role="superadmin")[0],
        }
    with live_server(db) as url:
        yield {"url": url, **tokens}


class TestTenantFromToken:
    def _eval(self, secured: dict[str, str], who: str | None, path: str = "") -> httpx.Response:
        headers = {"authorization": f"Bearer {secured[who]}"} if who else {}
        return post(f"{secured['url']}{path}/ofrep/v1/evaluate/flags/limits", headers=headers)

    def test_the_tokens_tenant_is_evaluated(self, secured: dict[str, str]) -> None:
        assert self._eval(secured, "acme").json()["value"] == 10
        assert self._eval(secured, "flags-only").json()["value"] == 10

    def test_an_all_tenant_token_evaluates_the_default_tenant(self,
                                                              secured: dict[str, str]) -> None:
        assert self._eval(secured, "super").json()["value"] == 1000
        assert self._eval(secured, "super", "/v1/tenants/acme").json()["value"] == 10

    def test_no_token_is_401_and_a_foreign_tenant_looks_missing(self,
                                                               secured: dict[str, str]) -> None:
        assert self._eval(secured, None).status_code == 401
        assert self._eval(secured, "acme", "/v1/tenants/default").status_code == 404

    def test_a_token_without_the_flags_namespace_is_403(self, secured: dict[str, str]) -> None:
        assert self._eval(secured, "other-ns").status_code == 403

    def test_the_official_provider_sends_the_token(self, secured: dict[str, str]) -> None:
        domain = "ofrep-auth-" + uuid.uuid4().hex[:8]
        token = secured["acme"]
        api.set_provider_and_wait(OFREPProvider(
            secured["url"], headers_factory=lambda: {"Authorization": f"Bearer {token}"}),
            domain)
        assert api.get_client(domain).get_integer_value("limits", 0) == 10
