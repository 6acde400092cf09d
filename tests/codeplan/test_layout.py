"""Reading a config directory: the layout, confhub.toml, and errors that name file and line."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from confhub.codeplan import LayoutError, load_directory
from confhub.codeplan.diffs import same_json
from confhub.codeplan.formats import dump_value, parse_file, update_text

from .conftest import write


class TestLoadDirectory:
    def test_base_and_overlay_files_become_keys(self, tmp_path: Path) -> None:
        """<ns>/<key>.<ext> is base, env/<env>/<ns>/<key>.<ext> an overlay; any extension."""
        write(tmp_path, {
            "models/opus.yaml": "max_tokens: 8192\n",
            "models/gpt.json": '{"max_tokens": 4096}',
            "routing/tiers.toml": 'default = "opus"\n',
            "models/a.b.yml": "x: 1\n",
            "env/production/models/opus.yaml": "max_tokens: 4096\n",
        })
        layout = load_directory(tmp_path)
        assert {a: k.value for a, k in layout.keys.items()} == {
            ("base", "models", "opus"): {"max_tokens": 8192},
            ("base", "models", "gpt"): {"max_tokens": 4096},
            ("base", "models", "a.b"): {"x": 1},
            ("base", "routing", "tiers"): {"default": "opus"},
            ("production", "models", "opus"): {"max_tokens": 4096},
        }
        assert layout.envs == ["base", "production"]

    def test_hidden_files_and_notes_are_ignored(self, tmp_path: Path) -> None:
        write(tmp_path, {"models/a.yaml": "1\n", ".git/config": "x", "README.md": "# notes",
                         "models/.a.yaml.swp": "junk"})
        assert list(load_directory(tmp_path).keys) == [("base", "models", "a")]

    def test_only_one_env_layer_is_read_when_asked(self, tmp_path: Path) -> None:
        write(tmp_path, {"models/a.yaml": "1\n", "env/prod/models/a.yaml": "2\n"})
        assert list(load_directory(tmp_path, env="prod").keys) == [("prod", "models", "a")]

    def test_yaml_dates_become_iso_strings(self, tmp_path: Path) -> None:
        write(tmp_path, {"app/a.yaml": "since: 2026-01-02\n"})
        assert load_directory(tmp_path).keys[("base", "app", "a")].value == {
            "since": "2026-01-02"}

    def test_confhub_toml_names_tenant_and_envs(self, tmp_path: Path) -> None:
        write(tmp_path, {"confhub.toml": 'tenant = "acme"\nenvs = ["production"]\n',
                         "env/production/m/a.yaml": "1\n"})
        layout = load_directory(tmp_path)
        assert layout.config.tenant == "acme"
        assert layout.config.envs == ("production",)


class TestLayoutErrors:
    @pytest.mark.parametrize(("name", "text", "line"), [
        ("models/a.yaml", "a: 1\nb: [1, 2\nc: 3\n", 3),
        ("models/a.toml", 'a = 1\nb = "unterminated\n', 2),
        ("models/a.json", '{\n  "a": 1,\n  "b": \n}', 4),
        ("models/a.yaml", "a: 1\na: 2\n", 2),
    ])
    def test_unparseable_file_names_file_and_line(self, tmp_path: Path, name: str, text: str,
                                                  line: int) -> None:
        write(tmp_path, {name: text})
        with pytest.raises(LayoutError) as caught:
            load_directory(tmp_path)
        assert caught.value.details == {"file": name, "line": line}
        assert caught.value.message.startswith(f"{name}:{line}: invalid ")

    @pytest.mark.parametrize("name", ["a.yaml", "models/sub/a.yaml", "models/a.txt.bak",
                                      "env/prod/a.yaml", "models/a.ini"])
    def test_file_outside_the_layout_is_refused(self, tmp_path: Path, name: str) -> None:
        write(tmp_path, {name: "1\n"})
        with pytest.raises(LayoutError, match="outside the layout") as caught:
            load_directory(tmp_path)
        assert caught.value.details["file"] == name

    @pytest.mark.parametrize("name", ["mod els/a.yaml", "models/-a.yaml",
                                      "env/pro duction/models/a.yaml"])
    def test_name_breaking_the_rules_is_refused(self, tmp_path: Path, name: str) -> None:
        write(tmp_path, {name: "1\n"})
        with pytest.raises(LayoutError, match="invalid (namespace|key|env) name") as caught:
            load_directory(tmp_path)
        assert caught.value.details["file"] == name

    def test_two_files_for_one_key_are_refused(self, tmp_path: Path) -> None:
        write(tmp_path, {"models/a.yaml": "1\n", "models/a.json": "1"})
        with pytest.raises(LayoutError, match="already defined by models/a.json"):
            load_directory(tmp_path)

    def test_env_not_owned_by_confhub_toml_is_refused(self, tmp_path: Path) -> None:
        write(tmp_path, {"confhub.toml": 'envs = ["production"]\n',
                         "env/staging/m/a.yaml": "1\n"})
        with pytest.raises(LayoutError, match="not one of the envs confhub.toml owns"):
            load_directory(tmp_path)

    def test_unknown_confhub_toml_option_is_refused(self, tmp_path: Path) -> None:
        write(tmp_path, {"confhub.toml": 'tennant = "acme"\n'})
        with pytest.raises(LayoutError, match="unknown option 'tennant'"):
            load_directory(tmp_path)

    def test_a_toml_date_time_is_a_string(self, tmp_path: Path) -> None:
        write(tmp_path, {"m/a.toml": "at = 2026-01-02T03:04:05Z\n"})
        assert load_directory(tmp_path).keys[("base", "m", "a")].value == {
            "at": "2026-01-02T03:04:05+00:00"}

    def test_missing_directory_is_an_error(self, tmp_path: Path) -> None:
        with pytest.raises(LayoutError, match="not a directory"):
            load_directory(tmp_path / "nope")


JSON_SCALARS = (st.none() | st.booleans() | st.integers(-(2**53), 2**53)
                | st.floats(allow_nan=False, allow_infinity=False, width=64)
                | st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\0"),
                          max_size=20))
JSON = st.recursive(JSON_SCALARS, lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)


class TestRoundTrips:
    @settings(max_examples=150, deadline=None)
    @given(JSON, st.sampled_from(["yaml", "json"]))
    def test_what_confhub_writes_reads_back_equal(self, value: object, ext: str) -> None:
        """YAML 1.2 scalars ('yes', '012', '1:20', dates) survive ruamel write + fast read."""
        assert same_json(parse_file(dump_value(value, ext, "f"), ext, "f"), value)

    @settings(max_examples=100, deadline=None)
    @given(st.dictionaries(st.text(min_size=1, max_size=8), JSON_SCALARS.filter(
        lambda v: v is not None), max_size=5), st.sampled_from(["yaml", "toml"]))
    def test_a_rewrite_reads_back_as_the_new_value(self, value: dict[str, object],
                                                   ext: str) -> None:
        old = dump_value({"kept": 1, "gone": [1, 2]}, ext, "f")
        assert same_json(parse_file(update_text(old, value, ext, "f"), ext, "f"), value)

    @pytest.mark.parametrize("text", ["yes", "on", "012", "0o17", "1:20", "2026-01-02", "~",
                                      "null", "1e3", ".inf", "true", "0x1f", "+1", ""])
    def test_strings_that_look_like_other_scalars_stay_strings(self, text: str) -> None:
        assert parse_file(dump_value({"v": text}, "yaml", "f"), "yaml", "f") == {"v": text}
