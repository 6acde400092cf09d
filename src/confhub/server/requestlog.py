"""The outermost request layer: request id, one log line, and the metrics of every answer.

It wraps everything (the auth layer and the cached fast paths included), so a 401, a 429 and a
cached read are logged and counted like any other answer. For each HTTP request it

1. takes the client's ``X-Request-Id`` (at most 200 characters) or makes one, puts it in the
   request headers — so the audit records of the request carry the same id — and answers it
   in the ``X-Request-Id`` response header;
2. times the request and remembers its status and, for error answers, the error code;
3. counts it (``metrics.Metrics.observe``) under the route *template*
   (``/v1/tenants/{tenant}/configs/{namespace}/{key}``, never a path), so label values stay
   few;
4. writes one log line, JSON or text: time, request id, method, route, path, tenant, status,
   duration, token id. Never a header value, a query value or a body: no value and no secret
   can reach the log.

Log lines go to stderr, only when the server's log level is ``info`` or ``debug``. The lines
of one turn of the event loop are written together, after the answers of that turn, in
``write`` calls of whole lines of at most ``PIPE_BUF`` bytes, so lines from several workers
never interleave mid-line. One system call per request was 10 % of the event loop's samples
under 64 concurrent PUTs (py-spy); batched, a busy loop writes one per turn. For example, at
64 connections a turn that finishes 9 requests appends 9 lines and writes them once, at the
end of the turn; a lone request's line is written in the next turn, well under a millisecond
after its answer.
"""

from __future__ import annotations

import json
import random
import select
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import IO, Any
from urllib.parse import parse_qsl

from .auth import PRINCIPAL_KEY, match
from .loops import running_loop
from .metrics import Metrics, change_operation, error_code_of

__all__ = ["LOG_FORMATS", "AccessLog", "RequestLayer", "Tracked"]

LOG_FORMATS = ("text", "json")
MAX_REQUEST_ID = 200
_CAPTURE_LIMIT = 64 * 1024  # error and txn bodies are small; never buffer a big answer
# One write of at most this many bytes reaches a pipe whole (POSIX); a longer one may not.
_ATOMIC_WRITE = getattr(select, "PIPE_BUF", 512)
# Request ids need to be unique, not secret: the random module's PRNG instead of a uuid4,
# whose os.urandom system call was 5 % of a cached GET. Its own generator, which Python
# reseeds in every forked worker (a private ``random.Random()`` made before the fork would
# give every worker the same ids).


class AccessLog:
    """Writes one line per request in ``format`` (``text`` or ``json``) to ``stream``; the
    lines of one turn of the running event loop go out together at its end (module
    docstring), and at once when no loop runs."""

    def __init__(self, format: str = "text", stream: IO[str] | None = None) -> None:
        if format not in LOG_FORMATS:
            raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}, "
                             f"not {format!r}")
        self.format = format
        self.stream = stream
        self._pending: list[str] = []

    def line(self, record: dict[str, Any]) -> str:
        if self.format == "json":
            return json.dumps(record, separators=(",", ":")) + "\n"
        extra = " ".join(f"{name}={record[name]}" for name in ("tenant", "token", "error")
                         if record.get(name))
        return (f"{record['time']} {record['status']} {record['method']} {record['path']} "
                f"{record['duration_ms']}ms id={record['request_id']}"
                + (f" {extra}" if extra else "") + "\n")

    def write(self, record: dict[str, Any]) -> None:
        self._queue(self.line(record))

    def request(self, time: str, request_id: str, method: str, route: str, path: str,
                tenant: str | None, status: int, duration_ms: float, token: str | None,
                error: str | None) -> None:
        """The line of one answered request (``RequestLayer.finish``), the same as ``write``
        of a record with these fields gives; the text format is made from the fields
        directly, without the record, since a cached GET is a few µs in all."""
        if self.format == "json":
            self.write({"time": time, "request_id": request_id, "method": method,
                        "route": route, "path": path, "tenant": tenant, "status": status,
                        "duration_ms": duration_ms, "token": token, "error": error})
            return
        line = f"{time} {status} {method} {path} {duration_ms}ms id={request_id}"
        if tenant:
            line += f" tenant={tenant}"
        if token:
            line += f" token={token}"
        if error:
            line += f" error={error}"
        self._queue(line + "\n")

    def _queue(self, line: str) -> None:
        pending = self._pending
        pending.append(line)
        if len(pending) > 1:
            return  # the turn's flush is already scheduled
        try:
            running_loop().call_soon(self.flush)
        except RuntimeError:  # no loop runs in this thread
            self.flush()

    def flush(self) -> None:
        """Write the pending lines, in as few writes of whole lines as ``PIPE_BUF`` allows."""
        lines, self._pending = self._pending, []
        stream = self.stream or sys.stderr
        try:
            for chunk in _whole_line_chunks(lines, _ATOMIC_WRITE):
                stream.write(chunk)
                stream.flush()
        except (OSError, ValueError):
            pass  # a closed or full log must never fail a request


def _whole_line_chunks(lines: list[str], limit: int) -> Iterator[str]:
    """``lines`` joined into chunks of at most ``limit`` bytes once encoded, never splitting
    a line (a longer line is a chunk of its own). Three lines of 3 bytes with a limit of 6
    give two chunks: the first two lines, then the third."""
    chunk: list[str] = []
    size = 0
    for line in lines:
        length = len(line) if line.isascii() else len(line.encode())
        if chunk and size + length > limit:
            yield "".join(chunk)
            chunk, size = [], 0
        chunk.append(line)
        size += length
    if chunk:
        yield "".join(chunk)


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")  # type: ignore[no-any-return]
    return None


def _dry_run(scope: dict[str, Any], body: bytes | None) -> bool:
    raw = scope.get("query_string")
    if raw and b"dry_run" in raw:
        query = dict(parse_qsl(raw.decode("latin-1")))
        if query.get("dry_run", "").lower() in ("1", "true", "yes", "on"):
            return True
    if body:  # a transaction says in its answer whether it was a dry run
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return False
        return isinstance(data, dict) and data.get("dry_run") is True
    return False


_stamp: tuple[int, str] = (-1, "")  # (Unix time in ms, its ISO 8601 text)


def _log_time() -> str:
    """Now in UTC, ISO 8601 to the millisecond: ``2026-11-25T03:04:05.678+00:00``. Made once
    per millisecond, since ``isoformat`` took 2 µs of a 15 µs cached GET and a busy server
    answers dozens of requests within one millisecond."""
    global _stamp
    ms = time.time_ns() // 1_000_000
    if ms != _stamp[0]:
        seconds, millis = divmod(ms, 1000)
        text = datetime.fromtimestamp(seconds, UTC).replace(microsecond=millis * 1000) \
            .isoformat(timespec="milliseconds")
        _stamp = (ms, text)
    return _stamp[1]


class Tracked:
    """One request as the request layer follows it, from :meth:`RequestLayer.begin` to
    :meth:`RequestLayer.finish`."""

    __slots__ = ("capture", "method", "request_id", "route", "started", "tenant")

    def __init__(self, request_id: str, method: str, route: str, tenant: str | None,
                 capture: bool) -> None:
        self.started = time.perf_counter()
        self.request_id = request_id
        self.method = method
        self.route = route
        self.tenant = tenant
        self.capture = capture  # keep the answer's body: a txn says if it was a dry run

    def id_header(self) -> tuple[bytes, bytes]:
        return (b"x-request-id", self.request_id.encode("latin-1"))


class RequestLayer:
    """ASGI middleware: request id, metrics and the access log (see the module docstring)."""

    def __init__(self, app: Any, metrics: Metrics, log: AccessLog | None = None) -> None:
        self.app = app
        self.metrics = metrics
        self.log = log

    def begin(self, scope: dict[str, Any]) -> Tracked:
        """Start following an HTTP request: its id (the client's, or a new one added to the
        request's headers), its route template and tenant, the clock."""
        request_id = _header(scope, b"x-request-id")
        if request_id:
            request_id = request_id[:MAX_REQUEST_ID]
        else:
            request_id = f"{random.getrandbits(128):032x}"
            scope["headers"] = [*scope.get("headers", ()),
                                (b"x-request-id", request_id.encode("latin-1"))]
        method = scope["method"]
        found = match(method, scope["path"])
        route = found[0].template if found is not None else "unmatched"
        tenant = found[1].get("tenant") if found is not None else None
        if found is not None and (found[0].tenant or "").startswith("="):
            tenant = found[0].tenant[1:]  # type: ignore[index]  # the simple surface
        return Tracked(request_id, method, route, tenant,
                       change_operation(method, route) == "txn")

    def finish(self, tracked: Tracked, scope: dict[str, Any], status: int,
               body: bytes | None, answered: bool = True) -> None:
        """Count and log the answered request; ``body`` is the answer's body when it was
        kept (an error, a transaction), which names the error code or the dry run."""
        seconds = time.perf_counter() - tracked.started
        code = error_code_of(body) if body is not None and status >= 400 else None
        if not answered:
            code = "internal"
        self.metrics.observe(tracked.method, tracked.route, status, seconds, tracked.tenant,
                             code, _dry_run(scope, body if status < 300 else None))
        if self.log is not None:
            principal = scope.get(PRINCIPAL_KEY)
            self.log.request(_log_time(), tracked.request_id, tracked.method, tracked.route,
                             scope["path"], tracked.tenant, status, round(seconds * 1000, 3),
                             getattr(principal, "token_id", None), code)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        tracked = self.begin(scope)
        status = 500
        captured: list[bytes] = []
        answered = False
        capture = tracked.capture

        async def send_wrapper(message: dict[str, Any]) -> None:
            nonlocal status, capture, answered
            if message["type"] == "http.response.start":
                status = message["status"]
                answered = True
                capture = capture or status >= 400
                message = {**message, "headers": [*message.get("headers", ()),
                                                  tracked.id_header()]}
            elif (message["type"] == "http.response.body" and capture
                  and sum(map(len, captured)) < _CAPTURE_LIMIT):
                captured.append(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            self.finish(tracked, scope, status, b"".join(captured) if captured else None,
                        answered)
