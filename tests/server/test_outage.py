"""Storage outages answer 503 with the error body, and the server recovers by itself.

The outage is injected at the storage seam: a real SQLite store whose every call raises
``Unavailable`` — what a backend raises when SQLite or PostgreSQL cannot be reached — while
``down`` is set. Everything above it (hub, cache, server) is the real thing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import confhub
from confhub.errors import Unavailable
from confhub.hub import Hub
from confhub.server import create_app
from confhub.server.testing import serve_in_thread
from confhub.store.base import Store
from confhub.store.sqlite import SqliteStore


class OutageStore(SqliteStore):
    """A real SQLite store that fails every storage call while ``down`` is set."""

    down = False


def _failing_while_down(method: Callable[..., Any]) -> Callable[..., Any]:
    def call(self: OutageStore, *args: Any, **kwargs: Any) -> Any:
        if self.down:
            raise Unavailable("storage unreachable (injected outage)")
        return method(self, *args, **kwargs)

    return call


for _name in dir(Store):  # every method of the storage Protocol but close()
    if not _name.startswith("_") and _name != "close" and callable(getattr(Store, _name)):
        setattr(OutageStore, _name, _failing_while_down(getattr(SqliteStore, _name)))


@pytest.fixture
def flaky(tmp_path: Path) -> Iterator[tuple[httpx.Client, OutageStore]]:
    store = OutageStore(str(tmp_path / "c.db"))
    with Hub(store) as hub, serve_in_thread(create_app(hub, close_hub=False)) as url, \
            httpx.Client(base_url=url) as http:
        yield http, store


def test_outage_answers_503_and_recovers(flaky: tuple[httpx.Client, OutageStore]) -> None:
    http, outage = flaky
    assert http.put("/config/models/a", json=1).status_code == 201
    outage.down = True
    r = http.put("/config/models/a", json=2)
    assert r.status_code == 503 and r.json()["error"]["code"] == "unavailable"
    assert int(r.headers["retry-after"]) >= 1  # any 503 says when to come back
    assert http.get("/readyz").status_code == 503
    assert http.get("/healthz").status_code == 200  # alive, just not ready
    assert http.get("/v1/tenants/default/configs/models/a/history").status_code == 503
    outage.down = False
    assert http.put("/config/models/a", json=2).json()["version"] == 2
    assert http.get("/readyz").status_code == 200


def test_cached_reads_keep_working_during_an_outage(
        flaky: tuple[httpx.Client, OutageStore]) -> None:
    http, outage = flaky
    http.put("/config/models/a", json={"x": 1})
    assert http.get("/config/models/a").status_code == 200  # loads the cache
    outage.down = True
    r = http.get("/config/models/a")
    assert r.status_code == 200 and r.json()["value"] == {"x": 1}


def test_remote_client_raises_unavailable(flaky: tuple[httpx.Client, OutageStore]) -> None:
    http, outage = flaky
    remote = confhub.open(str(http.base_url).rstrip("/"))
    remote.retries = 1
    outage.down = True
    with pytest.raises(Unavailable):
        remote.tenant().set("models", "a", 1)
    assert remote.health()["ok"] is False
    outage.down = False
    assert remote.tenant().set("models", "a", 1).version == 1
    remote.close()
