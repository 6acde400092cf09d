"""Fixtures for the flag tests: the flagd testkit flag set, and one real server per worker."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from confhub.server.testing import live_server

TESTBED = Path(__file__).parent / "testbed"


@pytest.fixture(scope="session")
def testkit() -> dict[str, Any]:
    """flagd-testbed's evaluator flag set (flags, $evaluators)."""
    data: dict[str, Any] = json.loads((TESTBED / "testkit-flags.json").read_text("utf-8"))
    return data


@pytest.fixture(scope="session")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real ``python -m confhub.server`` shared by this worker's flag tests."""
    with live_server(tmp_path_factory.mktemp("flags-server") / "confhub.db") as url:
        yield url
