"""Storage outages answer 503 with the error body, and the server recovers by itself.

The outage is injected at the seam the server depends on (the hub): a real hub whose calls
raise ``Unavailable`` — what the store raises when SQLite or PostgreSQL cannot be reached —
while the switch is on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import confhub
from confhub.errors import Unavailable
from confhub.server import create_app
from confhub.server.testing import serve_in_thread


class Outage:
    def __init__(self) -> None:
        self.down = False

    def guard(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            if self.down:
                raise Unavailable("storage unreachable (injected outage)")
            return fn(*args, **kwargs)

        return call


class FlakyTenant:
    def __init__(self, tenant: confhub.Tenant, outage: Outage) -> None:
        self._tenant, self._outage = tenant, outage

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._tenant, name)
        return self._outage.guard(attr) if callable(attr) else attr


class FlakyHub:
    """A real hub whose storage calls fail while ``outage.down``; its cache stays readable."""

    def __init__(self, hub: confhub.Hub, outage: Outage) -> None:
        self._hub, self._outage = hub, outage

    def tenant(self, name: str = "default") -> FlakyTenant:
        return FlakyTenant(self._hub.tenant(name), self._outage)

    def cached_entry(self, *address: str) -> confhub.Entry | None:
        return self._hub.cached_entry(*address)  # the cache stays readable, like a real outage

    def health(self) -> dict[str, Any]:
        if self._outage.down:
            return {"ok": False, "backend": "sqlite", "error": "storage unreachable"}
        return self._hub.health()

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._hub, name)
        return self._outage.guard(attr) if callable(attr) else attr


@pytest.fixture
def flaky(tmp_path: Path) -> Iterator[tuple[httpx.Client, Outage]]:
    outage = Outage()
    hub = confhub.open(str(tmp_path / "c.db"))
    with serve_in_thread(create_app(FlakyHub(hub, outage), close_hub=False)) as url, \
            httpx.Client(base_url=url) as http:
        yield http, outage
    hub.close()


def test_outage_answers_503_and_recovers(flaky: tuple[httpx.Client, Outage]) -> None:
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
        flaky: tuple[httpx.Client, Outage]) -> None:
    http, outage = flaky
    http.put("/config/models/a", json={"x": 1})
    assert http.get("/config/models/a").status_code == 200  # loads the cache
    outage.down = True
    r = http.get("/config/models/a")
    assert r.status_code == 200 and r.json()["value"] == {"x": 1}


def test_remote_client_raises_unavailable(flaky: tuple[httpx.Client, Outage]) -> None:
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
