"""Abuse limits per token, and what ``serve`` does with and without tokens."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

import confhub
from confhub import TooManyRequests
from confhub.server.auth import POLICY, Guard, Limits, match
from confhub.server.testing import free_port, live_server
from confhub.tokens import ANONYMOUS, Principal


def test_requests_past_the_rate_get_429_with_retry_after(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "c.db"
    with confhub.open(str(db)) as hub:
        busy, _ = hub.create_token(role="superadmin")
        calm, _ = hub.create_token(role="superadmin")
    monkeypatch.setenv("CONFHUB_SERVE_RATE_LIMIT", "5")  # burst 10
    with live_server(db) as url, httpx.Client(base_url=url, timeout=10) as client:
        statuses = [client.get("/v1/tenants", headers={"authorization": f"Bearer {busy}"})
                    for _ in range(30)]
        limited = [r for r in statuses if r.status_code == 429]
        assert limited, [r.status_code for r in statuses]
        assert int(limited[0].headers["retry-after"]) >= 1
        assert limited[0].json()["error"]["code"] == "too_many_requests"
        assert client.get("/v1/tenants",
                          headers={"authorization": f"Bearer {calm}"}).status_code == 200


class TestWatchSlots:
    def test_a_token_holds_at_most_its_watchers(self) -> None:
        guard = Guard(hub=None, limits=Limits(watchers=2))
        who = Principal(name="w", role="viewer", tenant="acme", token_id="0123456789ab")
        with guard.watch_slot(who), guard.watch_slot(who):
            assert guard.watchers(who) == 2
            with pytest.raises(TooManyRequests), guard.watch_slot(who):
                pass
        assert guard.watchers(who) == 0
        with guard.watch_slot(who):
            assert guard.watchers(who) == 1

    def test_the_open_server_is_not_limited(self) -> None:
        guard = Guard(hub=None, limits=Limits(watchers=1))
        with guard.watch_slot(ANONYMOUS), guard.watch_slot(ANONYMOUS):
            assert guard.watchers(ANONYMOUS) == 2


class TestPolicyTable:
    def test_routes_of_later_issues_already_have_a_line(self) -> None:
        for method, path in [("GET", "/v1/tenants/acme/watch"),
                             ("GET", "/v1/tenants/acme/schemas/models"),
                             ("PUT", "/v1/tenants/acme/schemas/models"),
                             ("POST", "/v1/tenants/acme/validate")]:
            assert match(method, path) is not None, path

    def test_an_unknown_route_matches_no_rule(self) -> None:
        assert match("GET", "/v1/tenants/acme/new-feature") is None
        assert match("POST", "/v1/tenants/acme/configs") is None

    def test_every_rule_names_a_known_role(self) -> None:
        roles = {"public", "authenticated", "viewer", "editor", "admin", "superadmin"}
        assert {rule.role for rule in POLICY} <= roles


def _serve(db: Path, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "confhub.server", "--db", str(db), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})


def _wait_up(proc: subprocess.Popen[bytes], port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else b""
        try:
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.05)
    raise AssertionError("server did not start")


def _stop(proc: subprocess.Popen[bytes]) -> str:
    proc.terminate()
    out, _ = proc.communicate(timeout=15)
    return out.decode(errors="replace")


def test_a_public_bind_is_allowed_once_tokens_exist(tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    with confhub.open(str(db)) as hub:
        hub.create_token(role="superadmin")
    port = free_port()
    proc = _serve(db, "--host", "0.0.0.0", "--port", str(port))
    try:
        _wait_up(proc, port)
        assert httpx.get(f"http://127.0.0.1:{port}/v1/tenants").status_code == 401
    finally:
        out = _stop(proc)
    assert "authentication is ON" in out


def test_a_loopback_server_without_tokens_is_open_and_says_so(tmp_path: Path) -> None:
    port = free_port()
    proc = _serve(tmp_path / "c.db", "--port", str(port))
    try:
        _wait_up(proc, port)
        assert httpx.get(f"http://127.0.0.1:{port}/v1/tenants").status_code == 200
    finally:
        out = _stop(proc)
    assert "authentication is OFF" in out


def test_a_running_open_server_closes_when_the_first_token_is_created(tmp_path: Path) -> None:
    """The bootstrap path: `confhub token create --superadmin --db` on the served database."""
    db = tmp_path / "c.db"
    with live_server(db) as url:
        assert httpx.get(url + "/v1/tenants").status_code == 200
        done = subprocess.run([sys.executable, "-m", "confhub.cli", "token", "create",
                               "--superadmin", "--db", str(db)], capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        token = done.stdout.strip()
        deadline = time.monotonic() + 5
        while httpx.get(url + "/v1/tenants").status_code != 401:
            assert time.monotonic() < deadline, "the server stayed open"
            time.sleep(0.05)
        assert httpx.get(url + "/v1/tenants",
                         headers={"authorization": f"Bearer {token}"}).status_code == 200


def test_an_open_server_refuses_to_make_the_first_token_over_http(tmp_path: Path) -> None:
    """DESIGN section 7: the first token is made on the database; anonymous POST /v1/tokens
    would otherwise switch auth on for everyone with a token only its maker holds."""
    db = tmp_path / "c.db"
    with live_server(db) as url:
        r = httpx.post(url + "/v1/tokens", json={"role": "superadmin"})
        assert r.status_code == 403
        assert "confhub token create --superadmin --db" in r.json()["error"]["message"]
        r = httpx.post(url + "/v1/tokens", json={"tenant": "default", "role": "viewer"})
        assert r.status_code == 403
        assert httpx.get(url + "/v1/tenants").status_code == 200  # still open
    with confhub.open(str(db)) as hub:
        assert hub.tokens() == []
