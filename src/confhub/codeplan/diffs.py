"""What changes inside a document: field-level diffs, shown by path, with secrets masked.

A plan never says "replace the whole document" when one field moved. Worked example::

    live     {"max_tokens": 8192, "retry": {"tries": 3}, "tags": ["a", "b"], "beta": true}
    desired  {"max_tokens": 4096, "retry": {"tries": 3}, "tags": ["a"], "region": "eu"}
    changes  replace max_tokens   8192 -> 4096
             remove  tags[1]      "b"
             remove  beta         true
             add     region       "eu"

Objects are compared key by key and lists index by index (a shorter list removes its tail);
anything else that differs is one ``replace``. ``1`` and ``1.0`` are the same JSON number, but
``1`` and ``true`` are not (Python says they are equal; JSON does not).

Secrets: the store shows each secret field as ``"***"``. A file that keeps ``"***"`` there
means "leave the secret as it is", so that field is no change; any other value is a change
shown as ``***`` -> ``***``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ..fieldpath import Segment, format_path, to_pointer
from ..model import ValidationReport

__all__ = [
    "MASK",
    "FieldChange",
    "KeyChange",
    "count_fields",
    "field_changes",
    "json_type",
    "same_json",
    "secret_match",
]

MASK = "***"
Action = Literal["create", "update", "delete"]


@dataclass(frozen=True)
class FieldChange:
    """One field that differs: ``op`` is add, remove or replace; values masked when secret."""

    path: tuple[Segment, ...]
    op: Literal["add", "remove", "replace"]
    old: Any = None
    new: Any = None
    secret: bool = False

    @property
    def shown_path(self) -> str:
        return format_path(self.path) or "(whole value)"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.shown_path, "pointer": to_pointer(self.path),
                               "op": self.op}
        if self.op != "add":
            out["old"] = MASK if self.secret else self.old
        if self.op != "remove":
            out["new"] = MASK if self.secret else self.new
        if self.secret:
            out["secret"] = True
        return out


@dataclass(frozen=True)
class KeyChange:
    """What the plan does to one key in one env layer, and how risky that is."""

    env: str
    namespace: str
    key: str
    action: Action
    fields: tuple[FieldChange, ...] = ()
    file: str | None = None
    expected_version: int = 0
    desired: Any = None  # the value to write (None for a delete)
    live: Any = None  # the store's value, secrets masked (None for a create)
    secret: bool = False  # the key holds or gets a secret
    secret_paths: tuple[str, ...] = ()  # JSON pointers of secret fields ("" = whole value)
    restart_paths: tuple[str, ...] = ()  # x-restart-required pointers touched
    report: ValidationReport = field(default_factory=ValidationReport)
    risk: str = "LOW"
    reasons: tuple[str, ...] = ()

    @property
    def address(self) -> tuple[str, str, str]:
        return (self.env, self.namespace, self.key)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "env": self.env, "namespace": self.namespace, "key": self.key,
            "action": self.action, "file": self.file, "version": self.expected_version,
            "fields": [f.to_dict() for f in self.fields],
            "valid": self.report.valid,
            "errors": [e.to_dict() for e in self.report.errors],
            "warnings": [w.to_dict() for w in self.report.warnings],
            "risk": self.risk, "reasons": list(self.reasons),
        }
        if self.secret:
            out["secret"] = True
        return out


def json_type(value: Any) -> str:
    """The JSON type name of a value (bool is not a number here)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "object"
    return "array"


def same_json(a: Any, b: Any) -> bool:
    """JSON equality: types must match (``True != 1``), numbers by value (``1 == 1.0``)."""
    kind = json_type(a)
    if kind != json_type(b):
        return False
    if kind == "object":
        return a.keys() == b.keys() and all(same_json(a[k], b[k]) for k in a)
    if kind == "array":
        return len(a) == len(b) and all(same_json(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def secret_match(pointers: Sequence[str], path: Sequence[Segment]) -> bool:
    """Does the field at ``path`` hold a secret: is it at, under or above one of the secret
    ``pointers`` (``*`` matches any one segment, ``""`` is the whole value)?"""
    parts = [str(p) for p in path]
    for pointer in pointers:
        wanted = [] if pointer == "" else [
            p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:]]
        if all(w == "*" or w == p for w, p in zip(wanted, parts, strict=False)):
            return True
    return False


def field_changes(live: Any, desired: Any, secret_pointers: Sequence[str] = ()
                  ) -> list[FieldChange]:
    """The field changes turning ``live`` into ``desired`` (see the module's example)."""
    out: list[FieldChange] = []
    _walk(live, desired, (), tuple(secret_pointers), out)
    return out


def _walk(old: Any, new: Any, path: tuple[Segment, ...], secrets: tuple[str, ...],
          out: list[FieldChange]) -> None:
    is_secret = secret_match(secrets, path)
    if is_secret and old == MASK and new == MASK:
        return  # "***" in the file keeps the stored secret
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        for name in old:
            if name not in new:
                out.append(FieldChange(path + (name,), "remove", old=old[name],
                                       secret=secret_match(secrets, path + (name,))))
        for name, item in new.items():
            if name in old:
                _walk(old[name], item, path + (name,), secrets, out)
            else:
                out.append(FieldChange(path + (name,), "add", new=item,
                                       secret=secret_match(secrets, path + (name,))))
        return
    if isinstance(old, list) and isinstance(new, list):
        for index in range(min(len(old), len(new))):
            _walk(old[index], new[index], path + (index,), secrets, out)
        for index in range(len(new), len(old)):
            out.append(FieldChange(path + (index,), "remove", old=old[index],
                                   secret=is_secret))
        for index in range(len(old), len(new)):
            out.append(FieldChange(path + (index,), "add", new=new[index], secret=is_secret))
        return
    if not same_json(old, new):
        out.append(FieldChange(path, "replace", old=old, new=new, secret=is_secret))


def count_fields(value: Any) -> int:
    """Leaf fields of a document (an empty object or list counts as one field)."""
    if isinstance(value, Mapping):
        return sum(count_fields(v) for v in value.values()) or 1
    if isinstance(value, list):
        return sum(count_fields(v) for v in value) or 1
    return 1
