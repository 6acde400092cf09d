"""Who is in a rollout's cohort: label selectors and stable bucketing of client ids.

A rollout widens step by step, so membership must be *monotone*: a consumer in the cohort at
10 % must still be in it at 50 %. Each consumer therefore gets one fixed bucket per rollout,
and a step of P % takes the buckets below ``P * 100``::

    bucket(salt, client_id) = murmur3_32(utf8(salt + ":" + client_id), seed=0) mod 10000

(MurmurHash3 x86 32-bit, read as unsigned; ``mmh3.hash(text, 0, signed=False)``). The salt is
the rollout's own (its id by default), so the same consumers are not always first in line.

Worked example (these are test vectors in tests/test_cohort.py and docs/rollouts.md)::

    salt "r-demo", client "api-1"  ->  murmur3 2304920181  ->  bucket  181
    salt "r-demo", client "api-2"  ->  murmur3 3530432710  ->  bucket 2710
        10 % step: threshold 1000: api-1 (181) is a member, api-2 (2710) is not
        50 % step: threshold 5000: both are members (and at every wider step)

Eligibility comes first: an optional selector over the consumer's labels (Kubernetes label
selector syntax, ``region in (eu,us),tier!=critical``) and an optional explicit list of client
ids (canaries: members from the first step, whatever their bucket).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import mmh3

from .errors import InvalidRequest

__all__ = ["BUCKETS", "Cohort", "Requirement", "Selector", "bucket", "parse_labels",
           "threshold"]

BUCKETS = 10_000
_LABEL_KEY = re.compile(r"[A-Za-z0-9]([A-Za-z0-9._/-]{0,61}[A-Za-z0-9])?")
_LABEL_VALUE = re.compile(r"([A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?)?")
_CLIENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@/-]{0,127}")
# key, then one of: = == != (value) | in/notin (list); or !key; or a bare key
_REQUIREMENT = re.compile(
    r"\s*(?:(?P<not>!)\s*(?P<nkey>[^\s=!(),]+)"
    r"|(?P<key>[^\s=!(),]+)\s*(?:(?P<op>==|!=|=)\s*(?P<value>[^\s,()]*)"
    r"|\s+(?P<setop>[A-Za-z]+)\s*\((?P<values>[^()]*)\))?)\s*$")


def bucket(salt: str, client_id: str) -> int:
    """The consumer's fixed bucket in ``[0, 10000)`` for rollouts salted with ``salt``."""
    return int(mmh3.hash(f"{salt}:{client_id}".encode(), 0, signed=False)) % BUCKETS


def threshold(percent: float) -> int:
    """How many buckets a step of ``percent`` takes (buckets below it are in)."""
    return round(percent * 100)


def check_client_id(client_id: object) -> str:
    if not isinstance(client_id, str) or not _CLIENT_ID.fullmatch(client_id):
        raise InvalidRequest(
            f"client id {client_id!r} is not valid: use 1-128 letters, digits and . _ : @ / -, "
            "starting with a letter or digit", client_id=str(client_id))
    return client_id


def _check_label(key: str, value: str | None, where: str) -> None:
    if not _LABEL_KEY.fullmatch(key):
        raise InvalidRequest(f"{where}: label key {key!r} is not valid (letters, digits and "
                             ". _ / -, at most 63, starting and ending with a letter or digit)",
                             label=key)
    if value is not None and not _LABEL_VALUE.fullmatch(value):
        raise InvalidRequest(f"{where}: label value {value!r} of {key!r} is not valid (letters,"
                             " digits and . _ -, at most 63)", label=key, value=value)


def parse_labels(labels: Mapping[str, object] | str | None) -> dict[str, str]:
    """Labels as a dict, from a mapping or from ``"region=eu,tier=web"``; checked."""
    if labels is None:
        return {}
    if isinstance(labels, str):
        pairs: dict[str, object] = {}
        for part in filter(None, (p.strip() for p in labels.split(","))):
            key, sep, value = part.partition("=")
            if not sep:
                raise InvalidRequest(f"labels: {part!r} is not key=value", labels=labels)
            pairs[key.strip()] = value.strip()
        labels = pairs
    if not isinstance(labels, Mapping):
        raise InvalidRequest("labels must be an object of strings", labels=repr(labels))
    out: dict[str, str] = {}
    for name, text in labels.items():
        if not isinstance(name, str) or not isinstance(text, str):
            raise InvalidRequest(f"labels: {name!r}={text!r} must be strings")
        _check_label(name, text, "labels")
        out[name] = text
    return dict(sorted(out.items()))


def _split_top_level(text: str) -> list[str]:
    """Split at commas that are not inside parentheses."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


@dataclass(frozen=True, slots=True)
class Requirement:
    """One clause of a selector: ``key OP values`` with OP in = != in notin exists !exists."""

    key: str
    op: str
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        value = labels.get(self.key)
        if self.op == "exists":
            return value is not None
        if self.op == "!exists":
            return value is None
        if self.op in ("=", "in"):
            return value in self.values
        return value not in self.values  # != and notin also match a missing label

    def __str__(self) -> str:
        if self.op == "exists":
            return self.key
        if self.op == "!exists":
            return f"!{self.key}"
        if self.op in ("=", "!="):
            return f"{self.key}{self.op}{self.values[0]}"
        return f"{self.key} {self.op} ({','.join(self.values)})"


@dataclass(frozen=True, slots=True)
class Selector:
    """All requirements must hold (comma means AND), as in Kubernetes label selectors."""

    requirements: tuple[Requirement, ...]

    @classmethod
    def parse(cls, text: str) -> Selector:
        """``"region in (eu,us),tier!=critical"`` -> Selector; InvalidRequest naming the part."""
        if not isinstance(text, str) or not text.strip():
            raise InvalidRequest("selector is empty; leave it out to select every consumer")
        requirements = []
        for part in _split_top_level(text):
            requirements.append(_requirement(part, text))
        return cls(tuple(requirements))

    @property
    def keys(self) -> list[str]:
        return sorted({r.key for r in self.requirements})

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(r.matches(labels) for r in self.requirements)

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


def _requirement(part: str, text: str) -> Requirement:
    match = _REQUIREMENT.fullmatch(part)
    where = f"selector {text!r}"
    if not part.strip():
        raise InvalidRequest(f"{where}: an empty clause (two commas, or a trailing comma)",
                             selector=text)
    if match is None:
        raise InvalidRequest(f"{where}: cannot read {part.strip()!r}; write key=value, "
                             "key!=value, key in (a,b), key notin (a,b), key or !key",
                             selector=text, clause=part.strip())
    if match["nkey"]:
        _check_label(match["nkey"], None, where)
        return Requirement(match["nkey"], "!exists")
    key = match["key"]
    _check_label(key, None, where)
    if match["op"]:
        value = match["value"]
        _check_label(key, value, where)
        return Requirement(key, "=" if match["op"] in ("=", "==") else "!=", (value,))
    if match["setop"]:
        op = match["setop"]
        if op not in ("in", "notin"):
            raise InvalidRequest(f"{where}: unknown operator {op!r} in {part.strip()!r}; "
                                 "use =, ==, !=, in, notin, or !key", selector=text,
                                 operator=op)
        values = tuple(v.strip() for v in match["values"].split(","))
        if not any(values):
            raise InvalidRequest(f"{where}: {op} needs at least one value", selector=text)
        for value in values:
            _check_label(key, value, where)
        return Requirement(key, op, tuple(sorted(set(values))))
    return Requirement(key, "exists")


@dataclass(frozen=True, slots=True)
class Cohort:
    """Who a rollout reaches: eligible consumers whose bucket is below the step's threshold,
    plus any explicitly listed clients from the first step on."""

    salt: str
    selector: Selector | None = None
    clients: frozenset[str] = frozenset()

    @classmethod
    def build(cls, salt: str, selector: str | None = None,
              clients: Iterable[str] | None = None) -> Cohort:
        parsed = Selector.parse(selector) if selector is not None else None
        listed = frozenset(check_client_id(c) for c in clients or ())
        return cls(salt, parsed, listed)

    def eligible(self, labels: Mapping[str, str]) -> bool:
        return self.selector is None or self.selector.matches(labels)

    def member(self, client_id: str | None, labels: Mapping[str, str], percent: float) -> bool:
        """Whether this consumer resolves the staged values at a step of ``percent``."""
        if client_id is None:
            return False  # anonymous readers always see committed values
        if client_id in self.clients:
            return True
        return self.eligible(labels) and bucket(self.salt, client_id) < threshold(percent)
