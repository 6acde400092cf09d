"""What a new user hit with the CLI (issue 11), each reproduced as they did it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

import confhub
from confhub.cli import app
from confhub.cli.output import Output, _hint
from confhub.errors import VersionConflict
from confhub.server.testing import threaded_server

from .conftest import CliResult


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """``run(*args)`` in an empty directory with no CONFHUB_* settings."""
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("CONFHUB_"):
            monkeypatch.delenv(name)
    runner = CliRunner()

    def invoke(*args: str, env: dict[str, str] | None = None) -> CliResult:
        result = runner.invoke(app, list(args), env={"COLUMNS": "200", **(env or {})},
                               catch_exceptions=False)
        return CliResult(result.exit_code, result.stdout, result.stderr)

    yield invoke


def test_a_url_without_scheme_is_refused_and_creates_nothing(run, tmp_path: Path) -> None:
    result = run("set", "a/b", "1", "--url", "127.0.0.1:8011")
    assert result.exit_code == 2
    assert "http://127.0.0.1:8011" in result.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", [["ls"], ["get", "a/b"], ["history", "a/b"],
                                     ["changes"], ["export"]])
def test_a_read_command_on_a_missing_file_refuses(run, tmp_path: Path,
                                                  command: list[str]) -> None:
    result = run(*command, "--db", "typo.db")
    assert result.exit_code == 3, result.stderr
    assert "no database at" in result.stderr and "typo.db" in result.stderr
    assert not (tmp_path / "typo.db").exists()


def test_a_write_still_creates_the_database(run, tmp_path: Path) -> None:
    assert run("set", "a/b", "1", "--db", "new.db").exit_code == 0
    assert (tmp_path / "new.db").exists()
    assert run("get", "a/b", "--db", "new.db").exit_code == 0


def test_a_missing_postgres_database_fails_in_one_line(run) -> None:
    from tests.conftest import PG_DSN, require_postgres

    require_postgres()
    base = PG_DSN.rsplit("/", 1)[0]
    result = run("ls", "--db", f"{base}/confhub_no_such_database")
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "confhub_no_such_database" in errors[0]


class TestHints:
    def _hint(self, command: str) -> str:
        hint = _hint(VersionConflict("x", current_version=5), command)
        assert hint is not None
        return hint

    @pytest.mark.parametrize("command", ["txn", "apply", "edit"])
    def test_no_hint_names_an_option_the_command_lacks(self, command: str) -> None:
        assert "--expected-version" not in self._hint(command)

    def test_set_is_told_its_option(self) -> None:
        assert "--expected-version 5" in self._hint("set")

    def test_the_txn_hint_names_the_field(self) -> None:
        assert '"expected_version"' in self._hint("txn")

    def test_output_carries_the_command(self) -> None:
        assert Output(json=False, command="edit").command == "edit"


def test_rollback_to_a_deletion_says_what_to_do_in_any_interface(tmp_path: Path) -> None:
    with confhub.open(str(tmp_path / "c.db")) as hub:
        cfg = hub.tenant()
        cfg.set("a", "b", 1)
        cfg.delete("a", "b")
        cfg.set("a", "b", 2)
        with pytest.raises(confhub.ConfhubError) as caught:
            cfg.rollback("a", "b", to_version=2)
    assert "()" not in str(caught.value) and "delete" in str(caught.value)


def test_audit_over_url_reads_the_default_tenant(run, tmp_path: Path) -> None:
    with threaded_server(tmp_path / "s.db") as url:
        assert run("set", "a/b", "1", "--url", url).exit_code == 0
        result = run("audit", "--url", url, "--json")
        assert result.exit_code == 0, result.stderr
        assert any(item["tenant"] == "default" for item in json.loads(result.stdout))


def test_keys_generate_takes_json(run) -> None:
    result = run("keys", "generate", "--json")
    assert result.exit_code == 0
    assert len(json.loads(result.stdout)["key"]) >= 43


def test_a_secret_without_master_key_is_exit_1_not_usage(run) -> None:
    result = run("set", "a/b", '{"p": 1}', "--secret", "--db", "c.db")
    assert result.exit_code == 1
    assert "CONFHUB_MASTER_KEY" in result.stderr


def test_flags_show_no_value_in_help(run) -> None:
    text = run("set", "--help").stdout
    assert "<bool>" not in text and "--dry-run" in text


def test_tables_do_not_wrap_when_piped(tmp_path: Path) -> None:
    """``confhub ls | cat``: one line per row, however long its cells."""
    db = tmp_path / "c.db"
    name = "a-rather-long-key-name-" + "x" * 60
    with confhub.open(str(db)) as hub:
        hub.tenant().set("models", name, {"max_tokens": 8192})
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONFHUB_")}
    env.pop("COLUMNS", None)
    done = subprocess.run([sys.executable, "-m", "confhub.cli", "ls", "models", "--db",
                           str(db)], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    assert any(name in line for line in done.stdout.splitlines()), done.stdout
