"""A server told to stop, stops; hostile or careless clients cannot hold it (issue 11).

Each test runs a real ``python -m confhub.server`` (granian, and uvicorn where the behaviour
is the app's own) and talks to it over TCP like the client that found the defect.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import confhub
from confhub.server.serve import run
from confhub.server.testing import live_server, server_process

SERVERS = ["granian", "uvicorn"]


def _gauge(url: str, name: str) -> float:
    for line in httpx.get(url + "/metrics", timeout=10).text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


def _wait_for(check: object, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def _lines_until_blank(lines: Iterator[str]) -> list[str]:
    block = []
    for line in lines:
        if not line:
            return block
        block.append(line)
    return block


@pytest.mark.parametrize("server", SERVERS)
def test_sigterm_ends_open_watch_streams_with_unavailable_and_exits(
        tmp_path: Path, server: str) -> None:
    """DESIGN section 6: every stream gets ``event: error`` (unavailable), then a clean exit."""
    with server_process(tmp_path / "c.db", server=server, heartbeat=60) as running:
        streams = [httpx.stream("GET", running.url + "/v1/tenants/default/watch", timeout=30)
                   for _ in range(3)]
        opened = [s.__enter__() for s in streams]
        try:
            readers = [r.iter_lines() for r in opened]
            for lines in readers:
                assert "event: ready" in _lines_until_blank(lines)
            running.proc.terminate()
            for lines in readers:
                last = _lines_until_blank(lines)
                assert last[0] == "event: error", last
                error = json.loads(last[1].removeprefix("data: "))["error"]
                assert error["code"] == "unavailable"
                assert list(lines) == []  # and the stream ends there
            assert running.proc.wait(timeout=10) == 0
        finally:
            for s in streams:
                s.__exit__(None, None, None)


def test_live_server_fails_a_server_that_does_not_stop(tmp_path: Path) -> None:
    """The helper itself asserts a prompt, clean exit (it used to SIGKILL quietly)."""
    with pytest.raises(RuntimeError, match="still running"), \
            server_process(tmp_path / "c.db", stop_timeout=1) as running:
        running.proc.send_signal(signal.SIGSTOP)  # it cannot act on the SIGTERM to come


@pytest.mark.parametrize("server", SERVERS)
def test_a_closed_watch_stream_frees_its_slot_and_the_gauge(tmp_path: Path,
                                                            server: str) -> None:
    """Opening and closing one stream at a time never runs into --max-watchers."""
    db = tmp_path / "c.db"
    with confhub.open(str(db)) as hub:
        token, _ = hub.create_token(role="superadmin")
    auth = {"authorization": f"Bearer {token}"}
    with server_process(db, server=server, heartbeat=60,
                        options=["--max-watchers", "2"]) as running:
        url = running.url
        for _ in range(5):
            with httpx.stream("GET", url + "/v1/tenants/default/watch", headers=auth,
                              timeout=10) as r:
                assert r.status_code == 200
                assert "event: ready" in _lines_until_blank(r.iter_lines())
            _wait_for(lambda: _gauge(url, "confhub_watch_streams") == 0,
                      "the closed stream still counts as open")


def _stalled_put(port: int, path: str = "/config/a/b", method: str = "PUT") -> socket.socket:
    """A request announcing 100 bytes of body and sending 2."""
    conn = socket.create_connection(("127.0.0.1", port))
    conn.sendall(f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 "Content-Length: 100\r\n\r\n12".encode())
    conn.settimeout(20)
    return conn


def _read_all(conn: socket.socket) -> str:
    """Everything the server sends until it closes the connection."""
    chunks = []
    while chunk := conn.recv(4096):
        chunks.append(chunk)
    return b"".join(chunks).decode()


@pytest.mark.parametrize("server", SERVERS)
def test_a_body_that_never_arrives_is_answered_408(tmp_path: Path, server: str) -> None:
    with server_process(tmp_path / "c.db", server=server,
                        options=["--client-timeout", "0.5"]) as running:
        port = int(running.url.rsplit(":", 1)[1])
        for method, path in (("PUT", "/config/a/b"), ("PUT", "/v1/tenants/default/configs/a/b"),
                             ("POST", "/v1/tenants/default/txn")):
            with _stalled_put(port, path, method) as conn:
                answer = _read_all(conn)
            assert answer.startswith("HTTP/1.1 408"), answer
            assert '"request_timeout"' in answer
        # nothing was written
        assert httpx.get(running.url + "/config/a/b").status_code == 404


SLOW_HEADERS = {
    "half a request line": b"GET /hea",
    "headers without the blank line": b"GET /healthz HTTP/1.1\r\nHost: x\r\n",
}


@pytest.mark.parametrize("server", SERVERS)
@pytest.mark.parametrize("sent", SLOW_HEADERS.values(), ids=SLOW_HEADERS.keys())
def test_slow_headers_are_cut_off(tmp_path: Path, server: str, sent: bytes) -> None:
    """Closed without an answer once --client-timeout passes (docs/decisions.md: no 408 for
    headers), not left holding a connection; the server still answers others."""
    with server_process(tmp_path / "c.db", server=server,
                        options=["--client-timeout", "0.5"]) as running:
        port = int(running.url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port)) as conn:
            conn.sendall(sent)
            conn.settimeout(20)  # far past the deadline: a connection still open fails
            assert conn.recv(4096) == b""  # closed by the server, not left waiting
        assert httpx.get(running.url + "/healthz", timeout=10).status_code == 200


def test_uvicorn_cuts_off_a_connection_that_sends_nothing(tmp_path: Path) -> None:
    """uvicorn has no header deadline of its own (server/slow_headers.py adds one): neither a
    silent new connection nor a keep-alive connection that starts a second request and stalls
    may hold its slot."""
    with server_process(tmp_path / "c.db", server="uvicorn",
                        options=["--client-timeout", "0.5"]) as running:
        port = int(running.url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port)) as silent:
            silent.settimeout(20)
            assert silent.recv(4096) == b""
        with socket.create_connection(("127.0.0.1", port)) as conn:
            conn.settimeout(20)
            conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            first = conn.recv(4096)
            while not first.endswith(b"}"):  # the whole answer: headers, then {"ok": true}
                first += conn.recv(4096)
            assert first.startswith(b"HTTP/1.1 200"), first
            conn.sendall(b"GET /heal")  # the next request, stalled before uvicorn's keep-alive
            assert _read_rest(conn) == b""  # closes an idle connection


def _read_rest(conn: socket.socket) -> bytes:
    chunks = []
    while chunk := conn.recv(4096):
        chunks.append(chunk)
    return b"".join(chunks)


def test_many_stalled_clients_do_not_block_other_requests(tmp_path: Path) -> None:
    with server_process(tmp_path / "c.db", options=["--client-timeout", "30"]) as running:
        port = int(running.url.rsplit(":", 1)[1])
        stalled = [_stalled_put(port) for _ in range(200)]
        try:
            with httpx.Client(base_url=running.url, timeout=10) as client:
                assert client.get("/healthz").status_code == 200
                assert client.put("/config/m/k", json=1).status_code == 201
                assert client.get("/config/m/k").json()["value"] == 1
        finally:
            for conn in stalled:
                conn.close()


def _open_watch(port: int) -> tuple[socket.socket, str]:
    """A watch stream on a raw socket (nothing closes it behind the test's back): the socket
    and the status line and head the server answered with."""
    conn = socket.create_connection(("127.0.0.1", port))
    conn.sendall(b"GET /v1/tenants/default/watch HTTP/1.1\r\nHost: x\r\n\r\n")
    conn.settimeout(20)
    data = b""
    while b"\r\n\r\n" not in data:
        data += conn.recv(4096)
    return conn, data.decode()


def test_watch_streams_leave_a_reserve_for_other_requests(tmp_path: Path) -> None:
    """At the connection limit, watchers get 503 and health checks still answer."""
    with server_process(tmp_path / "c.db", heartbeat=60,
                        options=["--max-connections", "40"]) as running:
        port = int(running.url.rsplit(":", 1)[1])
        opened: list[socket.socket] = []
        try:
            head = ""
            for _ in range(40):
                conn, head = _open_watch(port)
                opened.append(conn)
                if not head.startswith("HTTP/1.1 200"):
                    break
            assert head.startswith("HTTP/1.1 503"), head
            assert "retry-after:" in head.lower()
            assert 16 <= len(opened) - 1 < 40  # a reserve was kept
            assert httpx.get(running.url + "/healthz", timeout=10).status_code == 200
            assert httpx.put(running.url + "/config/m/k", json=1, timeout=10).status_code == 201
        finally:
            for conn in opened:
                conn.close()


@pytest.mark.parametrize("server", SERVERS)
def test_a_burst_of_watchers_leaves_the_reserve(tmp_path: Path, server: str) -> None:
    """80 watch requests sent at once to a server with --max-connections 64: the streams
    admitted stay within the watch capacity (64 less a reserve of 16), the refused are
    answered 503 and let go (Connection: close, so they do not keep a slot idle), and
    health checks and writes still answer."""
    with server_process(tmp_path / "c.db", server=server, heartbeat=60,
                        options=["--max-connections", "64"]) as running:
        port = int(running.url.rsplit(":", 1)[1])
        burst = []
        try:
            for _ in range(80):  # all sent before any answer is read
                conn = socket.create_connection(("127.0.0.1", port))
                conn.sendall(b"GET /v1/tenants/default/watch HTTP/1.1\r\nHost: x\r\n\r\n")
                burst.append(conn)
            heads = []
            for conn in burst:
                conn.settimeout(20)
                data = b""
                while b"\r\n\r\n" not in data and (chunk := conn.recv(4096)):
                    data += chunk
                heads.append(data.decode(errors="replace").lower())
            admitted = sum(h.startswith("http/1.1 200") for h in heads)
            refused = [h for h in heads if h.startswith("http/1.1 503")]
            assert admitted <= 48 and admitted + len(refused) == 80, (admitted, len(refused))
            if server == "granian":  # uvicorn refuses itself past its connection limit
                assert admitted > 0
                assert all("connection: close" in h for h in refused), refused[0]
            assert httpx.get(running.url + "/healthz", timeout=10).status_code == 200
            assert httpx.put(running.url + "/config/m/k", json=1, timeout=10).status_code == 201
        finally:
            for conn in burst:
                conn.close()


def test_a_port_in_use_is_refused(tmp_path: Path) -> None:
    with live_server(tmp_path / "a.db") as url:
        port = url.rsplit(":", 1)[1]
        done = subprocess.run([sys.executable, "-m", "confhub.server", "--db",
                               str(tmp_path / "b.db"), "--port", port],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode != 0
        assert f"port {port}" in done.stderr and "already in use" in done.stderr
        assert not (tmp_path / "b.db").exists()
        assert httpx.put(url + "/config/m/k", json=1).status_code == 201
        assert all(httpx.get(url + "/config/m/k").status_code == 200 for _ in range(5))


def test_serve_refuses_a_port_in_use_before_opening_anything(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(SystemExit, match="already in use"):
            run(str(tmp_path / "c.db"), port=port)
    assert not (tmp_path / "c.db").exists()
