"""Python function calls per embedded operation, counted with cProfile: a cost figure that a
loaded machine cannot disturb (timings can), for comparing two versions of the code.

    .venv/bin/python bench/calls.py                                  # this checkout
    PYTHONPATH=/path/to/other/src .venv/bin/python bench/calls.py    # another version

Prints calls per ``set`` (a durable write) and per cached ``get``; asserts nothing.
"""

from __future__ import annotations

import cProfile
import os
import pstats
import tempfile
from collections.abc import Callable

import confhub

N = 200


def calls_per_op(fn: Callable[[], None]) -> float:
    profile = cProfile.Profile()
    profile.enable()
    fn()
    profile.disable()
    total: int = pstats.Stats(profile).total_calls  # type: ignore[attr-defined]
    return total / N


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, confhub.open(os.path.join(tmp, "c.db")) as hub:
        cfg = hub.tenant()
        for i in range(100):  # warm-up: keys exist, the tenant's view is loaded
            cfg.set("models", f"k{i}", {"max_tokens": i})
        cfg.get("models", "k1")

        def sets() -> None:
            for i in range(N):
                cfg.set("models", f"k{i % 100}", {"max_tokens": i})

        def gets() -> None:
            for i in range(N):
                cfg.get("models", f"k{i % 100}")

        print(f"confhub from {os.path.dirname(confhub.__file__)}")
        print(f"set: {calls_per_op(sets):.1f} Python calls per operation")
        print(f"get (cached): {calls_per_op(gets):.1f} Python calls per operation")


if __name__ == "__main__":
    main()
