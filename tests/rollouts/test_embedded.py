"""Staged rollouts through the embedded hub: cohorts, every read path, the gate, transitions."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pydantic
import pytest

import confhub
from confhub.cohort import bucket

PUT_A = [{"op": "put", "namespace": "models", "key": "a", "value": {"tokens": 2}}]


def wait_for(check: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


@pytest.fixture(params=["sqlite", "postgres"])
def hub(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[confhub.Hub]:
    url = (str(tmp_path / "r.db") if request.param == "sqlite"
           else str(request.getfixturevalue("pg_url")))
    with confhub.open(url) as opened:
        opened.create_tenant("acme")
        opened.tenant("acme").set("models", "a", {"tokens": 1})
        yield opened


def members(salt: str, percent: float, n: int = 200) -> tuple[list[str], list[str]]:
    ids = [f"c{i}" for i in range(n)]
    inside = [c for c in ids if bucket(salt, c) < percent * 100]
    return inside, [c for c in ids if c not in inside]


class TestCohortReads:
    def test_members_resolve_the_staged_value_and_others_the_committed(
            self, hub: confhub.Hub) -> None:
        cfg = hub.tenant("acme")
        r = cfg.rollouts.start(PUT_A, steps="10,100", bake="1h", reason="more tokens")
        inside, outside = members(f"acme/{r.id}", 10)
        member = hub.tenant("acme", client_id=inside[0])
        other = hub.tenant("acme", client_id=outside[0])
        entry = member.get("models", "a")
        assert entry.value == {"tokens": 2} and entry.rollout == r.id
        assert member.resolve("models", "a").rollouts == (r.id,)
        assert [e.value for e in member.list("models")] == [{"tokens": 2}]
        assert other.get("models", "a").value == {"tokens": 1}
        assert cfg.get("models", "a").value == {"tokens": 1}  # anonymous: committed
        assert cfg.namespaces() == ["models"]  # the rollout's own record stays out of sight

    def test_widening_keeps_members_and_adds_more(self, hub: confhub.Hub) -> None:
        cfg = hub.tenant("acme")
        r = cfg.rollouts.start(PUT_A, steps="10,50,100", bake="1h")
        ten, _ = members(f"acme/{r.id}", 10)
        fifty, _ = members(f"acme/{r.id}", 50)
        cfg.rollouts.advance(r.id)
        for client in fifty:
            assert hub.tenant("acme", client_id=client).get("models", "a").value == {"tokens": 2}
        assert set(ten) <= set(fifty)

    def test_selector_and_explicit_clients(self, hub: confhub.Hub) -> None:
        cfg = hub.tenant("acme")
        r = cfg.rollouts.start(PUT_A, steps="100", bake="1h", selector="region=eu",
                               clients=["canary-1"])
        assert hub.tenant("acme", client_id="x", labels={"region": "eu"}).get(
            "models", "a").rollout == r.id
        assert hub.tenant("acme", client_id="x", labels={"region": "us"}).get(
            "models", "a").rollout is None
        assert hub.tenant("acme", client_id="canary-1").get("models", "a").rollout == r.id


class TestWritesUnderARollout:
    def test_direct_write_is_refused_naming_the_rollout(self, hub: confhub.Hub) -> None:
        cfg = hub.tenant("acme")
        r = cfg.rollouts.start(PUT_A, bake="1h")
        with pytest.raises(confhub.RolloutInProgress, match=r.id) as caught:
            cfg.set("models", "a", {"tokens": 9})
        assert caught.value.details["rollout"] == r.id
        assert cfg.get("models", "a").version == 1

    def test_a_second_rollout_of_the_same_key_is_refused(self, hub: confhub.Hub) -> None:
        cfg = hub.tenant("acme")
        cfg.rollouts.start(PUT_A, bake="1h")
        with pytest.raises(confhub.RolloutInProgress):
            cfg.rollouts.start(PUT_A, bake="1h")

    def test_an_invalid_value_never_starts(self, hub: confhub.Hub) -> None:
        cfg = hub.tenant("acme")
        cfg.set_schema("models", {"type": "object", "properties": {
            "tokens": {"type": "integer", "maximum": 10}}})
        bad = [{"op": "put", "namespace": "models", "key": "a", "value": {"tokens": 99}}]
        with pytest.raises(confhub.ValidationFailed):
            cfg.rollouts.start(bad)
        assert cfg.rollouts.list() == []


class TestTransitions:
    def test_completion_commits_one_transaction_carrying_the_rollout_id(
            self, hub: confhub.Hub) -> None:
        cfg = hub.tenant("acme")
        ops = [*PUT_A, {"op": "patch", "namespace": "models", "key": "b", "value": {"x": 1}}]
        cfg.set("models", "b", {"y": 0})
        r = cfg.rollouts.start(ops, steps="50,100", bake="1h")
        cfg.rollouts.advance(r.id)
        done = cfg.rollouts.advance(r.id)
        assert done.state == "completed"
        a, b = cfg.history("models", "a")[0], cfg.history("models", "b")[0]
        assert a.revision == b.revision == done.revision
        assert a.metadata == {"rollout": r.id} and b.value == {"y": 0, "x": 1}
        cfg.set("models", "a", {"tokens": 3})  # writable again

    def test_rollback_commits_nothing_and_returns_the_cohort(self, hub: confhub.Hub) -> None:
        cfg = hub.tenant("acme")
        r = cfg.rollouts.start(PUT_A, steps="100", bake="1h")
        member = hub.tenant("acme", client_id="anyone")
        assert member.get("models", "a").value == {"tokens": 2}
        back = cfg.rollouts.rollback(r.id, reason="bad")
        assert back.state == "rolled_back"
        assert member.get("models", "a").value == {"tokens": 1}
        assert [v.version for v in cfg.history("models", "a")] == [1]
        with pytest.raises(confhub.InvalidTransition):
            cfg.rollouts.advance(r.id)

    def test_every_transition_is_in_the_feed_and_the_audit_log(self, hub: confhub.Hub) -> None:
        cfg = hub.tenant("acme")
        r = cfg.rollouts.start(PUT_A, steps="50,100", bake="1h", reason="try")
        cfg.rollouts.pause(r.id)
        cfg.rollouts.resume(r.id)
        cfg.rollouts.rollback(r.id)
        events = [c.value["event"] for c in cfg.changes(since=1) if c.op == "rollout"]
        assert events == ["started", "paused", "resumed", "rolled_back"]
        actions = [a.action for a in hub.audit("acme") if a.action.startswith("rollout.")]
        assert actions == ["rollout.started", "rollout.paused", "rollout.resumed",
                           "rollout.rolled_back"]


class Tokens(pydantic.BaseModel):
    tokens: int = pydantic.Field(le=5)


class TestHealthGate:
    def test_a_model_refusing_the_staged_value_rolls_the_rollout_back(
            self, hub: confhub.Hub) -> None:
        cfg = hub.tenant("acme")
        consumer = hub.tenant("acme", client_id="api-1")
        live = consumer.live("models", "a", model=Tokens)
        bad = [{"op": "put", "namespace": "models", "key": "a", "value": {"tokens": 50}}]
        r = cfg.rollouts.start(bad, steps="100", bake="1h")
        wait_for(lambda: cfg.rollouts.get(r.id).state == "rolled_back")
        got = cfg.rollouts.get(r.id)
        assert "1 of 1 consumers reported failure" in (got.event_reason or "")
        assert got.health is not None and got.health.failed[0][0] == "api-1"
        assert live.value.tokens == 1
        live.close()

    def test_healthy_bakes_advance_and_complete_by_themselves(self, hub: confhub.Hub) -> None:
        cfg = hub.tenant("acme")
        consumer = hub.tenant("acme", client_id="api-1")
        live = consumer.live("models", "a", model=Tokens)
        r = cfg.rollouts.start(PUT_A, strategy="all-at-once", bake="0.3s")
        wait_for(lambda: live.value.tokens == 2)
        wait_for(lambda: cfg.rollouts.get(r.id).state == "completed")
        assert cfg.get("models", "a").value == {"tokens": 2}
        assert cfg.rollouts.get(r.id).health is not None
        live.close()

    def test_report_health_false_rolls_back(self, hub: confhub.Hub) -> None:
        cfg = hub.tenant("acme")
        r = cfg.rollouts.start(PUT_A, strategy="all-at-once", bake="1h")
        consumer = hub.tenant("acme", client_id="api-2")
        live = consumer.live("models", "a")
        assert live.rollouts == (r.id,)
        assert live.report_health(ok=False, reason="error rate up") == [r.id]
        wait_for(lambda: cfg.rollouts.get(r.id).state == "rolled_back")
        assert "error rate up" in (cfg.rollouts.get(r.id).event_reason or "")
        live.close()

    def test_a_report_for_an_unknown_rollout_is_not_found(self, hub: confhub.Hub) -> None:
        with pytest.raises(confhub.NotFound, match="r-9"):
            hub.tenant("acme", client_id="c").report("r-9", "failed")


class TestWatch:
    def test_a_member_watching_gets_its_effective_changes_live_and_on_resume(
            self, hub: confhub.Hub) -> None:
        cfg = hub.tenant("acme")
        member = hub.tenant("acme", client_id="m1")
        seen: list[confhub.Change] = []
        got = threading.Event()

        def on(change: confhub.Change) -> None:
            seen.append(change)
            if len(seen) == 2:
                got.set()

        start = cfg.revision
        handle = member.watch(on, namespace="models", key="a")
        r = cfg.rollouts.start(PUT_A, strategy="all-at-once", bake="1h")
        cfg.rollouts.rollback(r.id)
        assert got.wait(5)
        handle.stop()
        live_view = [(c.op, c.value, c.metadata["staged"]) for c in seen]
        assert live_view == [("rollout", {"tokens": 2}, True), ("rollout", {"tokens": 1}, False)]
        resumed = [(c.op, c.value) for c in member.changes(since=start)
                   if c.namespace == "models"]
        assert resumed == [("rollout", {"tokens": 2}), ("rollout", {"tokens": 1})]


def test_consumers_are_registered_with_labels_and_rollouts(hub: confhub.Hub) -> None:
    cfg = hub.tenant("acme")
    r = cfg.rollouts.start(PUT_A, strategy="all-at-once", bake="1h")
    hub.tenant("acme", client_id="api-7", labels={"region": "eu"}).get("models", "a")
    [consumer] = cfg.consumers()
    assert (consumer.client_id, dict(consumer.labels), consumer.rollouts) == (
        "api-7", {"region": "eu"}, (r.id,))
    assert consumer.connected


def test_generated_client_id_is_persisted(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from confhub.identity import Identity

    monkeypatch.setenv("CONFHUB_CACHE_DIR", str(tmp_path / "cache"))
    first = Identity.of(None, {"region": "eu"})
    second = Identity.of(None, {})
    assert first is not None and second is not None
    assert first.client_id == second.client_id
    assert (tmp_path / "cache" / "client_id").read_text().strip() == first.client_id


class TestGateEdges:
    def test_too_few_acks_within_the_bake_roll_back(self, hub: confhub.Hub) -> None:
        cfg = hub.tenant("acme")
        hub.tenant("acme", client_id="silent-1").get("models", "a")  # known, never reports
        r = cfg.rollouts.start(PUT_A, strategy="all-at-once", bake="0.3s", min_ack=0.5)
        wait_for(lambda: cfg.rollouts.get(r.id).state == "rolled_back")
        assert "acknowledged" in (cfg.rollouts.get(r.id).event_reason or "")

    def test_a_change_that_no_longer_validates_rolls_back_instead_of_completing(
            self, hub: confhub.Hub) -> None:
        cfg = hub.tenant("acme")
        r = cfg.rollouts.start(PUT_A, strategy="all-at-once", bake="0.5s")
        cfg.set_schema("models", {"type": "object", "properties": {
            "tokens": {"type": "integer", "maximum": 1}}})
        wait_for(lambda: cfg.rollouts.get(r.id).state == "rolled_back")
        assert "no longer validates" in (cfg.rollouts.get(r.id).event_reason or "")
        assert cfg.get("models", "a").version == 1


def test_restoring_an_old_revision_leaves_rollout_records_alone(hub: confhub.Hub) -> None:
    cfg = hub.tenant("acme")
    before = cfg.revision
    r = cfg.rollouts.start(PUT_A, strategy="all-at-once", bake="1h")
    cfg.rollouts.rollback(r.id)
    cfg.set("models", "b", {"x": 1})
    changes = cfg.restore(revision=before)
    assert [(c.namespace, c.key) for c in changes] == [("models", "b")]
    assert cfg.rollouts.get(r.id).state == "rolled_back"
    assert hub.stats()["configs_per_namespace"] == {"models": 1}
