"""The README's Python example is a contract: it must run as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text("utf-8"), flags=re.S)


def test_readme_has_a_python_example() -> None:
    assert python_blocks(), "README.md lost its Python example"


@pytest.mark.parametrize("index", range(len(python_blocks())))
def test_readme_python_example_runs(index: int, tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    block = python_blocks()[index]
    exec(compile(block, f"README.md[python {index}]", "exec"), {})
    printed = capsys.readouterr().out
    # Output the README shows as a comment must be what the code prints.
    for shown in re.findall(r"^# (\[.*\])$", block, flags=re.M):
        assert shown in printed
