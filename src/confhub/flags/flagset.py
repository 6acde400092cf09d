"""flagd flag-set files to and from the keys of a flags namespace.

A flagd file::

    {"$schema": "https://flagd.dev/schema/v0/flags.json",
     "metadata": {"flagSetId": "shop"},
     "$evaluators": {"is_staff": {"ends_with": [{"var": "email"}, "@acme.com"]}},
     "flags": {"new-checkout": {"state": "ENABLED", "variants": {...}, ...}}}

becomes one key per flag plus ``flagset.evaluators`` and ``flagset.metadata`` (definition.py),
written as one transaction; export turns the namespace back into the same document.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidRequest, ValidationFailed
from ..model import ValidationIssue, check_name, thaw
from .definition import EVALUATORS_KEY, SET_METADATA_KEY, check_entry

__all__ = ["FLAGD_SCHEMA", "FlagSetPlan", "plan_import", "to_flagd"]

FLAGD_SCHEMA = "https://flagd.dev/schema/v0/flags.json"
TOP_LEVEL = ("$schema", "flags", "$evaluators", "metadata")


@dataclass(frozen=True)
class FlagSetPlan:
    """What importing a flag-set file writes: ``puts`` (key -> value) and, with ``prune``,
    the ``deletes`` of flags the file no longer has; ``unchanged`` keys are left alone."""

    puts: dict[str, Any]
    deletes: list[str]
    unchanged: list[str]


def plan_import(document: Any, existing: Mapping[str, Any] | None = None, *,
                prune: bool = False, namespace: str = "flags") -> FlagSetPlan:
    """Check a flagd file and turn it into the keys to write.

    Every problem of every flag is reported at once (ValidationFailed, 422) before anything
    is written; a flag key that is not a confhub key name is InvalidName (400).
    ``existing`` (key -> value) keeps unchanged keys out of the write and, with ``prune``,
    names the flags to delete.
    """
    if not isinstance(document, Mapping):
        raise InvalidRequest("a flagd flag-set file is a JSON object with a \"flags\" object")
    unknown = [k for k in document if k not in TOP_LEVEL]
    if unknown:
        raise InvalidRequest(f"unknown top-level field(s) {', '.join(map(repr, unknown))} in "
                             f"the flag-set file; flagd files have {', '.join(TOP_LEVEL)}")
    flags = document.get("flags")
    if not isinstance(flags, Mapping):
        raise InvalidRequest("the flag-set file needs a \"flags\" object of flag key to "
                             "definition (flagd's array form is not supported)")
    puts: dict[str, Any] = {}
    for key, definition in flags.items():
        check_name("key", key)
        puts[key] = thaw(definition)
    if "$evaluators" in document:
        puts[EVALUATORS_KEY] = thaw(document["$evaluators"])
    if "metadata" in document:
        puts[SET_METADATA_KEY] = thaw(document["metadata"])
    issues = [ValidationIssue(path, message, rule="flagd", namespace=namespace, key=key)
              for key, value in puts.items() for path, message in check_entry(key, value)]
    if issues:
        shown = "; ".join(i.message for i in issues[:3])
        more = f" (and {len(issues) - 3} more)" if len(issues) > 3 else ""
        raise ValidationFailed(f"the flag set is not valid flagd: {shown}{more}; nothing was "
                               "written", errors=[i.to_dict() for i in issues], warnings=[])
    existing = existing or {}
    deletes = sorted(k for k in existing if k not in puts) if prune else []
    changed = {k: v for k, v in puts.items() if k not in existing or thaw(existing[k]) != v}
    return FlagSetPlan(changed, deletes, sorted(k for k in puts if k not in changed))


def to_flagd(values: Mapping[str, Any]) -> dict[str, Any]:
    """The flagd flag-set document of a namespace's keys (key -> value)."""
    document: dict[str, Any] = {"$schema": FLAGD_SCHEMA}
    if SET_METADATA_KEY in values:
        document["metadata"] = thaw(values[SET_METADATA_KEY])
    if EVALUATORS_KEY in values:
        document["$evaluators"] = thaw(values[EVALUATORS_KEY])
    document["flags"] = {k: thaw(v) for k, v in sorted(values.items())
                         if k not in (EVALUATORS_KEY, SET_METADATA_KEY)}
    return document
