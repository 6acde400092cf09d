"""Risk rules, as data: how dangerous each change of a plan is, and the plan as a whole.

Each rule names itself, the level it raises a change to and, in ``says``, the sentence the
docs and the plan print. A change's risk is the highest level of the rules that match it
(LOW when none does); the plan's is the highest of its changes' and of the plan-wide rules.
``docs/config-as-code.md`` prints this table; each rule has its own test.

    rule                 level     matches
    production-env       MEDIUM    a change to a production-like env layer
    large-edit           MEDIUM    an update to more than a quarter of a document's fields
    deletion             HIGH      a key is deleted
    secret-touched       HIGH      a secret (a secret key, or an x-secret field) is written
    restart-required     HIGH      a field marked x-restart-required changes
    type-change          HIGH      a field (or the whole value) changes JSON type
    invalid              CRITICAL  the new value fails validation
    namespace-deletion   CRITICAL  every key of a namespace (in one layer) is deleted
    many-keys            CRITICAL  more than 50 keys change at once
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import IntEnum

from ..errors import InvalidRequest
from .diffs import KeyChange, count_fields, json_type

__all__ = [
    "KEY_RULES",
    "MANY_KEYS",
    "PLAN_RULES",
    "Level",
    "PlanFacts",
    "Rule",
    "assess",
    "parse_level",
]

MANY_KEYS = 50
LARGE_EDIT_SHARE = 0.25


class Level(IntEnum):
    LOW = 0
    MEDIUM = 1
    HIGH = 2
    CRITICAL = 3


def parse_level(text: str, *, where: str = "--max-risk") -> Level:
    """``"high"`` -> Level.HIGH; InvalidRequest naming the choices otherwise."""
    try:
        return Level[text.strip().upper()]
    except KeyError:
        raise InvalidRequest(f"{where}: {text!r} is not a risk level (LOW, MEDIUM, HIGH, "
                             "CRITICAL)", level=text) from None


@dataclass(frozen=True)
class PlanFacts:
    """What key rules need to know beyond the change itself."""

    production_envs: tuple[str, ...]
    live_keys: dict[tuple[str, str], int]  # (env, namespace) -> live keys before the plan
    deletions: dict[tuple[str, str], int]  # (env, namespace) -> keys the plan deletes
    changed_keys: int


@dataclass(frozen=True)
class Rule:
    name: str
    level: Level
    says: str
    matches: Callable[[KeyChange, PlanFacts], bool]


def _large_edit(change: KeyChange, facts: PlanFacts) -> bool:
    if change.action != "update":
        return False
    total = max(count_fields(change.live), count_fields(change.desired))
    return len(change.fields) > LARGE_EDIT_SHARE * total


def _type_change(change: KeyChange, facts: PlanFacts) -> bool:
    return any(f.op == "replace" and json_type(f.old) != json_type(f.new)
               for f in change.fields if not f.secret)


def _namespace_deletion(change: KeyChange, facts: PlanFacts) -> bool:
    where = (change.env, change.namespace)
    return change.action == "delete" and facts.deletions.get(where, 0) >= facts.live_keys.get(
        where, 1)


KEY_RULES: tuple[Rule, ...] = (
    Rule("production-env", Level.MEDIUM, "the change is to a production-like env layer",
         lambda c, f: c.env in f.production_envs),
    Rule("large-edit", Level.MEDIUM,
         "more than a quarter of the document's fields change", _large_edit),
    Rule("deletion", Level.HIGH, "the key is deleted", lambda c, f: c.action == "delete"),
    Rule("secret-touched", Level.HIGH, "a secret is written or deleted",
         lambda c, f: any(x.secret for x in c.fields) or (c.secret and c.action == "delete")),
    Rule("restart-required", Level.HIGH,
         "a field marked x-restart-required changes (consumers must restart)",
         lambda c, f: bool(c.restart_paths)),
    Rule("type-change", Level.HIGH, "a field changes JSON type", _type_change),
    Rule("invalid", Level.CRITICAL, "the new value fails validation",
         lambda c, f: not c.report.valid),
    Rule("namespace-deletion", Level.CRITICAL,
         "every key of the namespace (in this layer) is deleted", _namespace_deletion),
)

PLAN_RULES: tuple[tuple[str, Level, str, Callable[[PlanFacts], bool]], ...] = (
    ("many-keys", Level.CRITICAL, f"more than {MANY_KEYS} keys change at once",
     lambda f: f.changed_keys > MANY_KEYS),
)


def assess(changes: Sequence[KeyChange], facts: PlanFacts
           ) -> tuple[list[KeyChange], Level, list[str]]:
    """Each change with its ``risk`` and ``reasons`` filled in, the plan's overall level, and
    the plan-wide rules that matched."""
    assessed = []
    overall = Level.LOW
    for change in changes:
        matched = [rule for rule in KEY_RULES if rule.matches(change, facts)]
        level = max((rule.level for rule in matched), default=Level.LOW)
        overall = max(overall, level)
        assessed.append(dataclasses.replace(change, risk=level.name,
                                            reasons=tuple(r.name for r in matched)))
    plan_reasons = []
    for name, level, _, matches in PLAN_RULES:
        if matches(facts):
            plan_reasons.append(name)
            overall = max(overall, level)
    return assessed, (overall if changes else Level.LOW), plan_reasons
