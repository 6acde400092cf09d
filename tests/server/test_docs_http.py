"""docs/http.md is a contract: its Python example runs as written against a real server."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from confhub.server.testing import threaded_server

DOC = Path(__file__).resolve().parents[2] / "docs" / "http.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text("utf-8"), flags=re.S)


def test_http_doc_has_a_python_example() -> None:
    assert python_blocks()


@pytest.mark.parametrize("index", range(len(python_blocks())))
def test_http_doc_python_example_runs(index: int, tmp_path: Path) -> None:
    with threaded_server(tmp_path / "c.db") as url:
        code = python_blocks()[index].replace("http://127.0.0.1:8011", url)
        exec(compile(code, f"docs/http.md[python {index}]", "exec"), {})


def test_every_route_group_of_design_md_is_documented() -> None:
    text = DOC.read_text("utf-8")
    for path in ("/watch", "/validate", "/schemas/", "/audit", "/v1/tokens"):
        assert path in text
