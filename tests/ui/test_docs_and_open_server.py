"""docs/ui.md runs as written; an open server (no tokens) serves the UI without sign-in but
still refuses forged forms."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import confhub
from confhub.server.app import create_app
from confhub.server.testing import serve_in_thread

DOC = Path(__file__).resolve().parents[2] / "docs" / "ui.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text("utf-8"), flags=re.S)


@pytest.mark.parametrize("index", range(len(python_blocks())))
def test_ui_doc_python_example_runs(index: int, tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    exec(compile(python_blocks()[index], f"docs/ui.md[python {index}]", "exec"), {})


@pytest.fixture(scope="module")
def open_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    hub = confhub.open(f"sqlite:///{tmp_path_factory.mktemp('open') / 'c.db'}")
    hub.tenant().set("app", "limits", {"rps": 10})
    with serve_in_thread(create_app(hub)) as url:
        yield url
    hub.close()


def test_an_open_server_serves_the_ui_without_signing_in(open_server: str) -> None:
    page = httpx.get(f"{open_server}/ui/t/default/k/app/limits")
    assert page.status_code == 200
    assert "open server" in page.text and "rps" in page.text


def test_an_open_server_still_refuses_a_form_without_its_csrf_token(open_server: str) -> None:
    response = httpx.post(f"{open_server}/ui/t/default/save", data={
        "namespace": "app", "key": "limits", "env": "base", "fmt": "json",
        "value": '{"rps": 0}', "expected_version": "1"})
    assert response.status_code == 403
    assert httpx.get(f"{open_server}/config/app/limits").json()["value"] == {"rps": 10}


def test_the_ui_answers_404_for_a_missing_tenant_and_key(open_server: str) -> None:
    assert httpx.get(f"{open_server}/ui/t/nope").status_code == 404
    assert httpx.get(f"{open_server}/ui/t/default/k/app/nope").status_code == 404


def test_the_api_is_not_reachable_with_the_ui_cookie_path(open_server: str) -> None:
    """/ui/... never falls through to the API (and the API never serves /ui)."""
    assert httpx.get(f"{open_server}/ui/v1/tenants").status_code == 404
