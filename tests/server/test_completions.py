"""``ServerState.completions()`` (server/deps.py) hands out the running loop's Completions."""

from __future__ import annotations

import asyncio
import threading

from confhub.server.deps import Completions, ServerState


async def settled_from_a_thread(state: ServerState) -> tuple[Completions, object]:
    completions = state.completions()
    future, settle = completions.future()
    threading.Thread(target=settle, args=("done", None)).start()
    return completions, await future


class TestCompletions:
    def test_one_per_loop(self) -> None:
        state = ServerState(hub=None)

        async def twice() -> bool:
            return state.completions() is state.completions()

        assert asyncio.run(twice())

    def test_a_new_loop_gets_its_own(self) -> None:
        state = ServerState(hub=None)
        first, result = asyncio.run(settled_from_a_thread(state))
        second, again = asyncio.run(settled_from_a_thread(state))
        assert first is not second and result == again == "done"
