"""The built-in schema of a flags namespace: flagd's flag-definition format, checked at write.

Each key of a flags namespace (default ``flags``) is one flag in flagd's format; two reserved
keys hold what a flagd flag-set file shares between its flags::

    flags/new-checkout          {"state": "ENABLED", "variants": {"on": true, "off": false},
                                 "defaultVariant": "off", "targeting": {...}, "metadata": {...}}
    flags/flagset.evaluators    {"is_staff": {"ends_with": [{"var": "email"}, "@acme.com"]}}
    flags/flagset.metadata      {"flagSetId": "shop", "version": "7"}

What is checked (each problem names the flag, in the words a flagd user knows):

* ``state`` is ``ENABLED`` or ``DISABLED``; ``variants`` is a non-empty object whose values
  all have one type (all booleans, all strings, all numbers or all objects/arrays), never null;
* ``defaultVariant`` is null/absent (defer to the code default) or the name of a variant;
* ``targeting`` is an object whose operators are ones flagd evaluates (JsonLogic's and
  ``fractional``, ``sem_ver``, ``starts_with``, ``ends_with``) or ``{"$ref": name}``;
* ``metadata`` maps names to strings, numbers or booleans.

flagd's own JSON Schema (flagd-schemas ``targeting.json``) is stricter than flagd's evaluator
about operator arguments (it refuses rules flagd evaluates, such as ``sem_ver`` with a
``v`` prefix), so the arguments are left to evaluation, where a bad one is an evaluation error
exactly as in flagd.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

__all__ = [
    "EVALUATORS_KEY",
    "FLAGS_NAMESPACE",
    "RESERVED_PREFIX",
    "SET_METADATA_KEY",
    "check_entry",
    "check_flag",
    "variant_type",
]

FLAGS_NAMESPACE = "flags"
RESERVED_PREFIX = "flagset."
EVALUATORS_KEY = "flagset.evaluators"
SET_METADATA_KEY = "flagset.metadata"

STATES = ("ENABLED", "DISABLED")
FLAG_FIELDS = ("state", "variants", "defaultVariant", "targeting", "metadata")

# JsonLogic's operations (json_logic.apply's special forms and json_logic.builtins) and
# flagd's custom operators: what the evaluator knows.
OPERATORS = frozenset({
    "if", "?:", "and", "or", "!", "!!", "==", "===", "!=", "!==", "<", "<=", ">", ">=",
    "+", "-", "*", "/", "%", "min", "max", "cat", "substr", "in", "merge", "missing",
    "missing_some", "var", "log", "map", "filter", "reduce", "all", "none", "some",
    "fractional", "sem_ver", "starts_with", "ends_with",
})


def variant_type(value: Any) -> str:
    """The flagd type of a variant value: boolean, string, number or object."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, str):
        return "string"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, Mapping | list | tuple):
        return "object"
    return "null"


def check_entry(key: str, value: Any) -> list[tuple[str, str]]:
    """Problems of one key of a flags namespace, as ``(JSON pointer, message)`` pairs."""
    if key == EVALUATORS_KEY:
        return list(_check_evaluators(value))
    if key == SET_METADATA_KEY:
        return list(_check_metadata(value, "", "flag set metadata"))
    if key.startswith(RESERVED_PREFIX):
        return [("", f"key {key!r} is reserved: keys starting with {RESERVED_PREFIX!r} hold "
                     f"the flag set's shared parts ({EVALUATORS_KEY}, {SET_METADATA_KEY}), "
                     "not flags")]
    return check_flag(key, value)


def check_flag(key: str, flag: Any) -> list[tuple[str, str]]:
    """Problems of flag ``key``'s definition (empty when it is a valid flagd flag)."""
    return list(_flag_problems(key, flag))


def _flag_problems(key: str, flag: Any) -> Iterator[tuple[str, str]]:
    name = f"flag {key!r}"
    if not isinstance(flag, Mapping):
        yield "", f"{name} must be an object with state and variants, not {_kind(flag)}"
        return
    for field in flag:
        if field not in FLAG_FIELDS:
            yield (f"/{_escape(field)}", f"{name} has unknown field {field!r}; a flagd flag "
                   f"has {', '.join(FLAG_FIELDS)}")
    state = flag.get("state")
    if state not in STATES:
        yield "/state", f"{name}: state must be ENABLED or DISABLED, not {state!r}"
    variants = flag.get("variants")
    if not isinstance(variants, Mapping) or not variants:
        yield "/variants", (f"{name}: variants must be a non-empty object of variant name "
                            f"to value, not {_kind(variants)}")
        variants = {}
    first: tuple[str, str] | None = None
    for variant, value in variants.items():
        kind = variant_type(value)
        if kind == "null":
            yield f"/variants/{_escape(variant)}", (
                f"{name}: variant {variant!r} is null; a variant needs a value")
            continue
        if first is None:
            first = (variant, kind)
        elif kind != first[1]:
            yield f"/variants/{_escape(variant)}", (
                f"{name}: variant {variant!r} is {_article(kind)} but variant {first[0]!r} "
                f"is {_article(first[1])}; all variants of a flag have one type")
    if "defaultVariant" in flag:
        default = flag["defaultVariant"]
        if default is not None and not isinstance(default, str):
            yield "/defaultVariant", (f"{name}: defaultVariant must be a variant name or "
                                      f"null, not {_kind(default)}")
        elif isinstance(default, str) and default != "" and variants \
                and default not in variants:
            yield "/defaultVariant", (
                f"{name}: defaultVariant {default!r} is not one of its variants "
                f"({', '.join(repr(v) for v in variants)})")
    if "targeting" in flag and flag["targeting"] is not None:
        targeting = flag["targeting"]
        if not isinstance(targeting, Mapping):
            yield "/targeting", (f"{name}: targeting must be a JsonLogic object, not "
                                 f"{_kind(targeting)}")
        else:
            yield from ((f"/targeting{p}", f"{name}: {m}") for p, m in _check_rule(targeting))
    if "metadata" in flag:
        yield from _check_metadata(flag["metadata"], "/metadata", f"{name}: metadata")


def _check_evaluators(value: Any) -> Iterator[tuple[str, str]]:
    if not isinstance(value, Mapping):
        yield "", f"shared evaluators must be an object of name to rule, not {_kind(value)}"
        return
    for name, rule in value.items():
        where = f"/{_escape(name)}"
        if not isinstance(rule, Mapping):
            yield where, f"shared evaluator {name!r} must be a JsonLogic object"
            continue
        for path, message in _check_rule(rule):
            yield where + path, f"shared evaluator {name!r}: {message}"


def _check_metadata(value: Any, where: str, what: str) -> Iterator[tuple[str, str]]:
    if not isinstance(value, Mapping):
        yield where, f"{what} must be an object, not {_kind(value)}"
        return
    for name, item in value.items():
        if isinstance(item, Mapping | list | tuple) or item is None:
            yield f"{where}/{_escape(name)}", (f"{what} {name!r} must be a string, number or "
                                               f"boolean, not {_kind(item)}")


def _check_rule(rule: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """Unknown operators in a JsonLogic rule (a one-key object is an operation)."""
    if isinstance(rule, list | tuple):
        for index, item in enumerate(rule):
            yield from _check_rule(item, f"{path}/{index}")
        return
    if not isinstance(rule, Mapping) or len(rule) != 1:
        return
    ((operator, args),) = rule.items()
    if operator == "$ref":
        if not isinstance(args, str) or not args:
            yield f"{path}/$ref", "a $ref names a shared evaluator (a string)"
        return
    if operator not in OPERATORS:
        yield f"{path}/{_escape(operator)}", (
            f"targeting uses unknown operator {operator!r}; flagd knows JsonLogic's "
            "operators and fractional, sem_ver, starts_with, ends_with")
        return
    yield from _check_rule(args, f"{path}/{_escape(operator)}")


def _escape(name: str) -> str:
    return str(name).replace("~", "~0").replace("/", "~1")


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "an array"
    return "an object"


def _article(kind: str) -> str:
    return {"boolean": "a boolean", "string": "a string", "number": "a number",
            "object": "an object"}.get(kind, kind)
