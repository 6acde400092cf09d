"""Values as people read them in the UI: pretty text, highlighting, line diffs, merges.

Everything here is pure (no hub, no request), so the pages stay thin and this stays testable.
"""

from __future__ import annotations

import copy
import difflib
import json
import re
from dataclasses import dataclass, field
from typing import Any

import jsonpatch
import yaml
from markupsafe import Markup, escape

from ...errors import InvalidValue
from ...model import thaw

__all__ = [
    "FORMATS", "Diff", "DiffRow", "Merge", "highlight", "line_diff", "parse_value", "pretty",
    "redact", "three_way", "to_text",
]

FORMATS = ("json", "yaml")
MASK = "***"


def pretty(value: Any) -> str:
    return json.dumps(thaw(value), indent=2, ensure_ascii=False)


def to_text(value: Any, fmt: str = "json") -> str:
    """The text an editor starts from, in ``fmt`` (``json`` or ``yaml``)."""
    if fmt == "yaml":
        return str(yaml.safe_dump(thaw(value), sort_keys=False, allow_unicode=True,
                                  default_flow_style=False))
    return pretty(value)


def parse_value(text: str, fmt: str = "json") -> Any:
    """Parse what a user typed; InvalidValue naming the line and column when it is not valid."""
    if fmt not in FORMATS:
        raise InvalidValue(f"unknown format {fmt!r}; use json or yaml")
    if not text.strip():
        raise InvalidValue("the value is empty; type a JSON value such as {} or \"text\"")
    if fmt == "yaml":
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            problem = getattr(exc, "problem", None) or str(exc)
            raise InvalidValue(f"not valid YAML{where}: {problem}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidValue(f"not valid JSON at line {exc.lineno}, column {exc.colno}: "
                           f"{exc.msg}") from None


# --------------------------------------------------------------------------- highlighting

_TOKEN = re.compile(r'(?P<str>"(?:[^"\\]|\\.)*")(?P<colon>\s*:)?|(?P<num>-?\d+(?:\.\d+)?'
                    r'(?:[eE][+-]?\d+)?)|(?P<lit>\btrue\b|\bfalse\b|\bnull\b)')


def highlight(value: Any) -> Markup:
    """Pretty JSON as HTML with ``<span class="j-key|j-str|j-num|j-lit">`` around tokens.

    Works on the text ``pretty`` makes, so what is highlighted is exactly what is shown::

        {"a": 1}  ->  {<span class="j-key">"a"</span>: <span class="j-num">1</span>}
    """
    text = pretty(value)
    out: list[str] = []
    at = 0
    for match in _TOKEN.finditer(text):
        out.append(str(escape(text[at:match.start()])))
        if match.group("str") is not None:
            kind = "j-key" if match.group("colon") else "j-str"
            token = match.group("str")
            css = " j-secret" if token == f'"{MASK}"' else ""
            out.append(f'<span class="{kind}{css}">{escape(token)}</span>')
            if match.group("colon"):
                out.append(str(escape(match.group("colon"))))
        elif match.group("num") is not None:
            out.append(f'<span class="j-num">{escape(match.group("num"))}</span>')
        else:
            out.append(f'<span class="j-lit">{escape(match.group("lit"))}</span>')
        at = match.end()
    out.append(str(escape(text[at:])))
    return Markup("".join(out))


# --------------------------------------------------------------------------- diffs


@dataclass(frozen=True)
class DiffRow:
    """One row of a side-by-side diff: ``kind`` is same, del, add or change."""

    kind: str
    left_no: int | None
    left: str
    right_no: int | None
    right: str


@dataclass
class Diff:
    left_label: str
    right_label: str
    rows: list[DiffRow] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return any(row.kind != "same" for row in self.rows)

    @property
    def added(self) -> int:
        return sum(1 for r in self.rows if r.kind in ("add", "change") and r.right_no)

    @property
    def removed(self) -> int:
        return sum(1 for r in self.rows if r.kind in ("del", "change") and r.left_no)


def line_diff(left: Any, right: Any, left_label: str = "before",
              right_label: str = "after", *, context: int = 3) -> Diff:
    """A side-by-side line diff of two values' pretty JSON (``None`` for absent: no lines),
    keeping ``context`` unchanged lines around each change (``-1``: all of them)."""
    a = [] if left is None else pretty(left).splitlines()
    b = [] if right is None else pretty(right).splitlines()
    diff = Diff(left_label, right_label)
    matcher = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
    groups: list[list[Any]] = (
        [matcher.get_opcodes()] if context < 0
        else list(matcher.get_grouped_opcodes(context)))
    for number, group in enumerate(groups):
        if number:
            diff.rows.append(DiffRow("gap", None, "", None, ""))
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                for k in range(i2 - i1):
                    diff.rows.append(DiffRow("same", i1 + k + 1, a[i1 + k], j1 + k + 1,
                                             b[j1 + k]))
                continue
            for k in range(max(i2 - i1, j2 - j1)):
                li, rj = i1 + k, j1 + k
                has_left, has_right = li < i2, rj < j2
                kind = "change" if has_left and has_right else ("del" if has_left else "add")
                diff.rows.append(DiffRow(kind, li + 1 if has_left else None,
                                         a[li] if has_left else "",
                                         rj + 1 if has_right else None,
                                         b[rj] if has_right else ""))
    return diff


# --------------------------------------------------------------------------- secrets


def redact(value: Any, paths: list[str] | tuple[str, ...]) -> Any:
    """A copy of ``value`` with each JSON pointer in ``paths`` shown as ``***`` (``*`` in a
    pointer matches every item or map value), so diffs of secret fields show no content."""
    if not paths:
        return value
    out = copy.deepcopy(thaw(value))
    for path in paths:
        parts = [p.replace("~1", "/").replace("~0", "~") for p in path.split("/")[1:]]
        out = _mask(out, parts)
    return out


def _mask(node: Any, parts: list[str]) -> Any:
    if not parts:
        return MASK if node is not None else node
    head, rest = parts[0], parts[1:]
    if isinstance(node, dict):
        keys = list(node) if head == "*" else [head] if head in node else []
        for key in keys:
            node[key] = _mask(node[key], rest)
    elif isinstance(node, list):
        indexes = range(len(node)) if head == "*" else (
            [int(head)] if head.isdigit() and int(head) < len(node) else [])
        for index in indexes:
            node[index] = _mask(node[index], rest)
    return node


# --------------------------------------------------------------------------- three-way merge


@dataclass(frozen=True)
class Merge:
    """A three-way merge of an edit made on ``base`` with ``theirs`` (what is stored now)."""

    merged: Any  # None when the two edits touch the same place
    conflicts: tuple[str, ...]  # JSON pointers both sides changed differently


def three_way(base: Any, theirs: Any, yours: Any) -> Merge:
    """Replay your changes (base -> yours, as JSON Patch) onto theirs, unless both sides
    changed the same place differently.

    Worked example::

        base   {"a": 1, "b": 1}
        theirs {"a": 2, "b": 1}      they changed /a
        yours  {"a": 1, "b": 5}      you changed /b
        merged {"a": 2, "b": 5}      no path touched by both: merged

        yours  {"a": 3, "b": 1}      you changed /a too (to another value): conflict on /a
    """
    base, theirs, yours = thaw(base), thaw(theirs), thaw(yours)
    mine = jsonpatch.make_patch(base, yours).patch
    their_ops = jsonpatch.make_patch(base, theirs).patch
    their_paths = [op["path"] for op in their_ops]
    conflicts: list[str] = []
    for op in mine:
        for path in their_paths:
            if _overlaps(op["path"], path) and not _same_change(op, their_ops, path):
                conflicts.append(op["path"])
                break
    if conflicts:
        return Merge(None, tuple(dict.fromkeys(conflicts)))
    try:
        merged = jsonpatch.apply_patch(theirs, mine) if mine else theirs
    except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException):
        return Merge(None, tuple(op["path"] for op in mine))
    return Merge(merged, ())


def _overlaps(a: str, b: str) -> bool:
    return a == b or a.startswith(b + "/") or b.startswith(a + "/") or not a or not b


def _same_change(op: dict[str, Any], their_ops: list[dict[str, Any]], path: str) -> bool:
    """Both sides made the very same change at the very same path: not a conflict."""
    return any(o["path"] == op["path"] == path and o["op"] == op["op"]
               and o.get("value") == op.get("value") for o in their_ops)
