"""Strategy parsing, the rollout state machine and the health gate's decisions."""

from __future__ import annotations

import pytest

from confhub.cohort import Cohort
from confhub.errors import InvalidRequest, InvalidTransition
from confhub.rollout import (
    PRESETS,
    GateReading,
    Rollout,
    StagedOp,
    Strategy,
    decide,
    parse_duration,
    parse_steps,
)

S = 1_000_000  # microseconds per second


def make(steps: str = "10,50,100", bake: object = 60, **gate: object) -> Rollout:
    return Rollout(id="r-1", tenant="acme", state="running", step=0,
                   strategy=Strategy.build(steps=steps, bake=bake, **gate),
                   cohort=Cohort.build("r-1"),
                   ops=(StagedOp("base", "models", "a", {"x": 2}, base_version=1),),
                   created_at=0, updated_at=0, step_started_at=0)


class TestStrategy:
    def test_presets(self) -> None:
        assert Strategy.build("canary").steps == (10, 100)
        assert Strategy.build("all-at-once").steps == (100,)
        assert Strategy.build("exponential").steps[-1] == 100
        assert set(PRESETS) == {"canary", "linear", "exponential", "all-at-once"}

    def test_unknown_preset_is_refused(self) -> None:
        with pytest.raises(InvalidRequest, match="unknown strategy 'blue-green'"):
            Strategy.build("blue-green")

    @pytest.mark.parametrize(("steps", "named"), [
        ("10,50", "must end at 100"),
        ("50,10,100", "must grow"),
        ("0,100", "percentage"),
        ("ten,100", "'ten' is not a percentage"),
        ("", "not a percentage"),
    ])
    def test_bad_steps_are_refused(self, steps: str, named: str) -> None:
        with pytest.raises(InvalidRequest, match=named):
            parse_steps(steps)

    def test_final_bake_replaces_the_last_steps_bake(self) -> None:
        assert Strategy.build(steps="10,100", bake="2m", final_bake="10s").bake == (120, 10)

    @pytest.mark.parametrize(("text", "seconds"), [
        ("500ms", 0.5), ("30s", 30), ("5m", 300), ("1h", 3600), (7, 7.0)])
    def test_durations(self, text: object, seconds: float) -> None:
        assert parse_duration(text) == seconds

    def test_max_failure_takes_a_share_or_a_percentage(self) -> None:
        assert Strategy.build(max_failure="5%").max_failure == 0.05
        with pytest.raises(InvalidRequest, match="between 0 and 1"):
            Strategy.build(max_failure=5)


class TestTransitions:
    def test_advance_walks_the_steps_then_completes(self) -> None:
        r = make()
        r = r.advance(10 * S)
        assert (r.state, r.percent, r.step_started_at) == ("running", 50, 10 * S)
        r = r.advance(20 * S).advance(30 * S)
        assert r.state == "completed" and r.event == "completed"

    def test_pause_and_resume_restart_the_bake(self) -> None:
        r = make().pause(5 * S)
        assert r.state == "paused" and r.active
        r = r.resume(9 * S)
        assert r.state == "running" and r.step_started_at == 9 * S

    @pytest.mark.parametrize("action", ["advance", "pause", "resume", "rollback"])
    def test_a_finished_rollout_refuses_every_transition(self, action: str) -> None:
        done = make().rollback(1)
        with pytest.raises(InvalidTransition, match="rolled_back"):
            getattr(done, action)(2)

    def test_round_trips_through_its_document(self) -> None:
        r = make(steps="1,10,100", bake=[1, 2, 3]).advance(5)
        back = Rollout.from_doc("acme", r.to_doc(), revision=7, version=2)
        assert back.to_doc() == r.to_doc() and back.revision == 7


class TestGate:
    def test_any_failure_rolls_back_by_default(self) -> None:
        decision = decide(make(), GateReading(cohort=3, applied=2, failed=1), 1 * S)
        assert decision is not None and decision.action == "rollback"
        assert "1 of 3" in decision.reason

    def test_failures_below_max_failure_are_tolerated(self) -> None:
        r = make(max_failure=0.5, min_reports=4)
        assert decide(r, GateReading(cohort=4, applied=3, failed=1), 1 * S) is None

    def test_too_few_reports_do_not_count_yet(self) -> None:
        r = make(min_reports=3)
        assert decide(r, GateReading(cohort=5, applied=0, failed=1), 1 * S) is None

    def test_prometheus_gate_rolls_back(self) -> None:
        decision = decide(make(), GateReading(prometheus="errors > 0"), 1 * S)
        assert decision is not None and decision.action == "rollback"

    def test_healthy_bake_advances_only_when_over(self) -> None:
        assert decide(make(), GateReading(), 59 * S) is None
        decision = decide(make(), GateReading(), 60 * S)
        assert decision is not None and decision.action == "advance"

    def test_last_step_completes(self) -> None:
        r = make().advance(0).advance(0)
        decision = decide(r, GateReading(), 60 * S)
        assert decision is not None and decision.action == "complete"

    def test_too_few_acks_roll_back_at_the_end_of_the_bake(self) -> None:
        r = make(min_ack=0.5)
        decision = decide(r, GateReading(cohort=4, applied=1), 60 * S)
        assert decision is not None and decision.action == "rollback"
        assert "acknowledged" in decision.reason

    def test_manual_strategy_waits_for_a_person(self) -> None:
        assert decide(make(auto=False), GateReading(), 600 * S) is None

    def test_paused_rollouts_do_not_advance_but_still_roll_back(self) -> None:
        paused = make().pause(0)
        assert decide(paused, GateReading(), 600 * S) is None
        decision = decide(paused, GateReading(failed=1), 600 * S)
        assert decision is not None and decision.action == "rollback"


def test_public_json_round_trips() -> None:
    r = make(steps="5,100", bake="30s").advance(3 * S)
    data = r.to_dict(now=4 * S)
    assert data["percent"] == 100 and data["bake_left"] == 29.0
    assert data["created_at"].startswith("1970-01-01T00:00:00")
    assert Rollout.from_dict(data).to_doc() == r.to_doc()
