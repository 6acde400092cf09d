"""A real ``python -m confhub.server`` process for tests, on a free loopback port.

Tests talk to it over TCP exactly as users do; nothing is patched. The process is started once
per test session by the fixtures that need it and killed (by its own pid) at the end.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def live_server(db: Path | str, *, workers: int = 1, server: str = "granian",
                timeout: float = 30.0) -> Iterator[str]:
    """Start a server on ``db``; yield its base URL once ``/healthz`` answers."""
    port = free_port()
    cmd = [sys.executable, "-m", "confhub.server", "--db", str(db), "--port", str(port),
           "--workers", str(workers), "--server", server, "--log-level", "warning"]
    with Path(str(db) + f".{port}.log").open("w+b") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_ready(proc, url, log, timeout)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


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
