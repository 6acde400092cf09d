"""A real ``confhub serve`` with two workers and the JSON request log, for the ops tests.

The server runs as users run it (``python -m confhub.server``) in its own process group; its
stderr (the request log) goes to a file the tests read.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from confhub.server.testing import free_port

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@dataclass
class Served:
    url: str
    log: Path
    db: Path


@contextlib.contextmanager
def serve(db: Path, *args: str, workers: int = 2) -> Iterator[Served]:
    port = free_port()
    log = db.with_suffix(f".{port}.log")
    cmd = [sys.executable, "-m", "confhub.server", "--db", str(db), "--port", str(port),
           "--workers", str(workers), "--log-level", "info", *args]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"},
                                start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, log.read_text()
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.05)
        yield Served(url, log, db)
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serve(tmp_path_factory.mktemp("ops") / "confhub.db", "--log-format", "json") as s:
        yield s


def require_binary(path: str) -> str:
    """The Debian binary, or a skip (a failure under CI=true)."""
    found = path if os.path.exists(path) else shutil.which(os.path.basename(path))
    if found is None:
        message = f"{path} is not installed (Debian package {os.path.basename(path)})"
        if IN_CI:
            pytest.fail(f"{message}; CI=true requires it")
        pytest.skip(message)
    return found
