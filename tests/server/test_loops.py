"""``running_loop`` (server/loops.py) is always the loop running now, though it remembers."""

from __future__ import annotations

import asyncio
import os
import threading

import pytest

from confhub.server import loops
from confhub.server.loops import running_loop


async def both() -> tuple[asyncio.AbstractEventLoop, asyncio.AbstractEventLoop]:
    return running_loop(), asyncio.get_running_loop()


class TestRunningLoop:
    def test_is_the_running_loop(self) -> None:
        mine, actual = asyncio.run(both())
        assert mine is actual

    def test_a_new_loop_in_the_same_thread_is_found(self) -> None:
        first, _ = asyncio.run(both())
        second, actual = asyncio.run(both())
        assert second is actual and second is not first

    def test_each_thread_finds_its_own_loop(self) -> None:
        found: list[bool] = []
        started = threading.Barrier(2)

        async def check() -> None:
            started.wait()  # both loops run at once
            mine, actual = await both()
            found.append(mine is actual)

        threads = [threading.Thread(target=asyncio.run, args=(check(),)) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert found == [True, True]

    def test_outside_a_loop_it_raises_as_get_running_loop_does(self) -> None:
        asyncio.run(both())
        with pytest.raises(RuntimeError):
            running_loop()

    @pytest.mark.skipif(not hasattr(os, "fork"), reason="fork only")
    def test_a_forked_child_remembers_no_loop(self) -> None:
        async def fork() -> int:
            running_loop()
            pid = os.fork()
            if pid == 0:
                os._exit(0 if loops._seen.loop is None else 1)
            return os.waitpid(pid, 0)[1]

        assert asyncio.run(fork()) == 0
