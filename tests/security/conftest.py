"""Fixtures for the security suite: hubs with and without a master key, on both backends."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

import confhub
from confhub.secrets import generate_master_key


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest) -> str:
    """Each embedded backend: the security tables live in storage, not behind HTTP."""
    name = "sqlite_url" if request.param == "sqlite" else "pg_url"
    return str(request.getfixturevalue(name))


@pytest.fixture
def master_key() -> str:
    return generate_master_key()


@pytest.fixture
def open_secure(store_url: str) -> Iterator[Callable[..., confhub.Hub]]:
    opened: list[confhub.Hub] = []

    def opener(**kwargs: object) -> confhub.Hub:
        hub = confhub.open(store_url, **kwargs)  # type: ignore[arg-type]
        opened.append(hub)
        return hub

    yield opener
    for hub in opened:
        hub.close()


@pytest.fixture
def shub(open_secure: Callable[..., confhub.Hub], master_key: str) -> confhub.Hub:
    """A hub holding a master key, with tenant ``acme``."""
    hub = open_secure(master_key=master_key)
    hub.create_tenant("acme")
    return hub
