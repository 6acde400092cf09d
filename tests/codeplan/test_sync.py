"""confhub sync DIR --watch: applies each saved change, refuses a broken state whole, and
carries on watching (a real subprocess against a real server)."""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from typing import Any

import confhub

from .conftest import write


def test_sync_watch_applies_refuses_and_carries_on(tmp_path: Path, server_url: str) -> None:
    tenant = f"t{uuid.uuid4().hex[:10]}"
    root = write(tmp_path / "cfg", {"models/a.yaml": "v: 1\n"})
    hub = confhub.open(server_url)
    proc = subprocess.Popen(
        [sys.executable, "-m", "confhub.cli", "sync", str(root), "--watch", "--json",
         "--debounce", "100", "--url", server_url, "--tenant", tenant],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: queue.Queue[dict[str, Any]] = queue.Queue()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(json.loads(line))

    threading.Thread(target=read, daemon=True).start()

    def next_round() -> dict[str, Any]:
        return lines.get(timeout=30)

    try:
        assert next_round()["applied"] is True  # the first sync, at start
        cfg = hub.tenant(tenant)
        assert cfg.get("models", "a").value == {"v": 1}

        write(root, {"models/a.yaml": "v: 2\n"})
        assert next_round()["applied"] is True
        assert cfg.get("models", "a").value == {"v": 2}

        # A broken file next to a good edit: nothing of the state is applied (the broken
        # file is saved first, so however the saves are grouped every round is refused).
        write(root, {"models/b.yaml": "v: [3\n", "models/a.yaml": "v: 3\n"})
        refused = next_round()
        assert refused["applied"] is False
        assert "models/b.yaml" in refused["error"]["message"]
        assert cfg.get("models", "a").value == {"v": 2}

        write(root, {"models/b.yaml": "v: 3\n"})  # fixed: the whole state lands
        while not next_round()["applied"]:
            pass  # a second refusal, when the two saves above were seen apart
        assert (cfg.get("models", "a").value, cfg.get("models", "b").value) == (
            {"v": 3}, {"v": 3})
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=20)
        hub.close()
    assert code == 0
