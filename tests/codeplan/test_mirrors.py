"""push to a real Redis (127.0.0.1:6379) and a real etcd (started here from /usr/bin/etcd),
once and --follow, including across a restart of the pusher."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import confhub
from confhub.codeplan.mirrors import EtcdTarget, Mirror, RedisTarget, Target
from confhub.server.testing import free_port, live_server

from .conftest import MASTER_KEY

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
REDIS_URL = os.environ.get("CONFHUB_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def missing(what: str) -> None:
    if IN_CI:
        pytest.fail(f"{what}; CI=true requires it (.ci/run installs and starts it)")
    pytest.skip(f"{what}; install it to run the mirror tests")


@pytest.fixture(scope="module")
def etcd_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = shutil.which("etcd") or "/usr/bin/etcd"
    if not Path(binary).exists():
        missing("etcd is not installed (Debian package etcd-server)")
    client, peer = free_port(), free_port()
    data = tmp_path_factory.mktemp("etcd")
    log = (data / "etcd.log").open("wb")
    proc = subprocess.Popen(
        [binary, "--name", "test", "--data-dir", str(data / "data"),
         "--listen-client-urls", f"http://127.0.0.1:{client}",
         "--advertise-client-urls", f"http://127.0.0.1:{client}",
         "--listen-peer-urls", f"http://127.0.0.1:{peer}",
         "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
         "--initial-cluster", f"test=http://127.0.0.1:{peer}"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{client}/health", timeout=1).status_code == 200:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"etcd did not start: {(data / 'etcd.log').read_text()[-2000:]}")
            time.sleep(0.1)
        yield f"etcd://127.0.0.1:{client}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


@pytest.fixture(scope="module")
def redis_ready() -> str:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_timeout=2).ping()
    except redis.RedisError as error:
        missing(f"Redis at {REDIS_URL} is not reachable ({error})")
    return REDIS_URL


@pytest.fixture(params=["redis", "etcd"])
def target(request: pytest.FixtureRequest) -> Iterator[tuple[str, Target, str]]:
    """(url, target, a prefix of this test's own); the prefix is emptied afterwards."""
    if request.param == "redis":
        url = request.getfixturevalue("redis_ready")
        store: Target = RedisTarget(url)
        prefix = f"confhub-test-{uuid.uuid4().hex[:8]}:"
    else:
        url = request.getfixturevalue("etcd_url")
        store = EtcdTarget(url)
        prefix = f"/confhub-test-{uuid.uuid4().hex[:8]}/"
    try:
        yield url, store, prefix
    finally:
        store.write({}, store.keys(prefix))
        store.close()


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[confhub.Hub]:
    (tmp_path / "db").mkdir()
    hub = confhub.open(f"sqlite:///{tmp_path / 'db' / 'c.db'}", master_key=MASTER_KEY)
    hub.create_tenant("acme")
    cfg = hub.tenant("acme")
    cfg.set("models", "opus", {"max_tokens": 8192, "region": "us"})
    cfg.set("models", "opus", {"max_tokens": 4096}, env="production")
    cfg.set("models", "haiku", {"max_tokens": 1024})
    cfg.set("db", "password", "hunter2", secret=True)
    yield hub
    hub.close()


def mirrored(store: Target, prefix: str) -> dict[str, Any]:
    return {k[len(prefix):]: json.loads(v) for k in store.keys(prefix)
            if (v := store.read(k)) is not None}


def wait_for(check: Callable[[], bool], what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_push_writes_the_resolved_view_with_versions(
        hub: confhub.Hub, target: tuple[str, Target, str]) -> None:
    _, store, prefix = target
    report = Mirror(hub, "acme", "production", store, prefix=prefix).push_all()
    assert (report.written, report.skipped_secrets) == (2, 1)
    assert mirrored(store, prefix) == {
        "models/opus": {"max_tokens": 4096, "region": "us"},
        "models/opus@version": {"version": 1, "revision": 2,
                                "versions": {"base": 1, "production": 1}},
        "models/haiku": {"max_tokens": 1024},
        "models/haiku@version": {"version": 1, "revision": 3, "versions": {"base": 1}},
        "@revision": 4,
    }


def test_secrets_only_with_include_secrets(hub: confhub.Hub,
                                           target: tuple[str, Target, str]) -> None:
    _, store, prefix = target
    Mirror(hub, "acme", "base", store, prefix=prefix, include_secrets=True).push_all()
    assert mirrored(store, prefix)["db/password"] == "hunter2"


def test_push_removes_what_is_gone(hub: confhub.Hub, target: tuple[str, Target, str]) -> None:
    _, store, prefix = target
    mirror = Mirror(hub, "acme", "base", store, prefix=prefix)
    mirror.push_all()
    hub.tenant("acme").delete("models", "haiku")
    assert mirror.push_all().deleted == 2
    assert "models/haiku" not in mirrored(store, prefix)


def test_catch_up_pushes_each_revision_with_its_marker(
        hub: confhub.Hub, target: tuple[str, Target, str]) -> None:
    _, store, prefix = target
    mirror = Mirror(hub, "acme", "production", store, prefix=prefix)
    start = mirror.push_all().revision
    cfg = hub.tenant("acme")
    with cfg.transaction() as tx:
        tx.set("models", "opus", {"region": "eu"})
        tx.delete("models", "haiku")
    cfg.set("other", "staging-only", 1, env="staging")  # another env: only the marker moves
    assert mirror.catch_up(start) == cfg.revision
    data = mirrored(store, prefix)
    assert data["models/opus"] == {"region": "eu", "max_tokens": 4096}
    assert data["models/opus@version"]["versions"] == {"base": 2, "production": 1}
    assert "models/haiku" not in data and "models/haiku@version" not in data
    assert data["@revision"] == cfg.revision


def test_follow_survives_a_restart_of_the_pusher(
        tmp_path: Path, target: tuple[str, Target, str]) -> None:
    url, store, prefix = target
    with live_server(tmp_path / "served.db") as server:
        remote = confhub.open(server)
        remote.create_tenant("acme")
        cfg = remote.tenant("acme")
        cfg.set("models", "opus", {"max_tokens": 1})
        command = [sys.executable, "-m", "confhub.cli", "push", "--to", url, "--url", server,
                   "--tenant", "acme", "--prefix", prefix, "--follow", "--json"]

        def start() -> subprocess.Popen[bytes]:
            return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

        def stop(proc: subprocess.Popen[bytes]) -> str:
            proc.send_signal(signal.SIGTERM)
            out, _ = proc.communicate(timeout=20)
            return out.decode()

        pusher = start()
        try:
            wait_for(lambda: mirrored(store, prefix).get("models/opus") == {"max_tokens": 1},
                     "the first push")
            cfg.set("models", "opus", {"max_tokens": 2})
            wait_for(lambda: mirrored(store, prefix).get("models/opus") == {"max_tokens": 2},
                     "a followed change")
        finally:
            first_log = stop(pusher)
        assert "pushed 1 keys" in first_log
        stopped_at = mirrored(store, prefix)["@revision"]
        cfg.set("models", "opus", {"max_tokens": 3})  # while no pusher runs
        cfg.set("models", "new", {"a": 1})
        pusher = start()
        try:
            wait_for(lambda: mirrored(store, prefix).get("@revision") == cfg.revision,
                     "the restarted pusher to catch up")
        finally:
            second_log = stop(pusher)
        assert f"resuming from revision {stopped_at}" in second_log
        data = mirrored(store, prefix)
        assert data["models/opus"] == {"max_tokens": 3}
        assert data["models/new"] == {"a": 1}
        assert data["models/opus@version"]["version"] == 3
        remote.close()


def test_etcd_values_are_plain_json_for_etcd_clients(hub: confhub.Hub, etcd_url: str) -> None:
    store = EtcdTarget(etcd_url)
    prefix = f"/plain-{uuid.uuid4().hex[:6]}/"
    try:
        Mirror(hub, "acme", "base", store, prefix=prefix).push_all()
        key = base64.b64encode(f"{prefix}models/haiku".encode()).decode()
        body = httpx.post(etcd_url.replace("etcd://", "http://") + "/v3/kv/range",
                          json={"key": key}).json()
        assert json.loads(base64.b64decode(body["kvs"][0]["value"])) == {"max_tokens": 1024}
    finally:
        store.write({}, store.keys(prefix))
        store.close()
