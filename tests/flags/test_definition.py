"""The flags namespace's built-in schema: flagd's flag format, checked at every write."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

import confhub
from confhub.flags import check_entry, plan_import

GOOD = {"state": "ENABLED", "variants": {"on": True, "off": False}, "defaultVariant": "off"}

# (definition, words the error must contain)
BAD: list[tuple[Any, str]] = [
    ({**GOOD, "variants": {"on": True, "off": "no"}},
     "variant 'off' is a string but variant 'on' is a boolean"),
    ({**GOOD, "defaultVariant": "maybe"}, "defaultVariant 'maybe' is not one of its variants"),
    ({**GOOD, "state": "ON"}, "state must be ENABLED or DISABLED"),
    ({**GOOD, "variants": {}}, "variants must be a non-empty object"),
    ({"state": "ENABLED", "defaultVariant": "on"}, "variants must be a non-empty object"),
    ({**GOOD, "variants": {"on": True, "off": None}}, "variant 'off' is null"),
    ({**GOOD, "defaultVariant": 3}, "defaultVariant must be a variant name or null"),
    ({**GOOD, "targeting": {"in_list": [1]}}, "unknown operator 'in_list'"),
    ({**GOOD, "targeting": "on"}, "targeting must be a JsonLogic object"),
    ({**GOOD, "metadata": {"owner": {"team": "x"}}}, "metadata 'owner' must be a string"),
    ({**GOOD, "rollout": 5}, "unknown field 'rollout'"),
    ([1, 2], "must be an object with state and variants"),
]


@pytest.fixture
def cfg(tmp_path: Any) -> Iterator[confhub.Tenant]:
    with confhub.open(f"sqlite:///{tmp_path / 'flags.db'}") as hub:
        yield hub.tenant()


@pytest.mark.parametrize(("definition", "words"), BAD, ids=[w for _, w in BAD])
def test_a_bad_flag_is_refused_naming_the_flag(cfg: confhub.Tenant, definition: Any,
                                               words: str) -> None:
    with pytest.raises(confhub.ValidationFailed) as caught:
        cfg.set("flags", "new-checkout", definition)
    assert caught.value.http_status == 422
    assert "flag 'new-checkout'" in str(caught.value) and words in str(caught.value)
    assert caught.value.details["errors"][0]["key"] == "new-checkout"
    with pytest.raises(confhub.NotFound):
        cfg.get("flags", "new-checkout")


def test_valid_flags_of_every_type_are_stored(cfg: confhub.Tenant) -> None:
    for key, variants in {"b": {"on": True, "off": False}, "s": {"a": "x", "b": ""},
                          "n": {"one": 1, "half": 0.5}, "o": {"x": {"k": 1}, "y": [1]}}.items():
        definition = {"state": "ENABLED", "variants": variants, "defaultVariant": None,
                      "targeting": {"if": [{"sem_ver": [{"var": "v"}, ">=", "1.2"]},
                                           next(iter(variants)), None]},
                      "metadata": {"owner": "shop", "ttl": 3, "beta": True}}
        assert cfg.set("flags", key, definition).version == 1


def test_an_env_overlay_is_checked_resolved_over_base(cfg: confhub.Tenant) -> None:
    cfg.set("flags", "f", GOOD)
    cfg.set("flags", "f", {"state": "DISABLED"}, env="production")  # fine merged over base
    with pytest.raises(confhub.ValidationFailed, match="defaultVariant 'nope'"):
        cfg.set("flags", "f", {"defaultVariant": "nope"}, env="staging")


def test_validate_reports_flag_problems_without_writing(cfg: confhub.Tenant) -> None:
    report = cfg.validate("flags", "f", {**GOOD, "defaultVariant": "x"})
    assert not report.valid
    assert report.errors[0].path == "/defaultVariant" and report.errors[0].rule == "flagd"


def test_other_namespaces_are_not_flags(cfg: confhub.Tenant) -> None:
    assert cfg.set("features", "f", {"state": "whatever"}).version == 1


def test_the_reserved_keys_hold_evaluators_and_set_metadata(cfg: confhub.Tenant) -> None:
    cfg.set("flags", "flagset.evaluators", {"staff": {"ends_with": [{"var": "email"}, "@a"]}})
    cfg.set("flags", "flagset.metadata", {"flagSetId": "shop"})
    with pytest.raises(confhub.ValidationFailed, match="is reserved"):
        cfg.set("flags", "flagset.other", GOOD)
    with pytest.raises(confhub.ValidationFailed, match="flag set metadata 'x' must be"):
        cfg.set("flags", "flagset.metadata", {"x": [1]})
    with pytest.raises(confhub.ValidationFailed, match="shared evaluator 'bad'"):
        cfg.set("flags", "flagset.evaluators", {"bad": {"nope": []}})


def test_the_whole_testkit_is_valid(testkit: dict[str, Any]) -> None:
    """flagd's own test flags (error cases included) are all storable: confhub refuses only
    what flagd cannot load, and leaves bad operator arguments to evaluation, as flagd does."""
    assert all(check_entry(k, v) == [] for k, v in testkit["flags"].items())


def test_an_import_with_one_bad_flag_writes_nothing(cfg: confhub.Tenant) -> None:
    document = {"flags": {"a": GOOD, "b": {**GOOD, "defaultVariant": "x"},
                          "c": {**GOOD, "state": "OFF"}}}
    with pytest.raises(confhub.ValidationFailed) as caught:
        plan_import(document)
    assert [e["key"] for e in caught.value.details["errors"]] == ["b", "c"]
    with pytest.raises(confhub.InvalidName):
        plan_import({"flags": {"not a key!": GOOD}})
    with pytest.raises(confhub.InvalidRequest, match="unknown top-level"):
        plan_import({"flags": {}, "flagz": {}})


def test_over_http_a_bad_flag_is_a_422_naming_it(server_url: str) -> None:
    with httpx.Client(base_url=server_url) as http:
        answer = http.put("/v1/tenants/default/configs/flags/dark-mode",
                          json={**GOOD, "variants": {"on": "yes", "off": False}})
        assert answer.status_code == 422
        error = answer.json()["error"]
        assert error["code"] == "validation_failed"
        assert "flag 'dark-mode'" in error["message"]
        assert http.get("/v1/tenants/default/configs/flags/dark-mode").status_code == 404
