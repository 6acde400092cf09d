"""docs/rollouts.md is a contract: its Python and shell examples run as written, its JSON is
a valid start body, and its bucketing vectors are what the code computes."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from confhub.cohort import bucket
from confhub.server.routes.rollouts import RolloutIn

DOC = Path(__file__).resolve().parents[2] / "docs" / "rollouts.md"
TEXT = DOC.read_text("utf-8")


def blocks(kind: str) -> list[str]:
    return re.findall(rf"```{kind}\n(.*?)```", TEXT, flags=re.S)


def test_the_python_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CONFHUB_CACHE_DIR", str(tmp_path / "cache"))
    scope: dict[str, object] = {}
    for index, block in enumerate(blocks("python")):
        exec(compile(block, f"rollouts.md[python {index}]", "exec"), scope)
    printed = capsys.readouterr().out.splitlines()
    assert printed[:6] == [
        "r-1 running 100", "{'max_tokens': 2000}", "{'max_tokens': 1000}",
        "{'max_tokens': 1000}", "2 {'max_tokens': 2000} {'rollout': 'r-1'}",
        printed[5]]
    assert printed[5].startswith("1 of 1 consumers reported failure (100% > max_failure 0%)")
    assert printed[-1] == "2000 2"


def test_the_shell_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each line through the CLI app itself (in process: the same code as the script)."""
    from typer.testing import CliRunner

    from confhub.cli import app

    [script] = blocks("bash")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CONFHUB_URL", raising=False)
    runner = CliRunner()
    for line in script.replace("\\\n", " ").splitlines():
        words = shlex.split(line)
        assert words[0] == "confhub"
        done = runner.invoke(app, words[1:], env={"COLUMNS": "120"})
        assert done.exit_code == 0, (line, done.output)
    status = runner.invoke(app, ["rollout", "status", "r-1", "--db", "cli-demo.db", "--json"])
    assert json.loads(status.output)["state"] == "rolled_back"


def test_the_json_start_body_is_valid() -> None:
    [body] = blocks("json")
    RolloutIn.model_validate(json.loads(body))


def test_the_bucketing_vectors_are_what_the_code_computes() -> None:
    rows = re.findall(r"^\| `([^`]*)` \| `([^`]*)` \| (\d+) \| (yes|no) \| (yes|no) \|$", TEXT,
                      flags=re.M)
    assert len(rows) == 7
    for salt, client, expected, at10, at50 in rows:
        assert bucket(salt, client) == int(expected)
        assert (int(expected) < 1000) == (at10 == "yes")
        assert (int(expected) < 5000) == (at50 == "yes")
