"""``confhub watch``: replays from --since, follows new commits, filters, stops on --count."""

from __future__ import annotations

import json
import os
import re
import threading
from typing import TYPE_CHECKING

import confhub

if TYPE_CHECKING:
    from .conftest import Invoke


def _history(cli: Invoke) -> None:
    cli("set", "models/a", '{"n": 1}')
    cli("set", "routing/r", "1")
    cli("set", "models/b", '{"n": 2}', "--env", "production")


class TestWatch:
    def test_json_lines_from_since_in_revision_order(self, cli: Invoke) -> None:
        _history(cli)
        result = cli("watch", "--since", "0", "--count", "3", "--json")
        lines = [json.loads(line) for line in result.stdout.splitlines()]
        assert [(c["revision"], c["namespace"], c["key"]) for c in lines] == [
            (1, "models", "a"), (2, "routing", "r"), (3, "models", "b")]

    def test_namespace_key_and_env_filters(self, cli: Invoke) -> None:
        _history(cli)
        cli("set", "models/a", '{"n": 3}')
        by_key = cli("watch", "models/a", "--since", "0", "--count", "2", "--json")
        assert [json.loads(x)["value"] for x in by_key.stdout.splitlines()] == [{"n": 1},
                                                                                {"n": 3}]
        by_env = cli("watch", "models", "--env", "production", "--since", "0", "--count", "1",
                     "--json")
        assert json.loads(by_env.stdout)["key"] == "b"

    def test_follows_new_commits(self, cli: Invoke) -> None:
        cli("set", "models/a", "0")
        # The runner is not re-entrant, so the concurrent write goes through the library.
        # The watch starts from "now" whenever the CLI gets there (slow on a loaded machine),
        # so the writer commits every 0.2 s until the watch has shown one commit.
        hub = confhub.open(os.environ.get("CONFHUB_URL") or os.environ["CONFHUB_DB"])
        watched = threading.Event()

        def keep_writing() -> None:
            n = 0
            while not watched.wait(0.2):
                n += 1
                hub.tenant().set("models", "a", n, reason="live")

        writer = threading.Thread(target=keep_writing)
        writer.start()
        try:
            result = cli("watch", "models", "--count", "1", "--timeout", "30")
        finally:
            watched.set()
            writer.join()
            hub.close()
        assert "models/a" in result.stdout and "live" in result.stdout
        assert re.search(r"\br([2-9]|\d{2,})\b", result.stdout), result.stdout

    def test_timeout_ends_a_quiet_watch(self, cli: Invoke) -> None:
        result = cli("watch", "--timeout", "0.3", "--json")
        assert result.exit_code == 0 and result.stdout == ""

    def test_a_missing_tenant_exits_3(self, cli: Invoke) -> None:
        result = cli("watch", "--tenant", "nobody", "--timeout", "1", "--json")
        assert result.exit_code == 3
        assert result.error()["code"] == "not_found"
