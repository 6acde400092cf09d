"""Fixtures shared by the whole suite: a hub on every real backend.

PostgreSQL is reached at ``CONFHUB_TEST_PG_DSN`` (default
``postgresql://postgres@127.0.0.1:5432/test``). Each test gets its own schema, so tests never see
each other's data. Outside CI a missing PostgreSQL skips its tests with the reason; under
``CI=true`` it fails them, because CI must prove both backends.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import confhub

PG_DSN = os.environ.get("CONFHUB_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _pg_problem() -> str | None:
    try:
        import psycopg

        with psycopg.connect(PG_DSN, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        return f"PostgreSQL at {PG_DSN} is not reachable ({type(exc).__name__}: {exc})"
    return None


_PG_PROBLEM: list[str | None] = []


def require_postgres() -> None:
    """Skip (or, under CI=true, fail) when the test PostgreSQL cannot be reached."""
    if not _PG_PROBLEM:
        _PG_PROBLEM.append(_pg_problem())
    problem = _PG_PROBLEM[0]
    if problem is not None:
        if IN_CI:
            pytest.fail(f"{problem}; CI=true requires PostgreSQL (set CONFHUB_TEST_PG_DSN)")
        pytest.skip(f"{problem}; set CONFHUB_TEST_PG_DSN to run the PostgreSQL tests")


def with_search_path(dsn: str, schema: str) -> str:
    """The DSN with every connection's search_path set to ``schema``."""
    return f"{dsn}{'&' if '?' in dsn else '?'}options=-csearch_path%3D{schema}"


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A PostgreSQL URL on a fresh, empty schema, dropped after the test."""
    require_postgres()
    import psycopg

    schema = f"confhub_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield with_search_path(PG_DSN, schema)
    finally:
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'confhub.db'}"


BACKENDS = ["sqlite", "postgres", "remote"]


@pytest.fixture(params=BACKENDS)
def backend_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL for each real backend (the same tests run on all): SQLite, PostgreSQL, and a
    confhub server on SQLite reached through the remote client (``remote``)."""
    if request.param == "sqlite":
        yield str(request.getfixturevalue("sqlite_url"))
    elif request.param == "postgres":
        yield str(request.getfixturevalue("pg_url"))
    else:
        from confhub.server.testing import threaded_server

        with threaded_server(tmp_path / "served.db") as url:
            yield url


@pytest.fixture
def open_hub(backend_url: str) -> Iterator[Callable[[], confhub.Hub]]:
    """Open (possibly several) hubs on the same database; all are closed after the test."""
    opened: list[confhub.Hub] = []

    def opener() -> confhub.Hub:
        hub = confhub.open(backend_url)
        opened.append(hub)
        return hub

    yield opener
    for hub in opened:
        hub.close()


@pytest.fixture
def hub(open_hub: Callable[[], confhub.Hub]) -> confhub.Hub:
    return open_hub()


@pytest.fixture
def cfg(hub: confhub.Hub) -> confhub.Tenant:
    """The tenant ``acme``, freshly created."""
    hub.create_tenant("acme")
    return hub.tenant("acme")
