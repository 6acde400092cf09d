"""The real executable, end to end: a handful of runs, since interpreter start-up is slow.

Covers what CliRunner cannot: the console script and ``python -m confhub.cli`` exist, real
stdin pipes, exit codes as the shell sees them, and ``confhub serve`` serving a database that
the CLI then reads and writes over HTTP.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from confhub.server.testing import free_port

EXE = Path(sys.executable).with_name("confhub")
CONFHUB = [str(EXE)] if EXE.exists() else [sys.executable, "-m", "confhub.cli"]


def run(*args: str, env: dict[str, str], input: str | None = None
        ) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CONFHUB_")}
    return subprocess.run([*CONFHUB, *args], input=input, capture_output=True, text=True,
                          env={**clean, **env}, timeout=60)


def test_python_dash_m_runs_the_same_app() -> None:
    result = subprocess.run([sys.executable, "-m", "confhub.cli", "--help"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "NAMESPACE/KEY" in result.stdout


def test_local_database_from_the_shell(tmp_path: Path) -> None:
    env = {"CONFHUB_DB": str(tmp_path / "c.db")}
    created = run("set", "models/claude-opus", "-", "--json", env=env,
                  input='{"max_tokens": 8192}')
    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout)["version"] == 1
    got = run("get", "models/claude-opus", "--raw", env=env)
    assert json.loads(got.stdout) == {"max_tokens": 8192}
    assert run("get", "models/missing", env=env).returncode == 3
    assert run("get", "no-slash", env=env).returncode == 2
    assert run("set", "models/claude-opus", "{}", "--if-version", "0", env=env).returncode == 4
    assert run("frobnicate", env=env).returncode == 2


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    """``confhub serve`` itself, on a free port, until the test ends."""
    port = free_port()
    log = (tmp_path / "serve.log").open("w")
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CONFHUB_")}
    proc = subprocess.Popen([*CONFHUB, "serve", "--db", str(tmp_path / "served.db"),
                             "--port", str(port), "--log-level", "warning"],
                            stdout=log, stderr=subprocess.STDOUT, env=clean)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "confhub serve did not start"
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def test_serve_then_talk_to_it_over_http(served: str, tmp_path: Path) -> None:
    remote = {"CONFHUB_URL": served}
    assert run("set", "models/claude-opus", '{"max_tokens": 8192}', "-r", "init",
               env=remote).returncode == 0
    assert run("patch", "models/claude-opus", '{"temperature": 0.2}', env=remote).returncode == 0
    history = json.loads(run("history", "models/claude-opus", "--json", env=remote).stdout)
    assert [v["version"] for v in history] == [2, 1]
    assert run("get", "models/missing", env=remote).returncode == 3
    # The simple HTTP surface sees what the CLI wrote.
    assert httpx.get(served + "/config/models/claude-opus").json()["version"] == 2
    # Copy the served tenant into a local database through a real pipe.
    local = {"CONFHUB_DB": str(tmp_path / "copy.db")}
    exported = run("export", "--history", env=remote)
    assert exported.returncode == 0, exported.stderr
    imported = run("import", "-", "--tenant", "copy", "--json", env=local,
                   input=exported.stdout)
    assert json.loads(imported.stdout)["created"] == 1, imported.stderr
    value = json.loads(run("get", "models/claude-opus", "-t", "copy", "--raw", env=local).stdout)
    assert value == {"max_tokens": 8192, "temperature": 0.2}
