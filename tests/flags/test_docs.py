"""docs/flags.md runs as written: its flag file, its shell lines, then its Python examples
(in a fresh interpreter each, as a user would run them) against a real server."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from confhub.cli import app
from confhub.server.testing import threaded_server

DOC = Path(__file__).resolve().parents[2] / "docs" / "flags.md"


def _blocks(kind: str) -> list[str]:
    return re.findall(rf"```{kind}\n(.*?)```", DOC.read_text("utf-8"), flags=re.S)


def _shown(block: str) -> list[str]:
    """The output a block shows as ``# ...`` comments right after a print, up to any note."""
    return [line[2:].split("  (")[0].strip() for line in block.splitlines()
            if line.startswith("# ")]


def test_the_doc_runs_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (flag_file,) = _blocks("json")
    (tmp_path / "flags.json").write_text(flag_file, "utf-8")
    json.loads(flag_file)
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("CONFHUB_"):
            monkeypatch.delenv(name)
    for block in _blocks("console"):
        for line in block.splitlines():
            if line.startswith("$ confhub "):
                result = CliRunner().invoke(app, shlex.split(line[len("$ confhub "):]))
                assert result.exit_code == 0, (line, result.output)
    assert json.loads((tmp_path / "flags-backup.json").read_text())["flags"].keys() == \
        json.loads(flag_file)["flags"].keys()
    python = _blocks("python")
    assert len(python) == 2
    with threaded_server(tmp_path / "confhub.db") as url:
        for index, block in enumerate(python):
            code = block.replace("http://127.0.0.1:8011", url)
            run = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, timeout=60,
                                 capture_output=True, text=True)
            assert run.returncode == 0, f"flags.md[python {index}]: {run.stderr}"
            for expected in _shown(block):
                assert expected in run.stdout, (index, expected, run.stdout)
