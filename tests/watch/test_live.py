"""Live values (``cfg.live``) on every backend: typed, current, and safe against bad values."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pydantic
import pytest

import confhub


class ModelSettings(pydantic.BaseModel):
    max_tokens: int
    temperature: float = 0.5


def _eventually(check: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.01)


class TestLive:
    def test_value_is_typed_and_follows_changes(self, cfg: Any) -> None:
        cfg.set("models", "opus", {"max_tokens": 10})
        with cfg.live("models", "opus", model=ModelSettings) as live:
            assert live.value == ModelSettings(max_tokens=10)
            cfg.patch("models", "opus", {"max_tokens": 20})
            _eventually(lambda: live.value.max_tokens == 20)
            assert isinstance(live.value, ModelSettings)

    def test_value_is_the_resolved_value_of_its_env(self, cfg: Any) -> None:
        cfg.set("models", "opus", {"max_tokens": 10, "temperature": 0.1})
        with cfg.live("models", "opus", model=ModelSettings, env="production") as live:
            cfg.set("models", "opus", {"temperature": 0.9}, env="production")
            _eventually(lambda: live.value.temperature == 0.9)
            cfg.patch("models", "opus", {"max_tokens": 30})  # base change shows through
            _eventually(lambda: live.value.max_tokens == 30)
            cfg.set("models", "opus", {"temperature": 0.7}, env="staging")  # not our env
            cfg.patch("models", "opus", {"max_tokens": 31})  # arrives after the staging write
            _eventually(lambda: live.value.max_tokens == 31)
            assert live.value == ModelSettings(max_tokens=31, temperature=0.9)

    def test_a_value_the_model_refuses_keeps_the_old_one_and_is_reported(self,
                                                                          cfg: Any) -> None:
        cfg.set("models", "opus", {"max_tokens": 10})
        errors: list[Exception] = []
        with cfg.live("models", "opus", model=ModelSettings) as live:
            live.on_error(errors.append)
            cfg.set("models", "opus", {"max_tokens": "lots"})
            _eventually(lambda: bool(errors))
            assert live.value.max_tokens == 10
            assert "max_tokens" in str(live.error)
            cfg.set("models", "opus", {"max_tokens": 11})  # a good value clears the error
            _eventually(lambda: live.value.max_tokens == 11)
            assert live.error is None

    def test_on_change_gets_old_and_new(self, cfg: Any) -> None:
        cfg.set("features", "flags", {"beta": False})
        seen: list[tuple[Any, Any]] = []
        with cfg.live("features", "flags") as live:
            live.on_change(lambda old, new: seen.append((old, new)))
            cfg.set("features", "flags", {"beta": True})
            _eventually(lambda: bool(seen))
        assert seen == [({"beta": False}, {"beta": True})]

    def test_a_missing_key_is_not_found_unless_a_default_is_given(self, cfg: Any) -> None:
        with pytest.raises(confhub.NotFound):
            cfg.live("models", "missing")
        with cfg.live("models", "missing", default={"max_tokens": 1},
                      model=ModelSettings) as live:
            assert live.value.max_tokens == 1
            cfg.set("models", "missing", {"max_tokens": 5})
            _eventually(lambda: live.value.max_tokens == 5)

    def test_under_concurrent_writes_it_ends_on_the_last_value(self, cfg: Any) -> None:
        cfg.set("counters", "c", {"max_tokens": 0})
        with cfg.live("counters", "c", model=ModelSettings) as live:
            def writer(offset: int) -> None:
                for i in range(20):
                    cfg.set("counters", "c", {"max_tokens": offset + i})

            threads = [threading.Thread(target=writer, args=(k * 100,)) for k in range(3)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            final = cfg.get("counters", "c").value["max_tokens"]
            _eventually(lambda: live.value.max_tokens == final)


class TestRemoteLiveCache:
    def test_starts_from_the_cached_value_when_the_server_is_down_then_catches_up(
            self, tmp_path: Path) -> None:
        from confhub.server.testing import free_port, live_server

        db, port = tmp_path / "c.db", free_port()
        cache = tmp_path / "live.json"
        with live_server(db, port=port) as url:
            hub = confhub.open(url)
            hub.tenant().set("models", "opus", {"max_tokens": 7})
            hub.tenant().live("models", "opus", model=ModelSettings, cache_file=cache).close()
        offline = confhub.open(f"http://127.0.0.1:{port}")
        with pytest.warns(UserWarning, match="cached value"):
            live = offline.tenant().live("models", "opus", model=ModelSettings,
                                         cache_file=cache)
        try:
            assert live.value.max_tokens == 7
            embedded = confhub.open(str(db))
            embedded.tenant().set("models", "opus", {"max_tokens": 8})  # while it was away
            embedded.close()
            with live_server(db, port=port):
                _eventually(lambda: live.value.max_tokens == 8, timeout=20)
        finally:
            live.close()
            offline.close()

    def test_without_server_or_cache_it_is_unavailable(self, tmp_path: Path) -> None:
        from confhub.server.testing import free_port

        hub = confhub.open(f"http://127.0.0.1:{free_port()}")
        with pytest.raises(confhub.Unavailable):
            hub.tenant().live("models", "opus", cache_file=tmp_path / "none.json")
