"""Browsers on another origin (DESIGN section 7): none by default; ``serve --cors-origin``
allows the named origins, preflights included, for the API and the watch stream."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import confhub
from confhub.server.testing import live_server

APP = "http://app.example.com:3000"
OTHER = "http://evil.example.org"


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, str]]:
    """(a server allowing APP, one allowing nobody, a bearer token valid on both)."""
    db = tmp_path_factory.mktemp("cors") / "c.db"
    with confhub.open(str(db)) as hub:
        token, _ = hub.create_token(role="superadmin")
    with live_server(db, options=["--cors-origin", APP, "--cors-origin",
                                  "http://localhost:5173"]) as allowing, \
            live_server(db) as closed:
        yield allowing, closed, token


def _preflight(url: str, origin: str, method: str = "PUT") -> httpx.Response:
    return httpx.options(url + "/v1/tenants/default/configs/m/k", headers={
        "origin": origin, "access-control-request-method": method,
        "access-control-request-headers": "authorization, content-type, if-match"})


def test_a_preflight_from_an_allowed_origin_is_answered(servers: tuple[str, str, str]) -> None:
    allowing, _, _ = servers
    r = _preflight(allowing, APP)
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == APP
    assert "PUT" in r.headers["access-control-allow-methods"]
    allowed_headers = r.headers["access-control-allow-headers"].lower()
    assert "authorization" in allowed_headers and "if-match" in allowed_headers


def test_a_preflight_from_another_origin_gets_no_grant(servers: tuple[str, str, str]) -> None:
    allowing, _, _ = servers
    r = _preflight(allowing, OTHER)
    assert "access-control-allow-origin" not in r.headers


def test_requests_from_the_allowed_origin_carry_the_grant_and_expose_etag(
        servers: tuple[str, str, str]) -> None:
    allowing, _, token = servers
    headers = {"origin": APP, "authorization": f"Bearer {token}"}
    put = httpx.put(allowing + "/v1/tenants/default/configs/m/k", json=1, headers=headers)
    assert put.status_code in (200, 201)
    r = httpx.get(allowing + "/v1/tenants/default/configs/m/k", headers=headers)
    assert r.headers["access-control-allow-origin"] == APP
    assert "etag" in r.headers["access-control-expose-headers"].lower()
    # an error answer (no token) is readable too, so the page can tell the user why
    denied = httpx.get(allowing + "/v1/tenants/default/configs/m/k", headers={"origin": APP})
    assert denied.status_code == 401
    assert denied.headers["access-control-allow-origin"] == APP


def test_the_watch_stream_answers_cross_origin(servers: tuple[str, str, str]) -> None:
    allowing, _, token = servers
    with httpx.stream("GET", allowing + "/v1/tenants/default/watch",
                      headers={"origin": APP, "authorization": f"Bearer {token}"},
                      timeout=10) as r:
        assert r.status_code == 200
        assert r.headers["access-control-allow-origin"] == APP
        lines = r.iter_lines()
        assert "event: ready" in [next(lines) for _ in range(3)]


def test_without_cors_origin_no_origin_is_granted(servers: tuple[str, str, str]) -> None:
    _, closed, token = servers
    assert "access-control-allow-origin" not in _preflight(closed, APP).headers
    r = httpx.get(closed + "/healthz", headers={"origin": APP})
    assert "access-control-allow-origin" not in r.headers


def test_a_cors_origin_that_is_not_an_origin_is_refused(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "confhub.server", "--db",
                           str(tmp_path / "c.db"), "--cors-origin", "app.example.com/path"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "--cors-origin" in done.stderr and "https://" in done.stderr
