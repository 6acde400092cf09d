"""``ConfhubProvider`` through the OpenFeature SDK: in-process evaluation from the live copy,
and the events an application hears (embedded and against a real server, restarted)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from openfeature import api
from openfeature.client import OpenFeatureClient
from openfeature.evaluation_context import EvaluationContext
from openfeature.event import EventDetails, ProviderEvent
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import Reason
from openfeature.provider import ProviderStatus

import confhub
from confhub.openfeature import ConfhubProvider
from confhub.server.testing import free_port, live_server

FLAG = {"state": "ENABLED", "variants": {"on": True, "off": False}, "defaultVariant": "off",
        "targeting": {"if": [{"$ref": "beta"}, "on", None]}}
BETA = {"beta": {"in": [{"var": "plan"}, ["pro", "team"]]}}
WAIT = 15.0


class Events:
    """What a client hears, in order, read with a timeout (a positive signal, never a sleep)."""

    def __init__(self, client: OpenFeatureClient) -> None:
        self._queue: queue.Queue[tuple[ProviderEvent, EventDetails]] = queue.Queue()
        for event in ProviderEvent:
            client.add_handler(event, lambda d, e=event: self._queue.put((e, d)))

    def next(self, wanted: ProviderEvent) -> EventDetails:
        """The next event of kind ``wanted`` (others before it are passed over)."""
        while True:
            event, details = self._queue.get(timeout=WAIT)
            if event == wanted:
                return details


def _bind(provider: ConfhubProvider, wait: bool = True) -> tuple[OpenFeatureClient, Events]:
    domain = "confhub-" + uuid.uuid4().hex[:8]
    client = api.get_client(domain)
    events = Events(client)
    if wait:
        api.set_provider_and_wait(provider, domain)
    else:
        api.set_provider(provider, domain)
    return client, events


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[confhub.Hub]:
    with confhub.open(f"sqlite:///{tmp_path / 'flags.db'}") as opened:
        cfg = opened.tenant()
        with cfg.transaction() as tx:
            tx.set("flags", "flagset.evaluators", BETA)
            tx.set("flags", "new-checkout", FLAG)
            tx.set("flags", "limit", {"state": "ENABLED", "variants": {"low": 5, "high": 50},
                                      "defaultVariant": "low"})
        yield opened


@pytest.fixture
def bound(hub: confhub.Hub) -> Iterator[tuple[OpenFeatureClient, Events, ConfhubProvider]]:
    provider = ConfhubProvider(hub)
    client, events = _bind(provider)
    yield client, events, provider
    provider.shutdown()


PRO = EvaluationContext("user-1", {"plan": "pro"})


class TestEmbedded:
    def test_ready_and_evaluation_with_variant_reason_and_version(self, bound: Any) -> None:
        client, events, _ = bound
        events.next(ProviderEvent.PROVIDER_READY)
        assert client.get_provider_status() == ProviderStatus.READY
        details = client.get_boolean_details("new-checkout", False, PRO)
        assert (details.value, details.variant, details.reason) == (True, "on",
                                                                    Reason.TARGETING_MATCH)
        assert details.flag_metadata == {"version": 1}
        free = client.get_boolean_details("new-checkout", True, EvaluationContext("u"))
        assert (free.value, free.variant, free.reason) == (False, "off", Reason.DEFAULT)
        static = client.get_integer_details("limit", 0)
        assert (static.value, static.reason) == (5, Reason.STATIC)

    def test_errors_follow_openfeature(self, bound: Any) -> None:
        client = bound[0]
        missing = client.get_boolean_details("nope", True)
        assert (missing.value, missing.error_code, missing.reason) == (
            True, ErrorCode.FLAG_NOT_FOUND, Reason.ERROR)
        wrong = client.get_integer_details("new-checkout", 7, PRO)
        assert (wrong.value, wrong.error_code) == (7, ErrorCode.TYPE_MISMATCH)

    def test_one_transaction_is_one_change_event_naming_its_flags(
            self, hub: confhub.Hub, bound: Any) -> None:
        client, events, _ = bound
        with hub.tenant().transaction(reason="launch") as tx:
            tx.patch("flags", "limit", {"defaultVariant": "high"})
            tx.set("flags", "dark-mode", {"state": "ENABLED", "variants": {"on": True},
                                          "defaultVariant": "on"})
        details = events.next(ProviderEvent.PROVIDER_CONFIGURATION_CHANGED)
        assert details.flags_changed == ["dark-mode", "limit"]
        assert client.get_integer_details("limit", 0).flag_metadata["version"] == 2
        assert client.get_integer_value("limit", 0) == 50
        assert client.get_boolean_value("dark-mode", False) is True

    def test_a_shared_evaluator_change_reaches_the_flags_using_it(
            self, hub: confhub.Hub, bound: Any) -> None:
        client, events, _ = bound
        hub.tenant().set("flags", "flagset.evaluators",
                         {"beta": {"in": [{"var": "plan"}, ["team"]]}})
        assert "new-checkout" in events.next(
            ProviderEvent.PROVIDER_CONFIGURATION_CHANGED).flags_changed
        assert client.get_boolean_value("new-checkout", True, PRO) is False

    def test_deletion_and_rollback_are_changes_like_any_other(self, hub: confhub.Hub,
                                                             bound: Any) -> None:
        client, events, _ = bound
        cfg = hub.tenant()
        cfg.delete("flags", "limit")
        assert events.next(ProviderEvent.PROVIDER_CONFIGURATION_CHANGED).flags_changed == [
            "limit"]
        assert client.get_integer_details("limit", 1).error_code == ErrorCode.FLAG_NOT_FOUND
        cfg.rollback("flags", "limit", to_version=1)
        events.next(ProviderEvent.PROVIDER_CONFIGURATION_CHANGED)
        assert client.get_integer_details("limit", 0).flag_metadata["version"] == 3

    def test_async_resolvers(self, bound: Any) -> None:
        client = bound[0]

        async def main() -> tuple[bool, int]:
            return (await client.get_boolean_value_async("new-checkout", False, PRO),
                    await client.get_integer_value_async("limit", 0))

        assert asyncio.run(main()) == (True, 5)

    def test_an_env_resolves_its_overlay_over_base(self, hub: confhub.Hub) -> None:
        hub.tenant().set("flags", "limit", {"state": "DISABLED"}, env="production")
        provider = ConfhubProvider(hub, env="production")
        client, _ = _bind(provider)
        try:
            details = client.get_integer_details("limit", 99)
            assert (details.value, details.reason) == (99, Reason.DISABLED)
            assert client.get_boolean_value("new-checkout", False, PRO) is True
        finally:
            provider.shutdown()


@contextlib.contextmanager
def crashing_server(db: Path, port: int) -> Iterator[str]:
    """``python -m confhub.server`` on ``db`` and ``port``, killed (SIGKILL) at the end: the
    abrupt outage a consumer must ride out (a graceful stop is live_server's)."""
    proc = subprocess.Popen([sys.executable, "-m", "confhub.server", "--db", str(db),
                             "--port", str(port), "--log-level", "warning"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:  # wait for a positive signal: /healthz answers
            assert proc.poll() is None, "the server exited"
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.05)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _write(db: Path, patch: dict[str, Any]) -> None:
    with confhub.open(f"sqlite:///{db}") as hub:
        hub.tenant("acme").patch("flags", "limit", patch)


class TestRemote:
    def test_stale_while_the_server_is_down_and_ready_with_the_changes_after_restart(
            self, tmp_path: Path) -> None:
        db, port = tmp_path / "served.db", free_port()
        with confhub.open(f"sqlite:///{db}") as local:
            local.create_tenant("acme")
            local.tenant("acme").set("flags", "limit", {
                "state": "ENABLED", "variants": {"low": 5, "high": 50}, "defaultVariant": "low"})
        with crashing_server(db, port) as url:
            remote = confhub.open(url)
            provider = ConfhubProvider(remote, "acme")
            client, events = _bind(provider)
            events.next(ProviderEvent.PROVIDER_READY)
            assert client.get_integer_value("limit", 0) == 5
            _write(db, {"defaultVariant": "high"})  # another process, same database
            assert events.next(ProviderEvent.PROVIDER_CONFIGURATION_CHANGED).flags_changed \
                == ["limit"]
            assert client.get_integer_value("limit", 0) == 50
        try:
            events.next(ProviderEvent.PROVIDER_STALE)
            assert client.get_provider_status() == ProviderStatus.STALE
            assert client.get_integer_value("limit", 0) == 50  # the last flags keep serving
            _write(db, {"defaultVariant": "low"})  # changed while the server is away
            with crashing_server(db, port):
                events.next(ProviderEvent.PROVIDER_READY)
                assert events.next(ProviderEvent.PROVIDER_CONFIGURATION_CHANGED
                                   ).flags_changed == ["limit"]
                assert client.get_provider_status() == ProviderStatus.READY
                assert client.get_integer_value("limit", 0) == 5
                assert client.get_integer_details("limit", 0).flag_metadata["version"] == 3
        finally:
            provider.shutdown()
            remote.close()

    def test_a_token_limited_to_the_flags_namespace_is_enough(self, tmp_path: Path) -> None:
        """Such a token may not read the tenant itself; the provider needs only the flags."""
        db = tmp_path / "tokens.db"
        with confhub.open(f"sqlite:///{db}") as local:
            local.create_tenant("acme")
            local.tenant("acme").set("flags", "limit", {
                "state": "ENABLED", "variants": {"low": 5, "high": 50}, "defaultVariant": "low"})
            token = local.create_token(tenant="acme", role="viewer", namespaces=["flags"])[0]
            editor = local.create_token(tenant="acme", role="editor")[0]
        with live_server(db) as url, confhub.open(url, token=token) as remote:
            with pytest.raises(confhub.Forbidden):
                remote.tenant("acme").revision  # noqa: B018 - the read is the test
            provider = ConfhubProvider(remote, "acme")
            client, events = _bind(provider)
            try:
                assert client.get_integer_value("limit", 0) == 5
                with confhub.open(url, token=editor) as writer:
                    writer.tenant("acme").patch("flags", "limit", {"defaultVariant": "high"})
                assert events.next(ProviderEvent.PROVIDER_CONFIGURATION_CHANGED
                                   ).flags_changed == ["limit"]
                assert client.get_integer_value("limit", 0) == 50
            finally:
                provider.shutdown()

    def test_a_server_that_is_not_there_yet_is_an_error_then_ready(self,
                                                                  tmp_path: Path) -> None:
        db, port = tmp_path / "late.db", free_port()
        with confhub.open(f"sqlite:///{db}") as local:
            local.tenant().set("flags", "limit", {
                "state": "ENABLED", "variants": {"low": 5}, "defaultVariant": "low"})
        remote = confhub.open(f"http://127.0.0.1:{port}")
        provider = ConfhubProvider(remote, init_timeout=0.5)
        client, events = _bind(provider, wait=False)
        try:
            events.next(ProviderEvent.PROVIDER_ERROR)
            assert client.get_integer_details("limit", 1).value == 1
            with live_server(db, port=port):
                events.next(ProviderEvent.PROVIDER_READY)
                assert client.get_integer_value("limit", 0) == 5
        finally:
            provider.shutdown()
            remote.close()
