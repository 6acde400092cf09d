"""JSON Schema + CEL rules -> :class:`~confhub.model.ValidationReport`.

A namespace's schema document is ``{"schema": <JSON Schema 2020-12>, "rules": [...],
"key_pattern": <glob or null>}``. :func:`compile_document` checks it once (meta-schema, local
``$ref`` only, CEL rules compile and use only ``self``, size limits) and returns a
:class:`CompiledSchema`, cached by the SHA-256 of the document's canonical text, so a write never
recompiles: the hub finds the stored document, and the digest finds the compiled form.

The JSON Schema engine is ``jsonschema_rs`` (Rust): about 2 µs for a 30-field document where the
pure-Python ``jsonschema`` takes ~300 µs, and its regex engine has a backtracking limit, so a
pattern like ``^(a+)+$`` cannot hang a worker (see docs/decisions.md). CEL is the
``common-expression-language`` package (``import cel``). A rule passes when it evaluates to
``true``; ``false`` reports its message; an evaluation error (a missing field without ``has()``,
mixing int and double) reports the message with the error, because a rule that cannot be checked
has not been satisfied (Kubernetes does the same).

Worked example::

    doc = {"schema": {"type": "object", "properties": {"depth": {"maximum": 64}}},
           "rules": [{"expr": "self.size >= self.depth * 32", "message": "size too small",
                      "severity": "error"}]}
    compile_document(doc).validate({"depth": 4, "size": 64}).errors
    -> (ValidationIssue(path="/size", message="/size: size too small (value 64; rule:
        self.size >= self.depth * 32)", rule="size >= depth*32"...),)
"""

from __future__ import annotations

import fnmatch
import functools
import hashlib
import importlib
import re
import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import jsonschema_rs

from .annotations import annotations_of, escape, resolve_pointer
from .errors import InvalidRequest, TooLarge, ValidationFailed
from .layering import merge_patch
from .model import BASE_ENV, ValidationIssue, ValidationReport, encode_value, thaw

__all__ = [
    "MAX_RULES",
    "MAX_SCHEMA_BYTES",
    "CompiledSchema",
    "Rule",
    "annotations_of",
    "as_model",
    "check_layers",
    "compile_document",
    "document_text",
    "make_document",
    "refuse",
]

M = TypeVar("M")
MAX_SCHEMA_BYTES = 256 * 1024
MAX_RULES = 100
MAX_EXPR_CHARS = 4096
MAX_MESSAGE_CHARS = 500
_CACHE_SIZE = 512

_POSITION = re.compile(r"<input>:(\d+):(\d+): (.*?)(?:\n|$)")
_SELF = re.compile(r"\bself\b")
_SELF_DOT = re.compile(r"\bself\s*\.\s*([A-Za-z_][A-Za-z0-9_]*)")
_SELF_FIELD = re.compile(r"^\s*!?\s*(?:has\()?\s*self\.([A-Za-z_][A-Za-z0-9_]*)")


@dataclass(frozen=True, slots=True)
class Rule:
    """One CEL rule: ``expr`` must evaluate to true for ``self`` (the value)."""

    expr: str
    message: str
    severity: Literal["error", "warning"] = "error"
    name: str | None = None
    path: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"expr": self.expr, "message": self.message,
                               "severity": self.severity}
        if self.name is not None:
            out["name"] = self.name
        if self.path is not None:
            out["path"] = self.path
        return out


def make_document(schema: Any, rules: Any = None, key_pattern: str | None = None
                  ) -> dict[str, Any]:
    """The canonical stored form of a schema, its rules and key pattern (checked, not
    compiled: :func:`compile_document` does that)."""
    if not isinstance(schema, Mapping | bool):
        raise InvalidRequest("a schema is a JSON Schema object (or true/false)")
    parsed = [_parse_rule(item, i) for i, item in enumerate(rules or [])]
    if len(parsed) > MAX_RULES:
        raise InvalidRequest(f"at most {MAX_RULES} rules per schema, not {len(parsed)}",
                             limit=MAX_RULES)
    if key_pattern is not None and (not isinstance(key_pattern, str) or not key_pattern
                                    or len(key_pattern) > 256):
        raise InvalidRequest("key_pattern must be a non-empty glob of at most 256 characters, "
                             f"not {key_pattern!r}")
    return {"schema": thaw(schema), "rules": [r.to_dict() for r in parsed],
            "key_pattern": None if key_pattern in (None, "*") else key_pattern}


def _parse_rule(item: Any, index: int) -> Rule:
    where = f"rules[{index}]"
    if not isinstance(item, Mapping):
        raise InvalidRequest(f"{where} must be an object with expr, message and severity")
    unknown = set(item) - {"expr", "message", "severity", "name", "path"}
    if unknown:
        raise InvalidRequest(f"{where} has unknown fields {sorted(unknown)}; a rule has expr, "
                             "message, severity, and optionally name and path")
    expr, message = item.get("expr"), item.get("message")
    severity = item.get("severity", "error")
    if not isinstance(expr, str) or not expr.strip():
        raise InvalidRequest(f"{where}.expr must be a non-empty CEL expression")
    if len(expr) > MAX_EXPR_CHARS:
        raise InvalidRequest(f"{where}.expr is {len(expr)} characters; the limit is "
                             f"{MAX_EXPR_CHARS}", limit=MAX_EXPR_CHARS)
    if message is None:
        message = f"rule {expr!r} failed"
    if not isinstance(message, str):
        raise InvalidRequest(f"{where}.message must be a string")
    if severity not in ("error", "warning"):
        raise InvalidRequest(f"{where}.severity must be 'error' or 'warning', not {severity!r}")
    name, path = item.get("name"), item.get("path")
    if name is not None and not isinstance(name, str):
        raise InvalidRequest(f"{where}.name must be a string")
    if path is not None and (not isinstance(path, str) or (path and not path.startswith("/"))):
        raise InvalidRequest(f"{where}.path must be a JSON pointer like '/field'")
    return Rule(expr=expr, message=message[:MAX_MESSAGE_CHARS], severity=severity, name=name,
                path=path)


@functools.cache
def _cel() -> Any:
    """The CEL package, imported on first use: its ``__init__`` also imports its command
    line (prompt_toolkit), about 0.2 s of every CLI command and server start otherwise."""
    return importlib.import_module("cel")


def _compile_rule(rule: Rule, index: int) -> Any:
    """The compiled CEL program; InvalidRequest naming the rule, the error and its position."""
    try:
        program = _cel().compile(rule.expr)
    except (ValueError, TypeError, RuntimeError) as exc:
        text = str(exc)
        found = _POSITION.search(text)
        details: dict[str, Any] = {"rule": index, "expr": rule.expr}
        if found:
            details.update(line=int(found.group(1)), column=int(found.group(2)))
            what = f"{found.group(3)} at line {found.group(1)}, column {found.group(2)}"
        else:
            what = text
        pointer = text.rsplit("\n", 2)[-2:] if "\n" in text else []
        raise InvalidRequest(f"rules[{index}] ({rule.name or rule.expr!r}) does not compile: "
                             f"{what}" + ("\n" + "\n".join(pointer) if pointer else ""),
                             **details) from None
    names = set(program.variables())
    if names - {"self"}:
        raise InvalidRequest(
            f"rules[{index}] uses unknown variable(s) {sorted(names - {'self'})}: a rule sees "
            "only `self`, the value being validated", rule=index, expr=rule.expr)
    return program


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, Mapping):
        for name, sub in node.items():
            if name in ("$ref", "$dynamicRef") and isinstance(sub, str):
                yield sub
            elif name not in ("const", "enum", "default", "examples"):
                yield from _refs(sub)
    elif isinstance(node, list):
        for sub in node:
            yield from _refs(sub)


# --------------------------------------------------------------------------- compiled form


class CompiledSchema:
    """A checked schema document, ready to validate values (thread-safe, immutable)."""

    def __init__(self, document: Mapping[str, Any], digest: str) -> None:
        self.digest = digest
        self.schema: Any = document["schema"]
        self.rules = tuple(_parse_rule(r, i) for i, r in enumerate(document.get("rules", [])))
        self.key_pattern: str | None = document.get("key_pattern")
        for ref in _refs(self.schema):
            if not ref.startswith("#"):
                raise InvalidRequest(
                    f"$ref {ref!r} is not local: schemas may only refer inside themselves "
                    "('#/$defs/...'); nothing is fetched at run time", ref=ref)
        try:
            self._validator = jsonschema_rs.Draft202012Validator(
                self.schema, validate_formats=True, offline=True)
        except jsonschema_rs.ValidationError as exc:
            first = str(exc).split("\n", 1)[0]
            raise InvalidRequest(f"not a valid JSON Schema (draft 2020-12): {first}") from None
        except (ValueError, TypeError, OverflowError) as exc:
            raise InvalidRequest(f"not a usable JSON Schema: {exc}") from None
        self._programs = tuple(_compile_rule(rule, i) for i, rule in enumerate(self.rules))
        self._fields = _fields_read(self.rules)
        self.annotations = annotations_of(self.schema)

    def applies_to(self, key: str) -> bool:
        return self.key_pattern is None or fnmatch.fnmatchcase(key, self.key_pattern)

    def validate(self, value: Any) -> ValidationReport:
        """Check ``value`` against the schema, then the rules; never raises for a value."""
        errors: list[ValidationIssue] = []
        warnings: list[ValidationIssue] = []
        try:
            if not self._validator.is_valid(value):
                errors.extend(self._schema_issues(value))
        except (ValueError, TypeError, OverflowError) as exc:
            errors.append(ValidationIssue(path="", message=f"value cannot be checked: {exc}",
                                          rule="schema"))
        if self._programs:
            if self._fields is not None and isinstance(value, Mapping):
                # Converting the value for CEL is most of a rule check's cost; rules that
                # only ever read self.<field> see exactly the same with just those fields.
                context = _context({k: value[k] for k in self._fields if k in value})
            else:
                context = _context(value)
            for rule, program in zip(self.rules, self._programs, strict=True):
                issue = _check_rule(rule, program, context, value)
                if issue is not None:
                    (errors if rule.severity == "error" else warnings).append(issue)
        return ValidationReport(errors=tuple(errors), warnings=tuple(warnings))

    def _schema_issues(self, value: Any) -> Iterator[ValidationIssue]:
        for error in self._validator.iter_errors(value):
            path = "".join(f"/{escape(str(p))}" for p in error.instance_path)
            rule = "schema:/" + "/".join(str(p) for p in error.schema_path)
            kind = type(error.kind).__name__
            if kind == "AdditionalProperties":
                known = sorted((self._node(error.schema_path[:-1]) or {}).get("properties")
                               or {})
                for name in getattr(error.kind, "unexpected", ()):
                    yield ValidationIssue(
                        path=f"{path}/{escape(name)}", rule=rule,
                        message=_clip(f"{path}/{escape(name)}: unknown field {name!r} is not "
                                      "allowed" + (f" (known fields: {', '.join(known)})"
                                                   if known else "")))
                continue
            if kind == "BacktrackLimitExceeded":
                message = "pattern is too complex to check against this value"
            else:
                message = error.message
            yield ValidationIssue(path=path, rule=rule,
                                  message=_clip(f"{path or '/'}: {message}"))

    def _node(self, schema_path: Any) -> Any:
        node = self.schema
        for part in schema_path:
            if isinstance(node, Mapping):
                node = node.get(str(part))
            elif isinstance(node, list) and isinstance(part, int) and part < len(node):
                node = node[part]
            else:
                return None
        return node if isinstance(node, Mapping) else None


def _fields_read(rules: tuple[Rule, ...]) -> frozenset[str] | None:
    """The top-level fields the rules read, when every use of ``self`` is ``self.<field>``;
    None when some rule uses ``self`` otherwise (``size(self)``, ``self['x']``, a string
    holding the word), and so must see the whole value."""
    fields: set[str] = set()
    for rule in rules:
        found = _SELF_DOT.findall(rule.expr)
        if len(found) != len(_SELF.findall(rule.expr)):
            return None
        fields.update(found)
    return frozenset(fields)


def _context(value: Any) -> Any:
    try:
        return _cel().Context({"self": value})
    except Exception:  # noqa: BLE001 - an unconvertible value: each rule reports it
        return None


def _check_rule(rule: Rule, program: Any, context: Any, value: Any) -> ValidationIssue | None:
    path = rule.path if rule.path is not None else _inferred_path(rule.expr)
    name = rule.name or rule.expr
    try:
        if context is None:
            raise ValueError("the value cannot be converted for CEL")
        result = program.execute(context)
    except BaseException as exc:  # noqa: BLE001 - PyO3 panics derive from BaseException
        if isinstance(exc, KeyboardInterrupt | SystemExit):
            raise
        why = _eval_error(exc)
        return ValidationIssue(path=path, rule=name, severity=rule.severity,
                               message=_clip(f"{path or '/'}: {rule.message} (rule could not "
                                             f"be evaluated: {why}; rule: {rule.expr})"))
    if result is True:
        return None
    shown = _shown(value, path)
    detail = f"value {shown}; " if shown is not None else ""
    if result is not False:
        detail += f"rule returned {result!r}, not a boolean; "
    return ValidationIssue(path=path, rule=name, severity=rule.severity,
                           message=_clip(f"{path or '/'}: {rule.message} ({detail}rule: "
                                         f"{rule.expr})"))


def _eval_error(exc: BaseException) -> str:
    if isinstance(exc, KeyError):
        return f"no field {exc.args[0]!r} (guard it with has())"
    text = str(exc).split("\n", 1)[0]
    return text[:200] or type(exc).__name__


def _inferred_path(expr: str) -> str:
    """A rule without ``path`` points at the first field it names (``self.x >= ...`` -> /x)."""
    found = _SELF_FIELD.match(expr)
    return f"/{found.group(1)}" if found else ""


def _shown(value: Any, path: str) -> str | None:
    node = resolve_pointer(value, path) if path else value
    if node is None and path:
        return "absent"
    text = encode_value(node, max_bytes=1 << 30) if node is not None else "null"
    return text if len(text) <= 80 else text[:77] + "..."


def _clip(text: str) -> str:
    return text if len(text) <= 2 * MAX_MESSAGE_CHARS else text[: 2 * MAX_MESSAGE_CHARS] + "…"


# --------------------------------------------------------------------------- env layers


def check_layers(compiled: CompiledSchema, layers: Mapping[str, Any], envs: Iterator[str] | Any,
                 namespace: str, key: str) -> tuple[list[ValidationIssue], list[ValidationIssue]]:
    """Validate the *resolved* value of ``namespace/key`` for each env in ``envs``.

    ``layers`` maps each env that has a live value to that value. The resolved value of env E
    is ``base`` merge-patched with E's layer (DESIGN.md layering), so a write to ``base``
    changes, and must re-validate, every env that overlays the key; an env without its own
    layer resolves to ``base``, which is checked as ``base``.
    """
    errors: list[ValidationIssue] = []
    warnings: list[ValidationIssue] = []
    base = layers.get(BASE_ENV)
    for env in sorted(set(envs)):
        if env not in layers:
            continue
        value = layers[env] if env == BASE_ENV else merge_patch(base, layers[env])
        report = compiled.validate(value)
        for issue in report.errors:
            errors.append(_tagged(issue, namespace, key, env))
        for issue in report.warnings:
            warnings.append(_tagged(issue, namespace, key, env))
    return errors, warnings


def _tagged(issue: ValidationIssue, namespace: str, key: str, env: str) -> ValidationIssue:
    where = f"{namespace}/{key}" + ("" if env == BASE_ENV else f" (env {env})")
    return ValidationIssue(path=issue.path, message=f"{where}: {issue.message}",
                           rule=issue.rule, severity=issue.severity, namespace=namespace,
                           key=key, env=env)


def refuse(errors: list[ValidationIssue], warnings: list[ValidationIssue], what: str, *,
           write: bool = True) -> ValidationFailed:
    """The ValidationFailed for a refused write: a readable message, the issues in details."""
    shown = "; ".join(e.message for e in errors[:3])
    more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
    tail = "; nothing was written" if write else ""
    return ValidationFailed(f"{what}: {shown}{more}{tail}",
                            errors=[e.to_dict() for e in errors],
                            warnings=[w.to_dict() for w in warnings])


def as_model(model: type[M], value: Any, where: str) -> M:
    """``model.model_validate(value)``; a mismatch is ValidationFailed with one issue per
    pydantic error (so typed reads fail like writes do)."""
    validate = getattr(model, "model_validate", None)
    if validate is None:
        raise InvalidRequest(f"{model!r} is not a pydantic model class")
    from pydantic import ValidationError

    try:
        return validate(value)  # type: ignore[no-any-return]
    except ValidationError as exc:
        issues = [ValidationIssue(
            path="".join(f"/{p}" for p in err["loc"]),
            message=f"{where}: {'/'.join(str(p) for p in err['loc']) or '/'}: {err['msg']}",
            rule=f"model:{model.__name__}") for err in exc.errors()]
        raise refuse(issues, [], f"value of {where} does not fit {model.__name__}",
                     write=False) from None


# --------------------------------------------------------------------------- cache

_cache: OrderedDict[str, CompiledSchema] = OrderedDict()
_cache_lock = threading.Lock()


def document_text(document: Mapping[str, Any]) -> str:
    """The canonical stored text of a document (TooLarge past MAX_SCHEMA_BYTES)."""
    try:
        return encode_value(dict(document), max_bytes=MAX_SCHEMA_BYTES, where="schema")
    except TooLarge as exc:
        raise TooLarge(f"schema document is too large: {exc.message}", **exc.details) from None


def compile_document(text: str) -> CompiledSchema:
    """The compiled form of a stored document's canonical text, cached by its SHA-256."""
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    with _cache_lock:
        found = _cache.get(digest)
        if found is not None:
            _cache.move_to_end(digest)
            return found
    import json

    compiled = CompiledSchema(json.loads(text), digest)
    with _cache_lock:
        _cache[digest] = compiled
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return compiled
