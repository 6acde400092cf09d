"""Merge patch, layering and diff: one rule per test."""

from __future__ import annotations

from typing import Any

import pytest

from confhub.layering import diff, merge_patch, resolve_layers
from confhub.model import freeze

# RFC 7386 appendix A, every example.
RFC_7386_EXAMPLES = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"a": "foo"}, None, None),
    ({"a": "foo"}, "bar", "bar"),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]


@pytest.mark.parametrize(("target", "patch", "expected"), RFC_7386_EXAMPLES)
def test_merge_patch_follows_rfc_7386(target: Any, patch: Any, expected: Any) -> None:
    assert merge_patch(target, patch) == expected


def test_merge_patch_never_mutates_frozen_inputs() -> None:
    target = freeze({"a": {"b": 1}})
    result = merge_patch(target, {"a": {"c": 2}})
    result["a"]["d"] = 3  # the result is a fresh, mutable value
    assert target == {"a": {"b": 1}}


def test_overlay_field_wins_over_base() -> None:
    value, sources = resolve_layers([("base", {"a": 1}), ("prod", {"a": 2})])
    assert value == {"a": 2} and sources == {"a": "prod"}


def test_objects_merge_key_by_key() -> None:
    value, _ = resolve_layers([("base", {"r": {"x": 1, "y": 2}}), ("prod", {"r": {"y": 3}})])
    assert value == {"r": {"x": 1, "y": 3}}


def test_arrays_are_replaced_not_merged() -> None:
    value, _ = resolve_layers([("base", {"l": [1, 2]}), ("prod", {"l": [3]})])
    assert value == {"l": [3]}


def test_null_in_overlay_removes_the_field_and_its_source() -> None:
    value, sources = resolve_layers([("base", {"a": 1, "b": 2}), ("prod", {"b": None})])
    assert value == {"a": 1} and sources == {"a": "base"}


def test_null_in_base_is_a_value() -> None:
    value, _ = resolve_layers([("base", {"a": None})])
    assert value == {"a": None}


def test_untouched_fields_keep_base_as_source() -> None:
    _, sources = resolve_layers([("base", {"a": 1, "b": 1}), ("prod", {"b": 2})])
    assert sources == {"a": "base", "b": "prod"}


def test_non_object_result_has_whole_document_source() -> None:
    _, sources = resolve_layers([("base", {"a": 1}), ("prod", 5)])
    assert sources == {"": "prod"}


def test_object_overlay_on_scalar_base_starts_fresh() -> None:
    value, sources = resolve_layers([("base", 5), ("prod", {"a": 1})])
    assert value == {"a": 1} and sources == {"a": "prod"}


def test_diff_round_trips_through_json_patch() -> None:
    import jsonpatch

    old, new = {"a": 1, "b": [1, 2]}, {"b": [1, 3], "c": {"d": 1}}
    assert jsonpatch.apply_patch(old, diff(old, new)) == new


def test_diff_of_equal_values_is_empty() -> None:
    assert diff(freeze({"a": [1]}), {"a": [1]}) == []
