"""Flags on every backend: the built-in schema and in-process evaluation on SQLite,
PostgreSQL and a server reached through the remote client (the root conftest's ``hub``)."""

from __future__ import annotations

import queue

import pytest
from openfeature import api
from openfeature.evaluation_context import EvaluationContext
from openfeature.event import ProviderEvent

import confhub
from confhub.openfeature import ConfhubProvider

FLAG = {"state": "ENABLED", "variants": {"on": True, "off": False}, "defaultVariant": "off",
        "targeting": {"if": [{"starts_with": [{"var": "region"}, "eu-"]}, "on", None]}}


def test_bad_flags_are_refused_and_good_ones_evaluate(hub: confhub.Hub) -> None:
    hub.create_tenant("acme")
    cfg = hub.tenant("acme")
    with pytest.raises(confhub.ValidationFailed, match="flag 'eu-launch': defaultVariant"):
        cfg.set("flags", "eu-launch", {**FLAG, "defaultVariant": "maybe"})
    cfg.set("flags", "eu-launch", FLAG)
    provider = ConfhubProvider(hub, "acme")
    api.set_provider_and_wait(provider, f"backend-{id(hub)}")
    client = api.get_client(f"backend-{id(hub)}")
    changed: queue.Queue[list[str] | None] = queue.Queue()
    client.add_handler(ProviderEvent.PROVIDER_CONFIGURATION_CHANGED,
                       lambda details: changed.put(details.flags_changed))
    try:
        eu = EvaluationContext("u1", {"region": "eu-west"})
        assert client.get_boolean_value("eu-launch", False, eu) is True
        cfg.patch("flags", "eu-launch", {"state": "DISABLED"})
        assert changed.get(timeout=15) == ["eu-launch"]
        assert client.get_boolean_details("eu-launch", False, eu).reason == "DISABLED"
    finally:
        provider.shutdown()
