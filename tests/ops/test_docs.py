"""docs/operations.md is a contract: its console lines, Python blocks and JSON run as written."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from confhub.cli import app
from confhub.server.testing import threaded_server

DOC = Path(__file__).resolve().parents[2] / "docs" / "operations.md"
TEXT = DOC.read_text("utf-8")


def blocks(kind: str) -> list[str]:
    return re.findall(rf"```{kind}\n(.*?)```", TEXT, flags=re.S)


def test_the_doc_has_every_kind_of_block() -> None:
    assert blocks("console") and blocks("python") and blocks("json")


@pytest.mark.parametrize("index", range(len(blocks("python"))))
def test_python_blocks_run(index: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    code = blocks("python")[index]
    with threaded_server(tmp_path / "served.db") as url:
        exec(compile(code.replace("http://127.0.0.1:8011", url),
                     f"docs/operations.md[python {index}]", "exec"), {})
    printed = capsys.readouterr().out
    for shown in re.findall(r"print\(.*\)\s+# (.+)$", code, flags=re.M):
        assert shown.strip() in printed


def test_console_lines_run_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("CONFHUB_URL", "CONFHUB_DB", "CONFHUB_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    runner = CliRunner()
    for block in blocks("console"):
        for line in block.splitlines():
            if not line.startswith("$ confhub "):
                continue
            result = runner.invoke(app, shlex.split(line[len("$ confhub "):]),
                                   env={"COLUMNS": "160"}, catch_exceptions=False)
            assert result.exit_code == 0, f"{line}\n{result.output}"


@pytest.mark.parametrize("index", range(len(blocks("json"))))
def test_json_blocks_parse(index: int) -> None:
    json.loads(blocks("json")[index])
