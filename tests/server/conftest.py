"""One real ``python -m confhub.server`` for the route tests of this directory.

Tests share the server (starting one costs about a second) and stay independent by writing to
their own tenant, created by the ``tenant`` fixture.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from confhub.server.testing import live_server


@pytest.fixture(scope="session")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    db: Path = tmp_path_factory.mktemp("server") / "confhub.db"
    with live_server(db) as url:
        yield url


@pytest.fixture
def http(server_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server_url, timeout=10) as client:
        yield client


@pytest.fixture
def tenant(http: httpx.Client) -> str:
    """A fresh tenant for this test."""
    name = "t-" + uuid.uuid4().hex[:10]
    assert http.post("/v1/tenants", json={"id": name}).status_code == 201
    return name


@pytest.fixture
def ns() -> str:
    """A namespace of its own, for tests on the shared default tenant."""
    return "ns-" + uuid.uuid4().hex[:10]
