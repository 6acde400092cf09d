"""Every Python example in the docs runs as written, and every link points into the repository.

The blocks of one page run in order in one namespace (a page builds its example step by
step), in an empty directory, with a real server standing in for ``http://127.0.0.1:8011``
and a master key in the environment. A block that cannot run here says why in a comment on
the line above it: ``<!-- not run: needs a PostgreSQL server at host -->``; a block without
one must run. (README.md and docs/http.md have tests of their own as well; docs/flags.md,
whose Python builds on its shell lines, only has its own: ``TESTED_ELSEWHERE``.)
"""

from __future__ import annotations

import ast
import asyncio
import re
from pathlib import Path
from typing import Any

import pytest

from confhub.secrets import generate_master_key
from confhub.server.testing import threaded_server

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted([ROOT / "README.md", ROOT / "DEVELOPERS.md", *(ROOT / "docs").glob("*.md")])
BLOCK = re.compile(r"(?:<!--\s*not run:(?P<why>[^>]*)-->\s*\n)?```python\n(?P<code>.*?)```",
                   re.S)


def runnable(page: Path) -> list[str]:
    return [m["code"] for m in BLOCK.finditer(page.read_text("utf-8")) if m["why"] is None]


def skipped(page: Path) -> list[str]:
    return [m["why"].strip() for m in BLOCK.finditer(page.read_text("utf-8"))
            if m["why"] is not None]


# Pages whose examples build on their own shell lines run under a test of their own.
TESTED_ELSEWHERE = {
    "flags.md": "tests/flags/test_docs.py runs its flag file, shell lines, then its Python",
}
PAGES_WITH_PYTHON = [p for p in PAGES if runnable(p) and p.name not in TESTED_ELSEWHERE]


@pytest.mark.parametrize("page", PAGES_WITH_PYTHON, ids=lambda p: p.name)
def test_the_python_examples_of_a_page_run(page: Path, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CONFHUB_MASTER_KEY", generate_master_key())
    namespace: dict[str, Any] = {"__name__": "__doc__"}
    with threaded_server(tmp_path / "served.db") as url:
        for index, block in enumerate(runnable(page)):
            code = block.replace("http://127.0.0.1:8011", url).replace(
                "http://localhost:8011", url)
            compiled = compile(code, f"{page.name}[python {index}]", "exec",
                               flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
            result = eval(compiled, namespace)  # noqa: S307 - our own documentation
            if asyncio.iscoroutine(result):
                asyncio.run(asyncio.wait_for(result, 30))
        hub = namespace.get("hub")
        if hub is not None and hasattr(hub, "close"):
            hub.close()


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_a_block_that_is_not_run_says_why(page: Path) -> None:
    assert all(len(why) > 10 for why in skipped(page)), skipped(page)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_links_point_into_the_repository(page: Path) -> None:
    text = page.read_text("utf-8")
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
        if re.match(r"^[a-z]+:", target):
            continue  # a web address
        resolved = (page.parent / target).resolve()
        assert resolved.is_relative_to(ROOT), f"{page.name} links outside the repo: {target}"
        assert resolved.exists(), f"{page.name} links to a missing file: {target}"
    for name in ("DESIGN.md", "STYLE.md"):  # the team's files, not shipped with confhub
        assert f"]({name})" not in text and f"../shared/{name}" not in text, name


CURL = re.compile(r"^\$ (curl .*)$", re.M)


def test_the_curl_lines_of_the_http_docs_work_as_written(tmp_path: Path) -> None:
    """docs/http.md's ``curl`` examples, run with curl against a real server: none is refused."""
    import shutil
    import subprocess

    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    lines = [line for line in CURL.findall((ROOT / "docs" / "http.md").read_text("utf-8"))
             if "…" not in line and "/watch" not in line]  # placeholders; endless streams
    assert lines
    with threaded_server(tmp_path / "c.db") as url:
        for line in lines:
            command = line.replace("http://localhost:8011", url).replace(
                "http://127.0.0.1:8011", url)
            done = subprocess.run(f"{command} -s -o /dev/null -w '%{{http_code}}'", shell=True,
                                  capture_output=True, text=True, timeout=30)
            status = int(done.stdout or 0)
            assert status < 500 and status not in (400, 415), f"{line} -> {status}"
            if "missing" not in line:
                assert status in (200, 201), f"{line} -> {status}"
