"""Flags under a staged rollout (DESIGN.md section 8): cohort consumers evaluate the staged
definition, everyone else the committed one; the client id is the default targeting key.
In process (``ConfhubProvider`` with an identity) and over OFREP (``X-Confhub-Client``)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from openfeature.evaluation_context import EvaluationContext

import confhub
from confhub.openfeature import ConfhubProvider

COMMITTED = {"state": "ENABLED", "variants": {"on": True, "off": False},
             "defaultVariant": "off"}
# The staged definition targets by targetingKey, so it also shows which key was used.
STAGED = {"state": "ENABLED", "variants": {"on": True, "off": False}, "defaultVariant": "off",
          "targeting": {"if": [{"starts_with": [{"var": "targetingKey"}, "canary"]},
                               "on", "off"]}}
# canary-1 is in the cohort by the explicit client list; web-2 (no labels) is not.
COHORT: dict[str, Any] = {"steps": "100", "bake": "1h", "selector": "region=eu",
                          "clients": ["canary-1"]}
STAGE_OPS = [{"op": "put", "namespace": "flags", "key": "new-checkout", "value": STAGED}]


def wait_for(check: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[confhub.Hub]:
    with confhub.open(str(tmp_path / "flags.db")) as opened:
        opened.create_tenant("acme")
        opened.tenant("acme").set("flags", "new-checkout", COMMITTED)
        yield opened


def _started(provider: ConfhubProvider) -> ConfhubProvider:
    provider.initialize(EvaluationContext())
    return provider


class TestEmbeddedProvider:
    def test_cohort_members_evaluate_the_staged_definition(self, hub: confhub.Hub) -> None:
        member = _started(ConfhubProvider(hub, "acme", client_id="canary-1"))
        other = _started(ConfhubProvider(hub, hub.tenant("acme", client_id="web-2")))
        anonymous = _started(ConfhubProvider(hub, "acme"))
        try:
            assert member.resolve_boolean_details("new-checkout", True).value is False
            rollout = hub.tenant("acme").rollouts.start(STAGE_OPS, **COHORT)
            # The member's live copy follows the rollout: no restart, no request per call.
            wait_for(lambda: member.resolve_boolean_details("new-checkout", False).value)
            details = member.resolve_boolean_details("new-checkout", False)
            assert (details.variant, details.reason) == ("on", "TARGETING_MATCH")
            # A context's own targeting key wins over the client id.
            assert member.resolve_boolean_details(
                "new-checkout", True, EvaluationContext("web-9")).value is False
            for outsider in (other, anonymous):
                details = outsider.resolve_boolean_details("new-checkout", True)
                assert (details.value, details.reason) == (False, "STATIC")
            hub.tenant("acme").rollouts.rollback(rollout.id, reason="enough")
            wait_for(lambda: member.resolve_boolean_details(
                "new-checkout", False).reason == "STATIC")
        finally:
            for provider in (member, other, anonymous):
                provider.shutdown()

    def test_the_client_id_is_the_targeting_key_when_the_context_has_none(
            self, hub: confhub.Hub) -> None:
        hub.tenant("acme").set("flags", "split", STAGED)  # committed, no rollout
        canary = _started(ConfhubProvider(hub, "acme", client_id="canary-7"))
        anonymous = _started(ConfhubProvider(hub, "acme"))
        try:
            assert canary.resolve_boolean_details("split", False).value is True
            assert anonymous.resolve_boolean_details("split", True).value is False
        finally:
            canary.shutdown()
            anonymous.shutdown()

    def test_an_identity_twice_is_refused(self, hub: confhub.Hub) -> None:
        with pytest.raises(ValueError, match="not both"):
            ConfhubProvider(hub, hub.tenant("acme", client_id="a"), client_id="b")


class TestOFREP:
    @pytest.fixture
    def base(self, server_url: str) -> Iterator[str]:
        name = "staged-" + uuid.uuid4().hex[:8]
        with confhub.open(server_url) as remote:
            remote.create_tenant(name)
            cfg = remote.tenant(name)
            cfg.set("flags", "new-checkout", COMMITTED)
            cfg.rollouts.start(STAGE_OPS, **COHORT)
        yield f"{server_url}/v1/tenants/{name}/ofrep/v1/evaluate/flags"

    @staticmethod
    def evaluate(url: str, client: str | None = None, context: dict[str, Any] | None = None
                 ) -> dict[str, Any]:
        headers = {"X-Confhub-Client": client} if client else {}
        response = httpx.post(url, json={"context": context or {}}, headers=headers)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def test_the_consumer_header_selects_the_staged_definition(self, base: str) -> None:
        one = base + "/new-checkout"
        member = self.evaluate(one, "canary-1")
        assert (member["value"], member["reason"]) == (True, "TARGETING_MATCH")
        assert self.evaluate(one, "canary-1", {"targetingKey": "web-9"})["value"] is False
        for outsider in ("web-2", None):
            body = self.evaluate(one, outsider)
            assert (body["value"], body["reason"]) == (False, "STATIC")

    def test_bulk_evaluation_reads_as_the_consumer(self, base: str) -> None:
        member = self.evaluate(base, "canary-1")["flags"]
        other = self.evaluate(base, "web-2")["flags"]
        assert [(f["key"], f["value"]) for f in member] == [("new-checkout", True)]
        assert [(f["key"], f["value"]) for f in other] == [("new-checkout", False)]
