"""Unread watch streams cost the server reads, never memory (docs/watch.md).

Many clients open a watch stream and never read it while writers keep committing. A server
that buffered every event for every stream would grow by streams x writes x event size; the
promise is that each stream holds at most MAX_PENDING revisions (shared between streams, as
the events are the same objects) and past that reads the change feed again when its client
reads on. Measured on a real ``python -m confhub.server`` (granian and uvicorn: their
transports buffer differently) from /proc.
"""

from __future__ import annotations

import os
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from confhub.server.testing import ServerProcess, server_process

STREAMS = 150
WRITES = 1_500
VALUE_BYTES = 4 * 1024
MiB = 1024 * 1024


def rss_of_session(leader: int) -> int:
    """Resident memory of every process in ``leader``'s session (the server and its
    workers), in bytes, from /proc/<pid>/status VmRSS."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.getsid(int(entry)) != leader:
                continue
            with open(f"/proc/{entry}/status", encoding="ascii") as status:
                for line in status:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
        except (OSError, ValueError):
            continue  # a process that ended meanwhile
    return total


@pytest.fixture(params=["granian", "uvicorn"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServerProcess]:
    if not os.path.exists("/proc/self/status"):
        pytest.skip("needs /proc to read the server's memory")
    with server_process(
        tmp_path / "c.db", server=request.param, options=["--max-connections", "1000"]
    ) as running:
        yield running


def open_unread_stream(url: str) -> socket.socket:
    """A watch stream whose client never reads: a small receive buffer, so the server's
    writes back up quickly instead of filling the kernel's buffers."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, int(port)))
    sock.sendall(
        b"GET /v1/tenants/default/watch?since=0 HTTP/1.1\r\nHost: test\r\n"
        b"Accept: text/event-stream\r\n\r\n"
    )
    return sock


def open_streams(client: httpx.Client, expected: int) -> int:
    """The server's count of open watch streams, once it reaches ``expected`` (or 10 s)."""
    deadline = time.monotonic() + 10
    while True:
        text = client.get("/metrics").text
        count = int(float(re.search(r"^confhub_watch_streams (\S+)$", text, re.M)[1]))  # type: ignore[index]
        if count >= expected or time.monotonic() > deadline:
            return count
        time.sleep(0.05)


def test_unread_watch_streams_keep_server_memory_bounded(server: ServerProcess) -> None:
    """150 unread streams, 1,500 writes of 4 KiB: the server grows by less than 100 MiB, and
    another client is still answered.

    The bound, with reason: were every event buffered per stream, the server would hold
    150 streams x 1,500 events x ~4.2 KiB (value plus SSE framing) ≈ 920 MiB more. Bounded,
    a stream holds at most MAX_PENDING (1,024) revisions — the same event objects for every
    stream, 1,024 x 4 KiB ≈ 4 MiB, encoded once each (≈ 4 MiB more) — and past that drops its
    queue to read the feed again later — plus what each
    connection has in flight (a chunk or two; the rest waits in the kernel's socket buffers,
    which RSS does not count). 100 MiB leaves room for allocator slack and SQLite's page cache
    and is still nine times below the unbounded figure.
    """
    with httpx.Client(base_url=server.url, timeout=30) as client:
        client.put("/config/warm/up", json={"x": 1}).raise_for_status()  # first-use costs
        streams = [open_unread_stream(server.url) for _ in range(STREAMS)]
        try:
            assert open_streams(client, STREAMS) == STREAMS
            before = rss_of_session(server.proc.pid)
            value = {"blob": "x" * VALUE_BYTES}
            for i in range(WRITES):
                client.put(f"/config/load/k{i % 50}", json=value).raise_for_status()
            after = rss_of_session(server.proc.pid)
            # Another client is answered while the streams stay stalled.
            assert client.get("/healthz").status_code == 200
            assert client.get("/config/load/k7").json()["value"] == value
        finally:
            for sock in streams:
                sock.close()
    grown = (after - before) / MiB
    assert grown < 100, (
        f"server memory grew by {grown:.0f} MiB (from {before / MiB:.0f} MiB) with {STREAMS} "
        "unread streams"
    )
