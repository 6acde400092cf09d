"""The UI's pure helpers: line diffs, three-way merges, masking secrets, parsing input."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from confhub.errors import InvalidValue
from confhub.server.ui.render import highlight, line_diff, parse_value, redact, three_way

JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=5),
                    lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=3), inner, max_size=3), max_leaves=8)


class TestThreeWay:
    def test_edits_of_different_fields_merge(self) -> None:
        merge = three_way({"a": 1, "b": 1}, {"a": 2, "b": 1}, {"a": 1, "b": 5})
        assert (merge.merged, merge.conflicts) == ({"a": 2, "b": 5}, ())

    def test_edits_of_the_same_field_conflict(self) -> None:
        merge = three_way({"a": 1}, {"a": 2}, {"a": 3})
        assert merge.merged is None and merge.conflicts == ("/a",)

    def test_the_same_edit_on_both_sides_is_no_conflict(self) -> None:
        assert three_way({"a": 1}, {"a": 2}, {"a": 2}).merged == {"a": 2}

    def test_a_change_inside_a_field_they_removed_conflicts(self) -> None:
        merge = three_way({"db": {"host": "a"}}, {}, {"db": {"host": "b"}})
        assert merge.merged is None

    @given(JSON, JSON)
    def test_with_no_edit_of_yours_the_merge_is_theirs(self, base: object,
                                                       theirs: object) -> None:
        assert three_way(base, theirs, base).merged == theirs

    @given(JSON, JSON)
    def test_with_no_edit_of_theirs_the_merge_is_yours(self, base: object,
                                                       yours: object) -> None:
        assert three_way(base, base, yours).merged == yours


class TestLineDiff:
    def test_a_changed_field_is_one_changed_row(self) -> None:
        diff = line_diff({"a": 1, "b": 2}, {"a": 1, "b": 3})
        changed = [r for r in diff.rows if r.kind != "same"]
        assert [(r.left.strip(), r.right.strip()) for r in changed] == [('"b": 2', '"b": 3')]
        assert (diff.added, diff.removed) == (1, 1)

    def test_equal_values_have_no_changes(self) -> None:
        assert not line_diff({"a": [1, 2]}, {"a": [1, 2]}).changed

    def test_a_new_key_is_all_additions(self) -> None:
        diff = line_diff(None, {"a": 1})
        assert {r.kind for r in diff.rows} == {"add"} and diff.removed == 0


class TestRedact:
    def test_fields_marked_secret_are_masked_everywhere_the_pointer_matches(self) -> None:
        value = {"users": [{"name": "a", "password": "p1"}, {"name": "b", "password": "p2"}]}
        assert redact(value, ["/users/*/password"]) == {
            "users": [{"name": "a", "password": "***"}, {"name": "b", "password": "***"}]}
        assert value["users"][0]["password"] == "p1"  # the original is untouched


class TestParse:
    def test_json_errors_name_line_and_column(self) -> None:
        with pytest.raises(InvalidValue, match="line 2, column 8"):
            parse_value('{\n  "a": }', "json")

    def test_yaml_is_read_as_yaml(self) -> None:
        assert parse_value("a: 1\nb: [x, y]\n", "yaml") == {"a": 1, "b": ["x", "y"]}

    def test_an_empty_value_is_refused_with_a_hint(self) -> None:
        with pytest.raises(InvalidValue, match="empty"):
            parse_value("  ", "json")


def test_highlight_escapes_html_in_values() -> None:
    html = highlight({"x": "<script>alert(1)</script>"})
    assert "<script>" not in html and "&lt;script&gt;" in html
