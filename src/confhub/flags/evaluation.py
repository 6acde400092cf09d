"""Evaluating flagd flags: the rules of flagd's evaluator, on flags kept by confhub.

The targeting language is flagd's: JsonLogic (the ``panzi-json-logic`` package flagd's Python
evaluator uses) with flagd's operators ``fractional``, ``sem_ver``, ``starts_with`` and
``ends_with`` taken as they are from ``openfeature-flagd-core``, so bucketing and version
comparison are flagd's own. The resolution around it follows flagd-core 2.x step by step:

    flag missing                         -> error FLAG_NOT_FOUND
    state DISABLED                       -> code default, reason DISABLED, no variant
    no targeting (or {})                 -> defaultVariant, reason STATIC
                                            (no defaultVariant: code default, reason DEFAULT)
    targeting returns null               -> defaultVariant, reason DEFAULT (same fallback)
    targeting returns a variant name     -> that variant, reason TARGETING_MATCH, or SPLIT
      (true/false/numbers as strings)       when ``fractional`` chose it
    targeting returns an unknown variant -> error GENERAL
    targeting raises (unknown operator,  -> error PARSE_ERROR
      missing $ref, division by zero...)
    asked for a type the value is not    -> error TYPE_MISMATCH (never for a code default)

Two things are confhub's: ``SPLIT`` (OpenFeature's reason for a pseudorandom assignment, which
flagd reports as TARGETING_MATCH) and the flag's confhub ``version`` in its metadata.

A :class:`FlagSet` is immutable: compiled once from the namespace's entries (``$ref`` to shared
evaluators resolved then), evaluated lock-free by any number of threads, replaced whole when
the namespace changes.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, NamedTuple

from json_logic import builtins, jsonLogic
from openfeature.contrib.tools.flagd.core.targeting.custom_ops import (
    ends_with,
    fractional,
    sem_ver,
    starts_with,
)

from ..model import thaw
from .definition import EVALUATORS_KEY, RESERVED_PREFIX, SET_METADATA_KEY

__all__ = ["Evaluation", "FlagSet", "KINDS"]

Metadata = Mapping[str, str | int | float | bool]

KINDS = ("boolean", "string", "integer", "float", "object")
_SPLIT = "$confhub.split"  # where the fractional operator notes what it chose


def _fractional(data: dict[str, Any], *args: Any) -> Any:
    chosen = fractional(data, *args)
    if chosen is not None and isinstance(data, dict):
        data[_SPLIT] = _variant_name(chosen)
    return chosen


OPERATORS = {**builtins.BUILTINS, "fractional": _fractional, "starts_with": starts_with,
             "ends_with": ends_with, "sem_ver": sem_ver}


class Evaluation(NamedTuple):
    """The result of evaluating one flag, in OpenFeature's terms.

    ``value`` is None and ``variant`` None when the flag defers to the caller's code default
    (DISABLED, or no defaultVariant); ``error_code`` is set (and ``reason`` is ERROR) when the
    evaluation failed, ``error_message`` saying why. (A named tuple, not a frozen dataclass:
    it is made on every evaluation, and costs a third as much to build.)
    """

    key: str
    value: Any
    variant: str | None
    reason: str
    error_code: str | None = None
    error_message: str | None = None
    metadata: Metadata = MappingProxyType({})

    @property
    def uses_code_default(self) -> bool:
        return self.error_code is not None or self.variant is None


@dataclass(frozen=True, slots=True)
class _Flag:
    key: str
    enabled: bool
    variants: Mapping[str, Any]
    default_variant: str | None
    targeting: Any  # a JsonLogic rule with every $ref replaced, or None
    metadata: Metadata
    problem: str | None  # why its targeting cannot be evaluated (a missing $ref)


class FlagSet:
    """The flags of one namespace (one env), compiled for evaluation."""

    def __init__(self, definitions: Mapping[str, Any], versions: Mapping[str, int] | None = None,
                 ) -> None:
        """``definitions`` maps every key of the namespace to its value (the reserved
        ``flagset.*`` keys included); ``versions`` gives each key's confhub version."""
        versions = versions or {}
        self.evaluators: dict[str, Any] = _object(definitions.get(EVALUATORS_KEY))
        self.metadata: dict[str, Any] = {
            k: v for k, v in _object(definitions.get(SET_METADATA_KEY)).items()
            if isinstance(v, str | int | float | bool)}
        self.definitions = {k: v for k, v in definitions.items()
                            if not k.startswith(RESERVED_PREFIX)}
        self.versions = dict(versions)
        self._flags = {key: self._compile(key, value, versions.get(key))
                       for key, value in self.definitions.items()}
        self._keys = sorted(self._flags)

    @classmethod
    def from_entries(cls, entries: Iterable[Any]) -> FlagSet:
        """From ``Entry`` objects (``cfg.list(namespace)``)."""
        items = list(entries)
        return cls({e.key: e.value for e in items}, {e.key: e.version for e in items})

    def flag_keys(self) -> list[str]:
        """The flags' keys, sorted."""
        return list(self._keys)

    def __contains__(self, key: object) -> bool:
        return key in self._flags

    def __len__(self) -> int:
        return len(self._flags)

    def changed_keys(self, other: FlagSet) -> list[str]:
        """Flags whose evaluation may differ between ``other`` and this set."""
        mine, theirs = self._flags, other._flags
        return sorted(k for k in mine.keys() | theirs.keys() if mine.get(k) != theirs.get(k))

    def _compile(self, key: str, value: Any, version: int | None) -> _Flag:
        flag = _object(value)
        variants = _object(flag.get("variants"))
        default = flag.get("defaultVariant")
        metadata = dict(self.metadata)
        metadata.update((k, v) for k, v in _object(flag.get("metadata")).items()
                        if isinstance(v, str | int | float | bool))
        if version is not None:
            metadata["version"] = version
        problem = None
        targeting = flag.get("targeting") or None
        if targeting is not None:
            try:
                targeting = _resolve_refs(thaw(targeting), self.evaluators, ())
            except LookupError as exc:
                problem = str(exc.args[0])
        return _Flag(key, flag.get("state") != "DISABLED", variants,
                     default if isinstance(default, str) and default else None,
                     targeting, metadata, problem)

    def evaluate(self, key: str, context: Mapping[str, Any] | None = None,
                 targeting_key: str | None = None, kind: str | None = None) -> Evaluation:
        """Evaluate flag ``key`` for ``context`` (attributes) and ``targeting_key``.

        ``kind`` (one of :data:`KINDS`) is the type the caller asked for; None (OFREP, which
        has no types) skips the type check.
        """
        flag = self._flags.get(key)
        if flag is None:
            return _error(key, "FLAG_NOT_FOUND", f"flag {key!r} does not exist", {})
        if not flag.enabled:
            return Evaluation(key, None, None, "DISABLED", metadata=flag.metadata)
        if flag.targeting is None:
            return _typed(flag, flag.default_variant, "STATIC", kind)
        if flag.problem is not None:
            return _error(key, "PARSE_ERROR", flag.problem, flag.metadata)
        data = dict(context) if context else {}
        data["$flagd"] = {"flagKey": key, "timestamp": int(time.time())}
        data["targetingKey"] = targeting_key
        try:
            chosen = jsonLogic(flag.targeting, data, OPERATORS)
        except Exception as exc:  # noqa: BLE001 - any failure of a rule is flagd's PARSE_ERROR
            return _error(key, "PARSE_ERROR",
                          f"targeting of flag {key!r} failed: {type(exc).__name__}: {exc}",
                          flag.metadata)
        if chosen is None:
            return _typed(flag, flag.default_variant, "DEFAULT", kind)
        variant = _variant_name(chosen)
        if variant not in flag.variants:
            return _error(key, "GENERAL", f"targeting of flag {key!r} chose {variant!r}, "
                          "which is not one of its variants", flag.metadata)
        reason = "SPLIT" if data.get(_SPLIT) == variant else "TARGETING_MATCH"
        return _typed(flag, variant, reason, kind)


def _typed(flag: _Flag, variant: str | None, reason: str, kind: str | None) -> Evaluation:
    if variant is None:  # no defaultVariant: the caller's code default
        return Evaluation(flag.key, None, None, "DEFAULT", metadata=flag.metadata)
    if variant not in flag.variants:
        return _error(flag.key, "GENERAL", f"variant {variant!r} of flag {flag.key!r} does "
                      "not exist", flag.metadata)
    value = flag.variants[variant]
    if kind is not None:
        if not _is_kind(value, kind):
            return _error(flag.key, "TYPE_MISMATCH", f"flag {flag.key!r} is not {kind}: its "
                          f"variant {variant!r} is {type(value).__name__}", flag.metadata)
        if kind == "float":
            value = float(value)
    return Evaluation(flag.key, value, variant, reason, metadata=flag.metadata)


def _is_kind(value: Any, kind: str) -> bool:
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "string":
        return isinstance(value, str)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "float":
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, Mapping | list | tuple)


def _error(key: str, code: str, message: str, metadata: Metadata) -> Evaluation:
    return Evaluation(key, None, None, "ERROR", code, message, metadata)


def _variant_name(chosen: Any) -> str:
    """flagd's conversion of what targeting returned into a variant name."""
    if isinstance(chosen, bool):
        return "true" if chosen else "false"
    return chosen if isinstance(chosen, str) else str(chosen)


def _object(value: Any) -> dict[str, Any]:
    return thaw(value) if isinstance(value, Mapping) else {}


def _resolve_refs(rule: Any, evaluators: Mapping[str, Any], seen: tuple[str, ...]) -> Any:
    """``rule`` with each ``{"$ref": name}`` replaced by the shared evaluator ``name``.

    Raises LookupError naming a missing evaluator (flagd: PARSE_ERROR) or a cycle.
    """
    if isinstance(rule, list):
        return [_resolve_refs(item, evaluators, seen) for item in rule]
    if not isinstance(rule, dict):
        return rule
    if len(rule) == 1 and "$ref" in rule:
        name = rule["$ref"]
        if not isinstance(name, str) or name not in evaluators:
            raise LookupError(f"targeting refers to shared evaluator {name!r}, which does not "
                              "exist")
        if name in seen:
            raise LookupError(f"shared evaluator {name!r} refers to itself")
        return _resolve_refs(thaw(evaluators[name]), evaluators, (*seen, name))
    return {k: _resolve_refs(v, evaluators, seen) for k, v in rule.items()}
