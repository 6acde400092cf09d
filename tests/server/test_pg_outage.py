"""A real PostgreSQL outage: the connection to the database is cut under a running server.

The shared test PostgreSQL must keep running for everyone else, so the outage is made on the
wire: the server reaches PostgreSQL through a TCP relay that this test closes (connections
reset, new ones refused, as when the database restarts) and opens again. Requests must not
hang for the pool's timeout: they answer 503 with Retry-After at once, /readyz too, and the
server recovers by itself.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

from confhub.server.testing import free_port, threaded_server

ANSWER_WITHIN = 3.0  # the client's own timeout: far below the pool's 10 s wait


class Relay:
    """127.0.0.1:port -> target, which can be cut (``down``) and restored (``up``)."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self._server: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self.up()

    def up(self) -> None:
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self.port))
        server.listen(64)
        self._server = server
        threading.Thread(target=self._accept, args=(server,), daemon=True).start()

    def down(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        with self._lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def relayed(pg_url: str) -> Iterator[tuple[str, Relay]]:
    parts = urlsplit(pg_url)
    relay = Relay((parts.hostname or "127.0.0.1", parts.port or 5432))
    netloc = f"{parts.username}@127.0.0.1:{relay.port}" if parts.username else \
        f"127.0.0.1:{relay.port}"
    url = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    with threaded_server(url) as server:
        yield server, relay
    relay.down()


def test_postgres_down_answers_503_at_once_and_recovers(relayed: tuple[str, Relay]) -> None:
    url, relay = relayed
    with httpx.Client(base_url=url, timeout=ANSWER_WITHIN) as http:
        assert http.put("/config/m/k", json=1).status_code == 201
        relay.down()
        for _ in range(3):  # the first notices the outage, the others do not wait either
            r = http.put("/config/m/k", json=2)
            assert r.status_code == 503, r.text
            assert r.json()["error"]["code"] == "unavailable"
            assert int(r.headers["retry-after"]) >= 1
            assert http.get("/v1/tenants/default/configs/m/k/history").status_code == 503
            ready = http.get("/readyz")
            assert ready.status_code == 503
        assert http.get("/healthz").status_code == 200
        relay.up()
        deadline = time.monotonic() + 20
        while (r := http.put("/config/m/k", json=2)).status_code != 200:
            assert r.status_code == 503 and time.monotonic() < deadline, r.text
            time.sleep(0.1)
        assert r.json()["version"] == 2
        assert http.get("/readyz").status_code == 200
