"""Staged rollouts as values: the strategy, the rollout document and its state machine.

Nothing here does I/O: the hub stores a :class:`Rollout` as a versioned document (one version
per transition, so every transition is a revision of the tenant's change feed) and asks
:func:`decide` what the health gate says. The states::

    running --pause--> paused --resume--> running
    running|paused --advance--> next step (running); at the last step: completed
    running|paused --rollback--> rolled_back        (completed and rolled_back are final)

Worked example, ``steps=(10, 50, 100)``, ``bake=60 s`` and ``max_failure=0``::

    t=0    start            running, step 0 (10 %)
    t=60   bake over, gate healthy  -> advance: step 1 (50 %), bake restarts
    t=80   a consumer reports failed -> failure share 1/3 > 0 -> rolled_back
    (had nothing failed: t=120 -> step 2 (100 %), t=180 final bake over -> completed)
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from .cohort import Cohort
from .errors import InvalidRequest, InvalidTransition

__all__ = ["ACTIVE", "COMPLETED", "PAUSED", "PRESETS", "REPORT_STATUSES", "ROLLED_BACK",
           "RUNNING", "Decision", "GateReading", "InvalidTransition", "Rollout", "RolloutHealth",
           "StagedOp", "Strategy", "decide", "parse_duration", "parse_steps"]

RUNNING, PAUSED, COMPLETED, ROLLED_BACK = "running", "paused", "completed", "rolled_back"
ACTIVE = (RUNNING, PAUSED)
PRESETS: dict[str, tuple[float, ...]] = {
    "canary": (10, 100),
    "linear": (20, 40, 60, 80, 100),
    "exponential": (1, 2, 4, 8, 16, 32, 64, 100),
    "all-at-once": (100,),
}
DEFAULT_BAKE = 300.0  # seconds, per step, when none is given
# what a consumer may report: the first two for a staged value it met, the others for itself
REPORT_STATUSES = ("applied", "failed", "healthy", "unhealthy")
GOOD, BAD = ("applied", "healthy"), ("failed", "unhealthy")
_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(value: object, what: str = "duration") -> float:
    """Seconds from ``90``, ``"90s"``, ``"5m"``, ``"1h"``, ``"500ms"``."""
    if isinstance(value, bool):
        raise InvalidRequest(f"{what} {value!r} is not a duration")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (m := _DURATION.fullmatch(value)):
        seconds = float(m[1]) * _UNIT[m[2]]
    else:
        raise InvalidRequest(f"{what} {value!r} is not a duration (write 30s, 5m, 1h or seconds)")
    if not 0 <= seconds <= 7 * 86400:
        raise InvalidRequest(f"{what} {value!r} must be between 0 and 7 days")
    return seconds


def parse_steps(value: str | Sequence[object]) -> tuple[float, ...]:
    """``"1,10,50,100"`` or a list -> percentages; they must grow and end at 100."""
    items = value.split(",") if isinstance(value, str) else list(value)
    steps: list[float] = []
    for item in items:
        try:
            number = float(str(item).strip().rstrip("%")) if not isinstance(item, bool) else -1
        except ValueError:
            raise InvalidRequest(f"steps: {item!r} is not a percentage") from None
        if not 0 < number <= 100:
            raise InvalidRequest(f"steps: {item!r} is not a percentage in (0, 100]")
        if round(number * 100) != number * 100:
            raise InvalidRequest(f"steps: {item!r} has more than two decimals")
        if steps and number <= steps[-1]:
            raise InvalidRequest(f"steps must grow: {number:g} comes after {steps[-1]:g}")
        steps.append(number)
    if not steps or steps[-1] != 100:
        raise InvalidRequest(f"steps must end at 100 (the whole fleet), not "
                             f"{steps[-1]:g}" if steps else "steps are empty",
                             steps=[float(s) for s in steps])
    return tuple(steps)


def _fraction(value: object, what: str) -> float:
    if isinstance(value, str) and value.strip().endswith("%"):
        value = float(value.strip()[:-1]) / 100
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise InvalidRequest(f"{what} {value!r} is not a number")
    try:
        number = float(value)
    except ValueError:
        raise InvalidRequest(f"{what} {value!r} is not a number") from None
    if not 0 <= number <= 1:
        raise InvalidRequest(f"{what} {value!r} must be a share between 0 and 1 (or 0%-100%)")
    return number


@dataclass(frozen=True, slots=True)
class Strategy:
    """Steps (percent of eligible consumers), bake time per step (the last step's bake is the
    final bake before the commit) and the health gate's thresholds."""

    steps: tuple[float, ...] = PRESETS["canary"]
    bake: tuple[float, ...] = (DEFAULT_BAKE, DEFAULT_BAKE)
    max_failure: float = 0.0  # failure share above which the rollout rolls back
    min_reports: int = 1  # reports needed before the failure share counts
    min_ack: float = 0.0  # share of known cohort consumers that must ack within a bake
    auto: bool = True  # advance by itself when a bake ends healthy

    @classmethod
    def build(cls, preset: str | None = None, *, steps: str | Sequence[object] | None = None,
              bake: object = None, final_bake: object = None, max_failure: object = 0.0,
              min_reports: object = 1, min_ack: object = 0.0, auto: bool = True) -> Strategy:
        if preset is not None and steps is not None:
            raise InvalidRequest("give a preset or steps, not both")
        if preset is not None:
            if preset not in PRESETS:
                raise InvalidRequest(f"unknown strategy {preset!r}; presets are "
                                     f"{', '.join(PRESETS)}", strategy=preset)
            parsed = PRESETS[preset]
        else:
            parsed = parse_steps(steps) if steps is not None else PRESETS["canary"]
        if isinstance(bake, list | tuple):
            if len(bake) != len(parsed):
                raise InvalidRequest(f"bake has {len(bake)} times for {len(parsed)} steps")
            bakes = [parse_duration(b, "bake") for b in bake]
        else:
            bakes = [parse_duration(DEFAULT_BAKE if bake is None else bake, "bake")] * len(parsed)
        if final_bake is not None:
            bakes[-1] = parse_duration(final_bake, "final bake")
        if isinstance(min_reports, bool) or not isinstance(min_reports, int) or min_reports < 1:
            raise InvalidRequest(f"min_reports {min_reports!r} must be an integer >= 1")
        if not isinstance(auto, bool):
            raise InvalidRequest(f"auto {auto!r} must be true or false")
        return cls(parsed, tuple(bakes), _fraction(max_failure, "max_failure"), min_reports,
                   _fraction(min_ack, "min_ack"), auto)

    def to_dict(self) -> dict[str, Any]:
        return {"steps": list(self.steps), "bake": list(self.bake),
                "max_failure": self.max_failure, "min_reports": self.min_reports,
                "min_ack": self.min_ack, "auto": self.auto}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Strategy:
        return cls(tuple(data["steps"]), tuple(data["bake"]), data["max_failure"],
                   data["min_reports"], data["min_ack"], data["auto"])


@dataclass(frozen=True, slots=True)
class StagedOp:
    """One staged key: the value its cohort resolves (None with ``deleted``) and the committed
    version it was staged on (0: the key did not exist)."""

    env: str
    namespace: str
    key: str
    value: Any
    deleted: bool = False
    base_version: int = 0

    @property
    def address(self) -> tuple[str, str, str]:
        return (self.env, self.namespace, self.key)


@dataclass(frozen=True, slots=True)
class GateReading:
    """What the hub measured for the gate: known cohort consumers and their latest reports."""

    cohort: int = 0
    applied: int = 0
    failed: int = 0
    prometheus: str | None = None  # why the Prometheus gate fired, if it did
    failure_reason: str | None = None
    acked: int | None = None  # cohort members that applied (None: same as applied)
    hold: str | None = None  # why the gate cannot tell now (advancing waits)


@dataclass(frozen=True, slots=True)
class RolloutHealth:
    """The cohort as the server knows it: consumers seen recently that are members, and the
    latest report of everyone who reported on this rollout."""

    cohort: tuple[str, ...] = ()
    applied: tuple[str, ...] = ()
    failed: tuple[tuple[str, str | None], ...] = ()  # (client id, reason)
    silent: tuple[str, ...] = ()
    prometheus: str | None = None

    @classmethod
    def of(cls, cohort: Sequence[str], reports: Sequence[tuple[str, str, str | None]],
           prometheus: str | None = None) -> RolloutHealth:
        """From member client ids and ``(client_id, status, reason)`` reports."""
        good = sorted(c for c, status, _ in reports if status in GOOD)
        bad = sorted((c, reason) for c, status, reason in reports if status in BAD)
        heard = {c for c, _, _ in reports}
        return cls(tuple(sorted(cohort)), tuple(good), tuple(bad),
                   tuple(sorted(c for c in cohort if c not in heard)), prometheus)

    def reading(self) -> GateReading:
        members = set(self.cohort)
        return GateReading(cohort=len(members), applied=len(self.applied),
                           failed=len(self.failed), prometheus=self.prometheus,
                           failure_reason=self.failed[-1][1] if self.failed else None,
                           acked=sum(1 for c in self.applied if c in members))

    def to_dict(self) -> dict[str, Any]:
        return {"cohort": len(self.cohort), "members": list(self.cohort),
                "applied": list(self.applied),
                "failed": [{"client_id": c, "reason": r} for c, r in self.failed],
                "silent": list(self.silent), "prometheus": self.prometheus}


@dataclass(frozen=True, slots=True)
class Decision:
    action: str  # "advance" | "complete" | "rollback"
    reason: str


@dataclass(frozen=True, slots=True)
class Rollout:
    """A rollout as stored: everything needed to resolve its cohort and drive it."""

    id: str
    tenant: str
    state: str
    step: int
    strategy: Strategy
    cohort: Cohort
    ops: tuple[StagedOp, ...]
    created_at: int  # microseconds since the epoch
    updated_at: int
    step_started_at: int
    reason: str | None = None
    author: str | None = None
    event: str = "started"
    event_reason: str | None = None
    gate_prometheus: tuple[str, str] | None = None  # (url, query)
    revision: int = 0  # the feed revision of this state (filled when read back)
    version: int = 0
    extra: Mapping[str, Any] = field(default_factory=dict)
    health: RolloutHealth | None = field(default=None, compare=False)

    @property
    def percent(self) -> float:
        return self.strategy.steps[self.step]

    @property
    def active(self) -> bool:
        return self.state in ACTIVE

    @property
    def last_step(self) -> bool:
        return self.step == len(self.strategy.steps) - 1

    @property
    def bake_seconds(self) -> float:
        return self.strategy.bake[self.step]

    def bake_left(self, now: int) -> float:
        return max(0.0, self.bake_seconds - (now - self.step_started_at) / 1e6)

    @property
    def keys(self) -> list[str]:
        return [f"{o.namespace}/{o.key}" + ("" if o.env == "base" else f"@{o.env}")
                for o in self.ops]

    def member(self, client_id: str | None, labels: Mapping[str, str]) -> bool:
        return self.active and self.cohort.member(client_id, labels, self.percent)

    def covers(self, env: str, namespace: str, key: str) -> bool:
        return any(op.address == (env, namespace, key) for op in self.ops)

    # ------------------------------------------------------------------ transitions

    def _moved(self, now: int, event: str, reason: str | None, **changes: Any) -> Rollout:
        return replace(self, updated_at=now, event=event, event_reason=reason, **changes)

    def _require(self, action: str, *states: str) -> None:
        if self.state not in states:
            raise InvalidTransition(f"rollout {self.id!r} is {self.state}; it cannot {action}",
                                    rollout=self.id, state=self.state)

    def advance(self, now: int, reason: str | None = None) -> Rollout:
        """The next step; at the last step, completion (the hub then commits the change)."""
        self._require("advance", *ACTIVE)
        if self.last_step:
            return self._moved(now, "completed", reason, state=COMPLETED)
        return self._moved(now, "advanced", reason, state=RUNNING, step=self.step + 1,
                           step_started_at=now)

    def pause(self, now: int, reason: str | None = None) -> Rollout:
        self._require("be paused", RUNNING)
        return self._moved(now, "paused", reason, state=PAUSED)

    def resume(self, now: int, reason: str | None = None) -> Rollout:
        """Running again; the step's bake starts over."""
        self._require("resume", PAUSED)
        return self._moved(now, "resumed", reason, state=RUNNING, step_started_at=now)

    def rollback(self, now: int, reason: str | None = None) -> Rollout:
        self._require("be rolled back", *ACTIVE)
        return self._moved(now, "rolled_back", reason, state=ROLLED_BACK)

    # ------------------------------------------------------------------ public form

    def to_dict(self, now: int | None = None) -> dict[str, Any]:
        """The JSON of the API: the stored document with RFC 3339 times, plus ``tenant``,
        ``percent``, ``revision``, ``version``, ``bake_left`` (seconds) and ``health``."""
        doc = self.to_doc()
        for name in ("created_at", "updated_at", "step_started_at"):
            doc[name] = _rfc3339(doc[name])
        doc["gate_prometheus"] = ({"url": self.gate_prometheus[0],
                                   "query": self.gate_prometheus[1]}
                                  if self.gate_prometheus else None)
        doc.update(tenant=self.tenant, percent=self.percent, revision=self.revision,
                   version=self.version,
                   bake_left=round(self.bake_left(now), 3)
                   if now is not None and self.state == RUNNING else None,
                   health=self.health.to_dict() if self.health is not None else None)
        return doc

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Rollout:
        doc = dict(data)
        for name in ("created_at", "updated_at", "step_started_at"):
            doc[name] = _micros(doc[name])
        gate = doc.get("gate_prometheus")
        doc["gate_prometheus"] = [gate["url"], gate["query"]] if gate else None
        health = doc.pop("health", None)
        for name in ("tenant", "percent", "revision", "version", "bake_left"):
            doc.pop(name, None)
        rollout = cls.from_doc(data["tenant"], doc, revision=data.get("revision", 0),
                               version=data.get("version", 0))
        if health is not None:
            rollout = replace(rollout, health=RolloutHealth(
                tuple(health["members"]), tuple(health["applied"]),
                tuple((f["client_id"], f.get("reason")) for f in health["failed"]),
                tuple(health["silent"]), health.get("prometheus")))
        return rollout

    # ------------------------------------------------------------------ storage form

    def to_doc(self) -> dict[str, Any]:
        return {
            "id": self.id, "state": self.state, "step": self.step,
            "strategy": self.strategy.to_dict(),
            "salt": self.cohort.salt,
            "selector": str(self.cohort.selector) if self.cohort.selector else None,
            "clients": sorted(self.cohort.clients),
            "ops": [{"env": o.env, "namespace": o.namespace, "key": o.key, "value": o.value,
                     "deleted": o.deleted, "base_version": o.base_version} for o in self.ops],
            "created_at": self.created_at, "updated_at": self.updated_at,
            "step_started_at": self.step_started_at, "reason": self.reason,
            "author": self.author, "event": self.event, "event_reason": self.event_reason,
            "gate_prometheus": list(self.gate_prometheus) if self.gate_prometheus else None,
            **dict(self.extra),
        }

    @classmethod
    def from_doc(cls, tenant: str, doc: Mapping[str, Any], *, revision: int = 0,
                 version: int = 0) -> Rollout:
        known = {"id", "state", "step", "strategy", "salt", "selector", "clients", "ops",
                 "created_at", "updated_at", "step_started_at", "reason", "author", "event",
                 "event_reason", "gate_prometheus"}
        gate = doc.get("gate_prometheus")
        return cls(
            id=doc["id"], tenant=tenant, state=doc["state"], step=doc["step"],
            strategy=Strategy.from_dict(doc["strategy"]),
            cohort=Cohort.build(doc["salt"], doc.get("selector"), doc.get("clients")),
            ops=tuple(StagedOp(o["env"], o["namespace"], o["key"], o.get("value"),
                               bool(o.get("deleted")), o.get("base_version", 0))
                      for o in doc["ops"]),
            created_at=doc["created_at"], updated_at=doc["updated_at"],
            step_started_at=doc["step_started_at"], reason=doc.get("reason"),
            author=doc.get("author"), event=doc.get("event", "started"),
            event_reason=doc.get("event_reason"),
            gate_prometheus=(gate[0], gate[1]) if gate else None,
            revision=revision, version=version,
            extra={k: v for k, v in doc.items() if k not in known},
        )


def decide(rollout: Rollout, reading: GateReading, now: int) -> Decision | None:
    """What the health gate does now with a running rollout (None: wait).

    Failures count first (a failing cohort is rolled back even mid-bake, and even while the
    rollout is paused: a pause holds the widening, not the safety net), then the Prometheus
    gate; only a running bake that ran its full time can advance, and only if enough of the
    cohort acknowledged.
    """
    if rollout.state not in ACTIVE:
        return None
    strategy = rollout.strategy
    reports = reading.applied + reading.failed
    if reading.failed and reports >= strategy.min_reports:
        share = reading.failed / reports
        if share > strategy.max_failure:
            why = f"; last failure: {reading.failure_reason}" if reading.failure_reason else ""
            return Decision("rollback", f"{reading.failed} of {reports} consumers reported "
                            f"failure ({share:.0%} > max_failure {strategy.max_failure:.0%})"
                            + why)
    if reading.prometheus is not None:
        return Decision("rollback", f"the Prometheus gate fired: {reading.prometheus}")
    if rollout.state != RUNNING or rollout.bake_left(now) > 0 or reading.hold is not None:
        return None
    if strategy.min_ack > 0 and reading.cohort:
        count = reading.applied if reading.acked is None else reading.acked
        acked = count / reading.cohort
        if acked < strategy.min_ack:
            return Decision("rollback", f"only {count} of {reading.cohort} cohort "
                            f"consumers acknowledged within the bake ({acked:.0%} < min_ack "
                            f"{strategy.min_ack:.0%})")
    if not strategy.auto:
        return None
    if rollout.last_step:
        return Decision("complete", "the final bake ended healthy")
    return Decision("advance", f"the bake of step {rollout.step + 1} ended healthy")


def _rfc3339(micros: int) -> str:
    return (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=micros)).isoformat()


def _micros(text: str) -> int:
    return (datetime.fromisoformat(text) - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(
        microseconds=1)
