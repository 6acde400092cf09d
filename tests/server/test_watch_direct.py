"""A watch stream's revisions written straight from the bell (server/routes/watchsend.py).

Whether the server's ``send`` finishes at once or makes the stream wait, every revision
reaches the client once and in order, and a failed write ends the stream.
"""

from __future__ import annotations

import asyncio
import functools
import re
import socket
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import confhub
from confhub.model import WatchEvent
from confhub.server.app import create_app
from confhub.server.routes.watchsend import DirectSend
from confhub.server.testing import app_lifespan, server_process

IDS = re.compile(rb"^id: (\d+)\r\ndata: ", re.M)


def event(revision: int) -> WatchEvent:
    return WatchEvent(tenant="default", revision=revision, changes=())


class Recorder:
    """A server ``send`` whose writes finish at once, or after ``turns`` turns of the loop
    (the client reads slowly), or fail (the client is gone); it records what was written."""

    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.turns = 0
        self.fail = False

    def __call__(self, message: dict[str, Any]) -> Awaitable[None]:
        turns, fail = self.turns, self.fail

        async def write() -> None:
            for _ in range(turns):
                await asyncio.sleep(0)
            if fail:
                raise OSError("connection reset by peer")
            if message["type"] == "http.response.body":
                self.written.append(message["body"])

        return write()


def in_loop(test: Callable[..., Awaitable[None]]) -> Callable[..., None]:
    """Run an async test in a loop of its own."""

    @functools.wraps(test)
    def run(*args: Any, **kwargs: Any) -> None:
        asyncio.run(test(*args, **kwargs))  # type: ignore[arg-type]

    return run


def direct(recorder: Recorder) -> tuple[DirectSend, list[int], list[bool]]:
    counted: list[int] = []
    hung_up: list[bool] = []
    sender = DirectSend(0, lambda e: b"id: %d\r\n\r\n" % e.revision, 64 * 1024,
                        counted.append, lambda: hung_up.append(True))
    sender.send = recorder
    return sender, counted, hung_up


@in_loop
async def test_a_write_that_finishes_at_once_is_done_when_the_call_returns() -> None:
    recorder = Recorder()
    sender, counted, _ = direct(recorder)
    assert sender([event(1), event(2)])
    assert recorder.written == [b"id: 1\r\n\r\nid: 2\r\n\r\n"]
    assert (sender.sent, counted) == (2, [2])


@in_loop
async def test_while_a_write_waits_the_next_revision_is_left_to_the_task() -> None:
    recorder = Recorder()
    sender, _, _ = direct(recorder)
    recorder.turns = 3
    assert sender([event(1)])
    assert recorder.written == []  # under way
    assert not sender([event(2)])  # refused: the stream's task writes it, after this one
    await sender.idle()
    assert recorder.written == [b"id: 1\r\n\r\n"]
    recorder.turns = 0
    assert sender([event(2)])
    assert recorder.written == [b"id: 1\r\n\r\n", b"id: 2\r\n\r\n"]


@pytest.mark.parametrize("turns", [0, 2])
@in_loop
async def test_a_failed_write_hangs_the_stream_up(turns: int) -> None:
    recorder = Recorder()
    sender, counted, hung_up = direct(recorder)
    recorder.turns, recorder.fail = turns, True
    assert sender([event(1)])
    await sender.idle()
    assert sender.gone and hung_up == [True]
    assert not sender([event(2)])  # nothing more is written to a gone client
    assert recorder.written == []


@in_loop
async def test_a_burst_bigger_than_one_write_is_left_to_the_task() -> None:
    recorder = Recorder()
    counted: list[int] = []
    sender = DirectSend(0, lambda e: b"x" * 40, 100, counted.append, lambda: None)
    sender.send = recorder
    assert not sender([event(1), event(2), event(3)])  # 120 bytes > 100
    assert sender([event(1), event(2)])
    assert counted == [2]


# ------------------------------------------------------------------- the whole app, in process


async def _stream_of(app: Any, write: Recorder, writes: list[Callable[[], Awaitable[None]]],
                     last: int, then: Callable[[], Awaitable[None]] | None = None
                     ) -> list[int]:
    """Open a watch stream on ``app`` whose ``send`` is ``write``, run ``writes``, read until
    revision ``last``, then run ``then`` before hanging up; the ids the client received."""
    hung_up = asyncio.Event()

    async def receive() -> dict[str, Any]:
        await hung_up.wait()
        return {"type": "http.disconnect"}

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "GET", "scheme": "http", "path": "/v1/tenants/default/watch",
             "raw_path": b"/v1/tenants/default/watch", "query_string": b"",
             "root_path": "", "headers": [(b"host", b"test")],
             "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}
    stream = asyncio.ensure_future(app(scope, receive, write))
    try:
        while not write.written:  # the ready marker
            await asyncio.sleep(0.001)
        for step in writes:
            await step()
        deadline = time.monotonic() + 30
        while str(last).encode() not in b"".join(write.written[-1:]):
            assert time.monotonic() < deadline, b"".join(write.written)[-300:]
            await asyncio.sleep(0.001)
        if then is not None:
            await then()
    finally:
        hung_up.set()
        await asyncio.wait_for(stream, 10)
    return [int(found) for found in IDS.findall(b"".join(write.written))]


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=st.lists(st.tuples(st.integers(0, 3), st.booleans()), min_size=1, max_size=12))
def test_every_revision_arrives_once_in_order_however_the_writes_wait(
        plan: list[tuple[int, bool]]) -> None:
    """Each step of ``plan``: how many loop turns the server's writes take from then on, and
    whether the revision is committed while the loop runs (a thread) or in one go with the
    next (so several wait at once)."""

    async def run(folder: str) -> None:
        hub = confhub.open(f"sqlite:///{folder}/c.db")
        cfg = hub.tenant()
        cfg.set("n", "warm", 0)
        write = Recorder()
        first = cfg.revision

        def step(number: int, turns: int, threaded: bool) -> Callable[[], Awaitable[None]]:
            async def go() -> None:
                write.turns = turns
                if threaded:
                    await asyncio.to_thread(cfg.set, "n", f"k{number}", number)
                else:
                    cfg.set("n", f"k{number}", number)  # the loop is held: they queue up

            return go

        writes = [step(n, turns, threaded) for n, (turns, threaded) in enumerate(plan)]
        try:
            async with app_lifespan(create_app(hub)) as app:
                ids = await _stream_of(app, write, writes, first + len(plan))
        finally:
            hub.close()
        assert ids == list(range(first + 1, first + len(plan) + 1))  # each once, in order

    with tempfile.TemporaryDirectory() as folder:
        asyncio.run(run(folder))


def test_a_stream_kept_busy_by_direct_writes_pings_only_after_a_heartbeat_of_quiet() -> None:
    """Keep-alive pings are for idle streams: revisions every 0.1 s for 2.5 s with a 1 s
    heartbeat bring no ping, and once the writes stop a ping follows."""

    async def run(folder: str) -> bytes:
        hub = confhub.open(f"sqlite:///{folder}/c.db")
        cfg = hub.tenant()
        write = Recorder()
        seen: list[bytes] = []  # what the client had when the last revision arrived
        try:
            async with app_lifespan(create_app(hub, heartbeat=1.0)) as app:
                async def busy() -> None:
                    for number in range(25):
                        await asyncio.to_thread(cfg.set, "n", f"k{number}", number)
                        await asyncio.sleep(0.1)

                async def quiet() -> None:
                    seen.append(b"".join(write.written))
                    deadline = time.monotonic() + 30
                    while b": ping" not in b"".join(write.written):
                        assert time.monotonic() < deadline, "no ping after the writes stopped"
                        await asyncio.sleep(0.05)

                await _stream_of(app, write, [busy], cfg.revision + 25, quiet)
        finally:
            hub.close()
        return seen[0]

    with tempfile.TemporaryDirectory() as folder:
        before_quiet = asyncio.run(run(folder))
    assert b": ping" not in before_quiet
    assert len(IDS.findall(before_quiet)) == 25


# ------------------------------------------------------------------- a real server


def _read_until(sock: socket.socket, needle: bytes, timeout: float) -> bytes:
    sock.settimeout(timeout)
    seen = b""
    while needle not in seen:
        chunk = sock.recv(1 << 20)
        assert chunk, f"the stream ended before {needle!r}"
        seen += chunk
    return seen


@pytest.mark.parametrize("server", ["granian", "uvicorn"])
def test_a_client_that_stops_reading_then_reads_gets_every_revision_once(
        server: str, tmp_path: Path) -> None:
    """Five MB of revisions while the client does not read: the server's writes to it have
    to wait (its socket buffers are full), and then it reads them all, in order."""
    value = {"blob": "x" * 16 * 1024}
    with server_process(tmp_path / "c.db", server=server) as running, \
            httpx.Client(base_url=running.url, timeout=30) as client:
        client.put("/config/n/warm", json=0).raise_for_status()
        host, port = running.url.removeprefix("http://").split(":")
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect((host, int(port)))
        sock.sendall(b"GET /v1/tenants/default/watch HTTP/1.1\r\nHost: test\r\n\r\n")
        with sock:
            _read_until(sock, b"event: ready", 10)
            revisions = [client.put(f"/config/n/k{i % 20}", json=value).json()["revision"]
                         for i in range(300)]
            text = _read_until(sock, b"id: %d\r\n" % revisions[-1], 30)
    ids = [int(found) for found in re.findall(rb"\r\nid: (\d+)\r\ndata: ", text)]
    assert ids == revisions
