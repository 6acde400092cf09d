"""Real confhub servers for tests (ours and users'), on a free loopback port.

``live_server(db)`` runs ``python -m confhub.server`` as a subprocess — exactly what users
run; ``threaded_server(db)`` runs the same app on uvicorn in a thread, cheap enough to start
one per test. Either way clients talk to it over TCP; nothing is patched. ``app_lifespan``
runs an app's start-up and shutdown around ASGI calls made in process (no server at all).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import IO, Any

__all__ = [
    "ServerProcess", "app_lifespan", "free_port", "live_server", "serve_in_thread",
    "server_process", "threaded_server",
]

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


STOP_TIMEOUT = 10.0  # seconds a stopped server may take; DESIGN promises "a few"


class ServerProcess:
    """A running ``python -m confhub.server``: its URL, its process, its log."""

    def __init__(self, proc: subprocess.Popen[bytes], url: str, log: IO[bytes]) -> None:
        self.proc = proc
        self.url = url
        self._log = log

    def log(self) -> str:
        self._log.flush()
        self._log.seek(0)
        return self._log.read().decode(errors="replace")

    def stop(self, timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM, then the exit status; RuntimeError if it is still running after
        ``timeout`` seconds (it is killed then), because a server told to stop, stops."""
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise RuntimeError(f"server on {self.url} still running {timeout:g}s after "
                               f"SIGTERM: {self.log()[-2000:]}") from None

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()


@contextmanager
def server_process(db: Path | str, *, workers: int = 1, server: str = "granian",
                   timeout: float = 30.0, heartbeat: float | None = None,
                   port: int | None = None, options: Sequence[str] = (),
                   env: dict[str, str] | None = None,
                   stop_timeout: float = STOP_TIMEOUT) -> Iterator[ServerProcess]:
    """Start a server on ``db`` (``options``: more command-line options); yield it once
    ``/healthz`` answers. Leaving the block stops it and fails unless it exits cleanly
    (status 0, no traceback logged) within ``stop_timeout`` seconds."""
    port = port or free_port()
    cmd = [sys.executable, "-m", "confhub.server", "--db", str(db), "--port", str(port),
           "--workers", str(workers), "--server", server, "--log-level", "warning", *options]
    if heartbeat is not None:
        cmd += ["--heartbeat", str(heartbeat)]
    # The log sits next to a SQLite file; a database URL gets one in the temp directory.
    log_path = (Path(tempfile.gettempdir()) / f"confhub-server-{port}.log" if "://" in str(db)
                else Path(str(db) + f".{port}.log"))
    with log_path.open("w+b") as log:
        # Its own process group: the server's worker processes go with it, whatever happens.
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
                                start_new_session=True)
        running = ServerProcess(proc, f"http://127.0.0.1:{port}", log)
        try:
            _wait_ready(proc, running.url, log, timeout)
        except BaseException:
            running.kill()
            raise
        try:
            yield running
        except BaseException:
            running.kill()
            raise
        logged_before_stop = len(running.log())
        status = running.stop(stop_timeout)
        running.kill()  # worker processes left behind, if any
        if status != 0:
            raise RuntimeError(f"server on {running.url} exited with {status} when told to "
                               f"stop: {running.log()[-2000:]}")
        said_when_stopping = running.log()[logged_before_stop:]
        if "Traceback" in said_when_stopping:  # exit status 0 is not enough: granian hides it
            raise RuntimeError(f"server on {running.url} failed while stopping: "
                               f"{said_when_stopping[-2000:]}")


@contextmanager
def live_server(db: Path | str, *, workers: int = 1, server: str = "granian",
                timeout: float = 30.0, heartbeat: float | None = None,
                port: int | None = None, options: Sequence[str] = ()) -> Iterator[str]:
    """Start a server on ``db``; yield its base URL once ``/healthz`` answers. Stopping it
    at the end fails unless it exits promptly and cleanly."""
    with server_process(db, workers=workers, server=server, timeout=timeout,
                        heartbeat=heartbeat, port=port, options=options) as running:
        yield running.url


def _wait_ready(proc: subprocess.Popen[bytes], url: str, log: IO[bytes],
                timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            log.seek(0)
            raise RuntimeError(f"server exited ({proc.returncode}): "
                               f"{log.read().decode(errors='replace')}")
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"server on {url} did not start within {timeout}s")
        time.sleep(0.05)


@contextmanager
def threaded_server(db: Path | str) -> Iterator[str]:
    """A fresh hub on ``db`` served by uvicorn in a thread of this process, over real TCP.

    Much cheaper to start than a subprocess (no interpreter start, no imports), so suites that
    need a fresh database per test — the contract suite through the remote client — use this;
    route tests use :func:`live_server`, the real ``python -m confhub.server``.
    """
    from ..hub import open_embedded as open_hub
    from .app import create_app

    with serve_in_thread(create_app(open_hub(str(db)), close_hub=True)) as url:
        yield url


@contextmanager
def serve_in_thread(app: Any) -> Iterator[str]:
    """Serve any ASGI ``app`` (e.g. ``create_app(hub)`` on a hub of your own) on a free port."""
    import threading

    import uvicorn

    config = uvicorn.Config(app, log_level="warning", lifespan="on", access_log=False,
                            timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("threaded confhub server did not start")
            time.sleep(0.005)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@asynccontextmanager
async def app_lifespan(app: Any) -> AsyncIterator[Any]:
    """Run the ASGI ``app``'s lifespan start-up before the block and its shutdown after it,
    on the running loop, as a server would: for calling the app in process."""
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    lifespan = asyncio.ensure_future(app({"type": "lifespan", "asgi": {"version": "3.0"}},
                                         inbox.get, outbox.put))
    await inbox.put({"type": "lifespan.startup"})
    started = await outbox.get()
    if started["type"] != "lifespan.startup.complete":
        raise RuntimeError(f"the app did not start: {started}")
    try:
        yield app
    finally:
        await inbox.put({"type": "lifespan.shutdown"})
        await outbox.get()
        await lifespan
