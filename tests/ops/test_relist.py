"""A watcher that comes back below the compacted revision is told 410 and the SDK re-lists:
a remote live value, its server restarted after a compaction, carries on with the current
value."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

import confhub
from confhub.server.testing import free_port, live_server


def test_a_remote_live_value_re_lists_after_410_and_carries_on(tmp_path: Path) -> None:
    db = tmp_path / "relist.db"
    port = free_port()
    with live_server(db, port=port) as url:
        remote = confhub.open(url)
        remote.tenant().set("m", "a", {"i": 0})
        live = remote.tenant().live("m", "a", cache_file=tmp_path / "live.json")
        assert live.value == {"i": 0}
        first_revision = live.revision
    # While the server is down: more writes, then retention removes the history the live
    # value would resume from.
    with confhub.open(f"sqlite:///{db}") as hub:
        for i in range(1, 4):
            hub.tenant().set("m", "a", {"i": i})
        hub.set_retention("default", keep_last=1)
        hub.compact()
        assert hub.tenant_info("default").compacted_revision > first_revision
    with live_server(db, port=port) as url:
        with httpx.Client(base_url=url) as http:  # the resume point is gone: 410
            answer = http.get("/v1/tenants/default/watch",
                              headers={"Last-Event-ID": str(first_revision)})
            assert answer.status_code == 410
            assert answer.json()["error"]["code"] == "gone"
        deadline = time.monotonic() + 20
        while live.value != {"i": 3}:
            assert time.monotonic() < deadline, f"live value stuck at {live.value}"
            time.sleep(0.05)
        # ... and it carries on watching from the re-listed revision.
        confhub.open(url).tenant().set("m", "a", {"i": 4})
        deadline = time.monotonic() + 10
        while live.value != {"i": 4}:
            assert time.monotonic() < deadline, f"live value stuck at {live.value}"
            time.sleep(0.05)
        live.close()
        remote.close()
