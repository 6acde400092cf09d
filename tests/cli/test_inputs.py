"""Reading values: JSON first, then YAML; files and stdin; --string verbatim."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from confhub.cli.common import WriteMeta, db_target, split_address
from confhub.cli.inputs import load_document, parse, read_value
from confhub.errors import InvalidRequest, InvalidValue


class TestParse:
    @pytest.mark.parametrize("text, value", [
        ('{"a": 1}', {"a": 1}),
        ("true", True),
        ("42", 42),
        ("null", None),
        ("hello", "hello"),
        ("a: 1\nb: [x, y]", {"a": 1, "b": ["x", "y"]}),
        ("when: 2024-01-01", {"when": "2024-01-01"}),
    ])
    def test_json_then_yaml(self, text: str, value: object) -> None:
        assert parse(text, origin="t") == value

    def test_yaml_non_string_keys_are_refused(self) -> None:
        with pytest.raises(InvalidValue, match="not a string"):
            parse("1: one", origin="t")

    def test_broken_json_gets_the_json_message(self) -> None:
        with pytest.raises(InvalidValue, match="value.json is not valid JSON: Expecting"):
            parse('{"a": ', origin="value.json")

    def test_garbage_names_its_origin(self) -> None:
        with pytest.raises(InvalidValue, match="value.yaml is neither JSON nor YAML"):
            parse("a: b: c", origin="value.yaml")


class TestReadValue:
    def test_argument(self) -> None:
        assert read_value('{"a": 1}', None) == {"a": 1}

    def test_string_flag_keeps_text(self) -> None:
        assert read_value("true", None, string=True) == "true"

    def test_stdin(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr("sys.stdin", io.StringIO("[1, 2]\n"))
        assert read_value("-", None) == [1, 2]

    def test_stdin_string_drops_final_newline(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr("sys.stdin", io.StringIO("line one\nline two\n"))
        assert read_value("-", None, string=True) == "line one\nline two"

    def test_yaml_file_is_read_as_yaml(self, tmp_path: Path) -> None:
        path = tmp_path / "v.yaml"
        path.write_text('"on": yes\n')
        assert read_value(None, str(path)) == {"on": True}
        assert load_document(str(path)) == {"on": True}

    def test_both_or_neither_is_a_usage_error(self, tmp_path: Path) -> None:
        with pytest.raises(InvalidRequest, match="not both"):
            read_value("1", str(tmp_path / "x"))
        with pytest.raises(InvalidRequest, match="no value"):
            read_value(None, None)


class TestAddressAndMeta:
    @pytest.mark.parametrize("address", ["models", "/key", "models/", "a/b/c", ""])
    def test_bad_addresses(self, address: str) -> None:
        with pytest.raises(InvalidRequest, match="NAMESPACE/KEY"):
            split_address(address)

    def test_good_address(self) -> None:
        assert split_address("models/claude-opus") == ("models", "claude-opus")

    def test_metadata_pairs_keep_equals_in_values(self) -> None:
        meta = WriteMeta.parse("r", "me", ["ticket=X-1", "query=a=b"])
        assert meta.kwargs() == {"reason": "r", "author": "me",
                                 "metadata": {"ticket": "X-1", "query": "a=b"}}

    @pytest.mark.parametrize("db, url", [
        ("./confhub.db", "sqlite:///./confhub.db"),
        ("/var/lib/c.db", "sqlite:////var/lib/c.db"),
        ("postgresql://u@h/d", "postgresql://u@h/d"),
        ("sqlite:///x.db", "sqlite:///x.db"),
    ])
    def test_db_target(self, db: str, url: str) -> None:
        assert db_target(db) == url
