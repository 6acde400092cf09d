"""export --format (json, yaml, toml, env, k8s), import-env, interpolation and field paths."""

from __future__ import annotations

import json
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
from dotenv import dotenv_values
from hypothesis import given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

import confhub
from confhub.codeplan.envimport import document_from_env
from confhub.codeplan.exporters import env_lines, quote_env
from confhub.errors import InvalidRequest, InvalidValue, MissingVariable
from confhub.fieldpath import set_patch
from confhub.interpolation import interpolate, interpolate_text

from .conftest import Target

TRICKY = {
    "newline": "line one\nline two",
    "quotes": 'say "hi" and it\'s fine',
    "dollar": "costs $5, see $HOME and `cmd`",
    "unicode": "naïve café ✓ 東京",
    "backslash": "C:\\path\\to",
    "both": "it's \\ here",
    "empty": "",
    "spaces": "  padded  ",
    "hash": "a # not a comment",
}


def seed(target: Target) -> None:
    target.hub.create_tenant(target.tenant)
    cfg = target.cfg
    cfg.set("models", "opus", {"max_tokens": 8192, "tags": ["a", "b"], "beta": True})
    cfg.set("models", "opus", {"max_tokens": 4096}, env="production")
    cfg.set("text", "samples", TRICKY)
    cfg.set("db", "password", "hunter2", secret=True)


def sh_reads(path: Path, names: list[str]) -> dict[str, str]:
    """What a POSIX shell sees after ``. ./file`` (NUL-separated, so newlines survive)."""
    script = ". \"$1\"; shift; for n do eval 'printf \"%s\\0\" \"${'\"$n\"'}\"'; done"
    done = subprocess.run(["sh", "-c", script, "sh", str(path), *names], capture_output=True,
                          check=True)
    return dict(zip(names, done.stdout.decode().split("\0")[:-1], strict=True))


class TestFormats:
    def test_json_is_the_resolved_view(self, target: Target) -> None:
        seed(target)
        run = target.cli("export", "--format", "json", "--env", "production")
        assert run.exit_code == 0, run.stderr
        data = json.loads(run.stdout)
        assert data["models"]["opus"] == {"max_tokens": 4096, "tags": ["a", "b"], "beta": True}
        assert data["db"]["password"] == "***"

    def test_yaml_and_toml_read_back_to_the_same_view(self, target: Target) -> None:
        seed(target)
        expected = json.loads(target.cli("export", "--format", "json").stdout)
        yaml_text = target.cli("export", "--format", "yaml").stdout
        assert YAML(typ="safe").load(yaml_text) == expected
        assert tomllib.loads(target.cli("export", "--format", "toml").stdout) == expected

    def test_one_namespace(self, target: Target) -> None:
        seed(target)
        run = target.cli("export", "--format", "json", "--namespace", "models")
        assert json.loads(run.stdout) == {"opus": {"max_tokens": 8192, "tags": ["a", "b"],
                                                   "beta": True}}


class TestEnvFormat:
    def test_dotenv_and_sh_read_back_the_same_strings(self, target: Target,
                                                      tmp_path: Path) -> None:
        seed(target)
        path = tmp_path / "app.env"
        run = target.cli("export", "--format", "env", "--prefix", "TEXT_", "--to", str(path))
        assert run.exit_code == 0, run.stderr
        names = [f"TEXT_SAMPLES_{name.upper()}" for name in TRICKY]
        expected = {f"TEXT_SAMPLES_{name.upper()}": value for name, value in TRICKY.items()}
        assert dict(dotenv_values(path)) == expected
        assert sh_reads(path, names) == expected

    def test_non_strings_are_json_and_nesting_flattens(self, target: Target,
                                                       tmp_path: Path) -> None:
        seed(target)
        path = tmp_path / "models.env"
        target.cli("export", "--format", "env", "--prefix", "MODELS_", "--env", "production",
                   "--to", str(path))
        assert dict(dotenv_values(path)) == {
            "MODELS_OPUS_MAX_TOKENS": "4096", "MODELS_OPUS_TAGS_0": "a",
            "MODELS_OPUS_TAGS_1": "b", "MODELS_OPUS_BETA": "true"}

    @settings(max_examples=60, deadline=None)
    @given(st.text(st.characters(exclude_characters="\0\r", exclude_categories=("Cs",)),
                   max_size=30))
    def test_any_quotable_text_reads_back_with_dotenv(self, text: str) -> None:
        try:
            line = f"X={quote_env('X', text)}\n"
        except InvalidValue:
            assert "'" in text and ("$" in text or "`" in text)
            return
        import io

        assert dotenv_values(stream=io.StringIO(line), interpolate=False) == {"X": text}

    def test_a_value_no_quoting_can_carry_is_refused_by_name(self) -> None:
        with pytest.raises(InvalidValue, match="A_B"):
            env_lines({"a": {"b": "it's $HOME"}})

    def test_two_paths_flattening_to_one_name_are_refused(self) -> None:
        with pytest.raises(InvalidValue, match="a/b-c and a/b_c both become A_B_C"):
            env_lines({"a": {"b-c": 1, "b_c": 2}})


class TestK8sFormat:
    def test_configmaps_validate_against_the_kubernetes_schema(self, target: Target) -> None:
        seed(target)
        run = target.cli("export", "--format", "k8s", "--env", "production")
        documents = list(YAML(typ="safe").load_all(run.stdout))
        assert {d["kind"] for d in documents} == {"ConfigMap"}  # the secret is left out
        for document in documents:
            kubernetes_validate.validate(document, "1.30", strict=True)
        models = next(d for d in documents if d["metadata"]["name"].endswith("models-production"))
        assert json.loads(models["data"]["opus"])["max_tokens"] == 4096

    def test_secrets_only_with_include_secrets(self, target: Target) -> None:
        seed(target)
        run = target.cli("export", "--format", "k8s", "--include-secrets")
        assert run.exit_code == 0, run.stderr
        documents = list(YAML(typ="safe").load_all(run.stdout))
        [secret] = [d for d in documents if d["kind"] == "Secret"]
        kubernetes_validate.validate(secret, "1.30", strict=True)
        import base64

        assert json.loads(base64.b64decode(secret["data"]["password"])) == "hunter2"


class TestImportEnv:
    def test_variables_become_one_document(self, target: Target,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
        for name, value in {"APP_DB__HOST": "db.internal", "APP_DB__PORT": "5432",
                            "APP_DEBUG": "true", "APP_NAME": "shop"}.items():
            monkeypatch.setenv(name, value)
        target.hub.create_tenant(target.tenant)
        run = target.cli("import-env", "--prefix", "APP_", "--namespace", "app")
        assert run.exit_code == 0, run.stderr
        assert target.cfg.get("app", "env").value == {
            "db": {"host": "db.internal", "port": 5432}, "debug": True, "name": "shop"}

    def test_dry_run_writes_nothing(self, target: Target,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("APP_X", "1")
        target.hub.create_tenant(target.tenant)
        run = target.cli("import-env", "--prefix", "APP_", "--namespace", "app", "--dry-run")
        assert run.exit_code == 0
        with pytest.raises(confhub.NotFound):
            target.cfg.get("app", "env")

    @pytest.mark.parametrize(("text", "value"), [
        ("8080", 8080), ("0.5", 0.5), ("true", True), ("null", None), ("shop", "shop"),
        ("[1, 2]", "[1, 2]"), (" 1", " 1"), ("", "")])
    def test_values_are_json_scalars_where_they_read_as_one(self, text: str,
                                                            value: Any) -> None:
        assert document_from_env({"P_X": text}, "P_") == {"x": value}

    def test_a_value_that_is_also_a_parent_is_refused(self) -> None:
        with pytest.raises(InvalidRequest, match="APP_DB__HOST nests under APP_DB"):
            document_from_env({"APP_DB": "x", "APP_DB__HOST": "y"}, "APP_")


class TestInterpolation:
    @pytest.mark.parametrize(("text", "expected"), [
        ("https://${REGION}.example.com", "https://eu.example.com"),
        ("${TIER:-standard}", "standard"),
        ("${EMPTY:-fallback}", "fallback"),
        ("${REGION:-x}", "eu"),
        ("$$5 and $${NOT}", "$5 and ${NOT}"),
        ("$HOME ${ unclosed", "$HOME ${ unclosed"),
        ("${A:-}", ""),
        ("${REGION}${REGION}", "eueu"),
    ])
    def test_substitution(self, text: str, expected: str) -> None:
        assert interpolate_text(text, {"REGION": "eu", "EMPTY": ""}) == expected

    def test_a_missing_variable_without_default_names_it_and_where(self) -> None:
        with pytest.raises(MissingVariable, match="variable TIER is not set \\(at /db/url\\)"):
            interpolate({"db": {"url": "${TIER}"}}, {})

    def test_store_keeps_raw_text_and_resolve_interpolates(
            self, target: Target, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("CONFHUB_TEST_REGION", "ap")
        target.hub.create_tenant(target.tenant)
        target.cfg.set("app", "urls", {"api": "https://${CONFHUB_TEST_REGION}.x", "n": 1})
        assert target.cfg.get("app", "urls").value["api"] == "https://${CONFHUB_TEST_REGION}.x"
        resolved = target.cfg.resolve("app", "urls", interpolate=True)
        assert resolved.value == {"api": "https://ap.x", "n": 1}
        run = target.cli("get", "app/urls", "--path", "api", "--interpolate", "--json")
        assert run.json()["value"] == "https://ap.x"

    def test_live_interpolates(self, target: Target, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("CONFHUB_TEST_REGION", "ap")
        target.hub.create_tenant(target.tenant)
        target.cfg.set("app", "urls", {"api": "${CONFHUB_TEST_REGION}"})
        extra = {"cache_file": False} if target.kind == "server" else {}
        with target.cfg.live("app", "urls", interpolate=True, **extra) as live:
            assert live.value == {"api": "ap"}


class TestFieldPaths:
    def test_entry_and_resolved_get_by_dotted_path(self, target: Target) -> None:
        target.hub.create_tenant(target.tenant)
        entry = target.cfg.set("agents", "kgot", {"kgot": {"reasoning_depth": 3},
                                                   "tiers": [{"model": "opus"}]})
        assert entry.get("kgot.reasoning_depth") == 3
        assert entry.get("tiers[0].model") == "opus"
        assert entry.get("kgot.missing", 7) == 7
        assert target.cfg.resolve("agents", "kgot").get("tiers.0.model") == "opus"
        with pytest.raises(confhub.NotFound, match="'kgot.nope' not found"):
            entry.get("kgot.nope")

    def test_cli_set_path_is_a_compare_and_set_patch_of_one_field(self,
                                                                  target: Target) -> None:
        target.hub.create_tenant(target.tenant)
        target.cfg.set("agents", "kgot", {"kgot": {"reasoning_depth": 3}, "other": 1})
        assert target.cli("set", "agents/kgot", "--path", "kgot.reasoning_depth", "5"
                          ).exit_code == 0
        entry = target.cfg.get("agents", "kgot")
        assert entry.value == {"kgot": {"reasoning_depth": 5}, "other": 1}
        assert target.cli("get", "agents/kgot", "--path", "kgot.reasoning_depth", "--raw"
                          ).stdout.strip() == "5"
        run = target.cli("set", "agents/kgot", "--path", "other", "2", "--expected-version", "1")
        assert run.exit_code == 4

    def test_set_patch_creates_missing_objects(self) -> None:
        assert set_patch({"a": {}}, "a.x.y", 5) == [
            {"op": "add", "path": "/a/x", "value": {"y": 5}}]
