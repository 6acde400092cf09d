"""validation.py on its own: compiling documents, the issue's rules, hostile schemas.

No storage here: these are the pure functions every write path calls.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from confhub import InvalidRequest, TooLarge
from confhub.validation import (
    MAX_SCHEMA_BYTES,
    CompiledSchema,
    annotations_of,
    compile_document,
    document_text,
    make_document,
)

from .conftest import GOOD, PARAMS_RULES, PARAMS_SCHEMA


def compiled(schema: Any, rules: Any = None, key_pattern: str | None = None) -> CompiledSchema:
    return compile_document(document_text(make_document(schema, rules, key_pattern)))


PARAMS = compiled(PARAMS_SCHEMA, PARAMS_RULES)


def errors_of(value: Any) -> list[tuple[str, str | None]]:
    return [(e.path, e.rule) for e in PARAMS.validate(value).errors]


class TestIssueRules:
    """The rules of issue 5, as written, at their boundaries."""

    @pytest.mark.parametrize(("field", "low", "high"), [
        ("max_membrane_depth", 1, 64), ("esn_reservoir_size", 64, 16384),
        ("bseries_max_order", 1, 32), ("cache_ttl_seconds", 1, 86400),
    ])
    def test_ranges_are_inclusive(self, field: str, low: int, high: int) -> None:
        base = {"max_membrane_depth": 1, "esn_reservoir_size": 16384}
        for ok in (low, high):
            assert PARAMS.validate({**base, field: ok}).valid, (field, ok)
        for bad in (low - 1, high + 1):
            report = PARAMS.validate({**base, field: bad})
            assert [e.path for e in report.errors] == [f"/{field}"], (field, bad)
            assert str(bad) in report.errors[0].message

    def test_max_membrane_depth_must_be_an_integer(self) -> None:
        assert errors_of({"max_membrane_depth": 2.5}) == [
            ("/max_membrane_depth", "schema:/properties/max_membrane_depth/type")]

    def test_reservoir_must_cover_depth_times_32(self) -> None:
        assert PARAMS.validate({"max_membrane_depth": 4, "esn_reservoir_size": 128}).valid
        report = PARAMS.validate({"max_membrane_depth": 5, "esn_reservoir_size": 128})
        assert [(e.path, e.rule) for e in report.errors] == [
            ("/esn_reservoir_size", "reservoir-covers-depth")]
        message = report.errors[0].message
        assert "esn_reservoir_size must be at least max_membrane_depth * 32" in message
        assert "value 128" in message and "self.esn_reservoir_size >=" in message

    def test_enable_caching_requires_ttl(self) -> None:
        assert PARAMS.validate({"enable_caching": True, "cache_ttl_seconds": 5}).valid
        assert PARAMS.validate({"enable_caching": False}).valid
        report = PARAMS.validate({"enable_caching": True})
        assert [(e.path, e.rule) for e in report.errors] == [
            ("/cache_ttl_seconds", "caching-needs-ttl")]
        assert "value absent" in report.errors[0].message

    def test_unknown_parameter_names_are_refused_by_name(self) -> None:
        report = PARAMS.validate({**GOOD, "max_membrane_dept": 3})
        assert [e.path for e in report.errors] == ["/max_membrane_dept"]
        assert "unknown field 'max_membrane_dept'" in report.errors[0].message
        assert "max_membrane_depth" in report.errors[0].message  # lists the known names

    def test_warning_rules_do_not_make_a_value_invalid(self) -> None:
        report = PARAMS.validate({**GOOD, "bseries_max_order": 20})
        assert report.valid
        assert [(w.path, w.severity) for w in report.warnings] == [
            ("/bseries_max_order", "warning")]

    def test_all_problems_are_reported_at_once(self) -> None:
        report = PARAMS.validate({"max_membrane_depth": 65, "esn_reservoir_size": 10,
                                  "enable_caching": True, "extra": 1})
        assert {e.path for e in report.errors} == {
            "/max_membrane_depth", "/esn_reservoir_size", "/cache_ttl_seconds", "/extra"}


class TestRules:
    def test_a_rule_that_cannot_be_evaluated_fails_with_the_reason(self) -> None:
        schema = compiled({}, [{"expr": "self.size >= self.depth * 32", "message": "too small"}])
        report = schema.validate({"size": 10})
        assert not report.valid
        assert "no field 'depth'" in report.errors[0].message
        assert report.errors[0].path == "/size"  # inferred from the first field named

    def test_a_rule_returning_a_non_boolean_fails(self) -> None:
        report = compiled({}, [{"expr": "self.a", "message": "m"}]).validate({"a": 3})
        assert "not a boolean" in report.errors[0].message

    def test_a_rule_that_does_not_compile_is_refused_with_its_position(self) -> None:
        with pytest.raises(InvalidRequest) as caught:
            compiled({}, [{"expr": "self.a >= ", "message": "m"}])
        assert caught.value.details["line"] == 1 and caught.value.details["column"] == 11
        assert "does not compile" in caught.value.message
        assert "rules[0]" in caught.value.message

    def test_a_rule_may_only_use_self(self) -> None:
        with pytest.raises(InvalidRequest, match="unknown variable"):
            compiled({}, [{"expr": "other.a > 1", "message": "m"}])

    @pytest.mark.parametrize("rule", [
        {"message": "no expr"}, {"expr": "true", "severity": "fatal"},
        {"expr": "true", "colour": "red"}, "self.a > 1", {"expr": "true", "path": "a"},
    ])
    def test_malformed_rules_are_refused(self, rule: Any) -> None:
        with pytest.raises(InvalidRequest):
            make_document({}, [rule])

    def test_key_pattern_is_a_glob(self) -> None:
        schema = compiled({"type": "integer"}, key_pattern="claude-*")
        assert schema.applies_to("claude-opus") and not schema.applies_to("gpt-4")
        assert compiled({}).applies_to("anything")


class TestCompileCache:
    def test_the_same_document_compiles_once(self) -> None:
        text = document_text(make_document(PARAMS_SCHEMA, PARAMS_RULES))
        assert compile_document(text) is compile_document(text)

    def test_a_different_document_compiles_anew(self) -> None:
        a = compile_document(document_text(make_document({"type": "integer"})))
        b = compile_document(document_text(make_document({"type": "string"})))
        assert a is not b and a.digest != b.digest


class TestHostileSchemas:
    def test_a_huge_schema_is_refused(self) -> None:
        props = {f"field_{i}": {"type": "string", "description": "x" * 100}
                 for i in range(MAX_SCHEMA_BYTES // 100)}
        with pytest.raises(TooLarge, match="schema"):
            document_text(make_document({"properties": props}))

    @pytest.mark.parametrize("schema", [
        {"$ref": "#"},
        {"$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"},
        {"$defs": {"node": {"type": "object", "properties": {
            "children": {"type": "array", "items": {"$ref": "#/$defs/node"}}}}},
         "$ref": "#/$defs/node"},
    ])
    def test_recursive_refs_terminate(self, schema: dict[str, Any]) -> None:
        deep: Any = {}
        for _ in range(60):
            deep = {"children": [deep]}
        result = compiled(schema).validate(deep)
        assert result.valid in (True, False)  # it answered: no hang, no RecursionError
        assert annotations_of(schema) == {"secret": [], "restart_required": []}

    def test_remote_refs_are_refused_nothing_is_fetched(self) -> None:
        with pytest.raises(InvalidRequest, match="not local"):
            compiled({"$ref": "https://example.com/schema.json"})

    def test_dangling_refs_are_refused(self) -> None:
        with pytest.raises(InvalidRequest):
            compiled({"$ref": "#/$defs/missing"})

    def test_catastrophic_regex_is_bounded(self) -> None:
        """``^(a+)+$`` backtracks exponentially in Python's re; here it answers at once."""
        schema = compiled({"type": "string", "pattern": "^(a+)+$"})
        assert not schema.validate("a" * 5000 + "!").valid
        assert schema.validate("a" * 5000).valid

    @pytest.mark.parametrize("schema", [{"type": 5}, {"minimum": "x"}, {"required": "a"}, []])
    def test_invalid_json_schemas_are_refused(self, schema: Any) -> None:
        with pytest.raises(InvalidRequest):
            compiled(schema)

    def test_too_many_rules_are_refused(self) -> None:
        with pytest.raises(InvalidRequest, match="at most"):
            make_document({}, [{"expr": "true", "message": "m"}] * 101)


class TestAnnotations:
    def test_marked_fields_are_listed_as_pointers(self) -> None:
        assert annotations_of(PARAMS_SCHEMA) == {"secret": ["/api_key"],
                                                 "restart_required": ["/cache_ttl_seconds"]}

    def test_nested_arrays_and_refs(self) -> None:
        schema = {"$defs": {"cred": {"type": "object", "properties": {
                      "password": {"type": "string", "x-secret": True}}}},
                  "properties": {"db": {"$ref": "#/$defs/cred"},
                                 "replicas": {"type": "array", "items": {"$ref": "#/$defs/cred"}},
                                 "port": {"x-restart-required": True}}}
        assert annotations_of(schema) == {"secret": ["/db/password", "/replicas/*/password"],
                                          "restart_required": ["/port"]}


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(list(PARAMS_SCHEMA["properties"]) + ["x"]), inner, max_size=4),
    max_leaves=8)


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_any_value_gets_a_report_never_an_exception(value: Any) -> None:
    report = PARAMS.validate(value)
    assert report.valid == (not report.errors)
    json.dumps(report.to_dict())


def test_rules_reading_self_whole_see_the_whole_value() -> None:
    schema = compiled({}, [{"expr": "size(self) <= 2", "message": "at most two fields"},
                           {"expr": "self.a != 'self'", "message": "m"}])
    assert not schema.validate({"a": 1, "b": 2, "c": 3}).valid


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_giving_rules_only_the_fields_they_read_changes_no_answer(value: Any) -> None:
    whole = CompiledSchema(json.loads(document_text(make_document(PARAMS_SCHEMA, PARAMS_RULES))),
                           "whole")
    whole._fields = None
    assert PARAMS._fields is not None
    assert PARAMS.validate(value) == whole.validate(value)
