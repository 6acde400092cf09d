"""``serve.run`` and ``python -m confhub.server``: the rules checked before anything is served."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from confhub.server.serve import is_loopback, run
from confhub.server.testing import live_server


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("localhost", True), ("::1", True), ("[::1]", True),
    ("127.0.0.2", True), ("0.0.0.0", False), ("10.1.2.3", False), ("example.org", False),
])
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_refuses_a_public_bind_without_auth(tmp_path: Path) -> None:
    """Without tokens, DESIGN section 7 allows only loopback unless --insecure."""
    with pytest.raises(SystemExit, match="--insecure"):
        run(str(tmp_path / "c.db"), host="0.0.0.0", port=1)
    assert not (tmp_path / "c.db").exists()


def test_refuses_zero_workers(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="workers"):
        run(str(tmp_path / "c.db"), workers=0)


def test_module_entry_point_has_help() -> None:
    done = subprocess.run([sys.executable, "-m", "confhub.server", "--help"],
                          capture_output=True, text=True, timeout=60, check=True)
    assert "--db" in done.stdout and "--workers" in done.stdout


def test_two_workers_share_one_database(tmp_path: Path) -> None:
    """Writes through either worker reach the other's cache (within its follower's few ms)."""
    expected = sorted(range(20), key=lambda i: f"k{i}")
    with live_server(tmp_path / "c.db", workers=2) as url:
        for i in range(20):
            assert httpx.put(f"{url}/config/m/k{i}", json=i).status_code == 201
        deadline = time.monotonic() + 5
        while True:  # every fresh connection may land on either worker
            values = [e["value"] for e in httpx.get(f"{url}/config/m").json()["items"]]
            if values == expected or time.monotonic() > deadline:
                break
            time.sleep(0.01)
        assert values == expected


def test_uvicorn_serves_the_same_app(tmp_path: Path) -> None:
    with live_server(tmp_path / "c.db", server="uvicorn") as url:
        assert httpx.put(f"{url}/config/m/k", json=1).json()["version"] == 1
        assert httpx.get(f"{url}/config/m/k").headers["etag"] == '"1"'


def test_stops_promptly_after_serving_writes(tmp_path: Path) -> None:
    """SIGTERM after concurrent writes ends the server in seconds (no stuck worker threads)."""
    import concurrent.futures
    import signal

    from confhub.server.testing import free_port

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "confhub.server", "--db",
                             str(tmp_path / "c.db"), "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{url}/healthz", timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            codes = list(pool.map(lambda i: httpx.put(f"{url}/config/m/k{i}", json=i)
                                  .status_code, range(64)))
        assert set(codes) == {201}
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
