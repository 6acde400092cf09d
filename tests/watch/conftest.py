"""A thread-safe list of delivered changes that tests can wait on."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest


class Collected:
    """Append-only record of what a watcher delivered, with ``wait_for(n)``."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self._cond = threading.Condition()

    def __call__(self, item: Any) -> None:
        with self._cond:
            self.items.append(item)
            self._cond.notify_all()

    def wait_for(self, count: int, timeout: float = 20.0) -> list[Any]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.items) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"got {len(self.items)} of {count} changes in "
                                         f"{timeout}s: {self.items[-3:]}")
                self._cond.wait(remaining)
            return list(self.items)


@pytest.fixture
def collect() -> type[Collected]:
    """``collect()`` makes a fresh :class:`Collected` (a watch callback that records)."""
    return Collected
