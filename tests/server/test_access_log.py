"""The access log writes the lines of one turn of the event loop together, in whole lines that
a pipe takes in one piece, and loses none: not under a burst, not at the end of a turn, not
without a loop."""

from __future__ import annotations

import asyncio
import json

from hypothesis import given
from hypothesis import strategies as st

from confhub.server.requestlog import _ATOMIC_WRITE, AccessLog


class Recording:
    """A stream that keeps each ``write`` apart, as the system calls would be."""

    def __init__(self) -> None:
        self.writes: list[str] = []

    def write(self, text: str) -> int:
        self.writes.append(text)
        return len(text)

    def flush(self) -> None:
        pass


def record(i: int, path: str = "/config/app/k") -> dict[str, object]:
    return {"time": "2026-11-25T00:00:00.000+00:00", "request_id": f"id-{i}", "method": "PUT",
            "route": "/config/{namespace}/{key}", "path": path, "tenant": "default",
            "status": 200, "duration_ms": 0.5, "token": None, "error": None}


def test_the_lines_of_one_turn_are_written_once_at_its_end() -> None:
    stream = Recording()
    log = AccessLog("json", stream)

    async def turn() -> list[str]:
        for i in range(5):
            log.write(record(i))
        during = list(stream.writes)
        await asyncio.sleep(0)  # the loop turns: the flush scheduled by the first line runs
        return during

    assert asyncio.run(turn()) == []
    [written] = stream.writes
    assert [json.loads(line)["request_id"] for line in written.splitlines()] == \
        [f"id-{i}" for i in range(5)]


def test_a_burst_is_cut_into_whole_lines_a_pipe_takes_whole() -> None:
    stream = Recording()
    log = AccessLog("text", stream)

    async def burst() -> None:
        for i in range(200):
            log.write(record(i, path="/config/app/ключ"))  # not ASCII: bytes, not characters

    asyncio.run(burst())
    assert len(stream.writes) > 1
    assert all(len(chunk.encode()) <= _ATOMIC_WRITE and chunk.endswith("\n")
               for chunk in stream.writes)
    lines = "".join(stream.writes).splitlines()
    assert [line.split("id=")[1] for line in lines] == [f"id-{i} tenant=default"
                                                         for i in range(200)]


def test_without_a_running_loop_a_line_is_written_at_once() -> None:
    stream = Recording()
    AccessLog("text", stream).write(record(7))
    [written] = stream.writes
    assert "id=id-7" in written


def test_lines_written_in_the_last_turn_are_flushed_on_demand() -> None:
    stream = Recording()
    log = AccessLog("json", stream)

    async def last_turn() -> None:
        log.write(record(1))
        log.flush()  # what the app's shutdown does

    asyncio.run(last_turn())
    assert [json.loads(w)["request_id"] for w in stream.writes] == ["id-1"]


@given(tenant=st.none() | st.sampled_from(["default", "team-a"]),
       token=st.none() | st.sampled_from(["", "t0k3n1d"]),
       error=st.none() | st.sampled_from(["not_found", "validation_failed"]),
       status=st.sampled_from([200, 201, 304, 404, 412, 500]),
       duration=st.floats(min_value=0, max_value=1e6, allow_nan=False),
       fmt=st.sampled_from(["text", "json"]))
def test_a_request_line_is_the_line_of_its_record(tenant: str | None, token: str | None,
                                                 error: str | None, status: int,
                                                 duration: float, fmt: str) -> None:
    """``request`` (the server's path, no record dict) writes what ``write`` of the record
    with the same fields writes, in both formats."""
    fields = {"time": "2026-11-25T03:04:05.678+00:00", "request_id": "id-1", "method": "GET",
              "route": "/config/{namespace}/{key}", "path": "/config/app/ключ",
              "tenant": tenant, "status": status, "duration_ms": round(duration, 3),
              "token": token, "error": error}
    by_record, by_fields = Recording(), Recording()
    AccessLog(fmt, by_record).write(fields)
    AccessLog(fmt, by_fields).request(**fields)  # type: ignore[arg-type]
    assert by_fields.writes == by_record.writes and len(by_record.writes) == 1
