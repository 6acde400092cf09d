"""docs/validation.md's Python examples run as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "validation.md"


def test_the_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text("utf-8"), flags=re.S)
    assert len(blocks) == 2
    scope: dict[str, object] = {}
    try:
        for index, block in enumerate(blocks):
            exec(compile(block, f"validation.md[python {index}]", "exec"), scope)
        printed = capsys.readouterr().out
        assert "/max_membrane_depth - params/agent: /max_membrane_depth: 65 is greater" in printed
        assert "/esn_reservoir_size - " in printed
        assert scope["opus"].max_tokens == 8192  # type: ignore[attr-defined]
    finally:
        scope["hub"].close()  # type: ignore[attr-defined]
