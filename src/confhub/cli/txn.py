"""``txn``: apply a batch of puts, patches and deletes atomically, as one revision.

The ops document has the shape of the HTTP ``POST /v1/tenants/{t}/txn`` body, so one file works
with ``curl`` and with the CLI::

    {"reason": "tune routing",
     "ops": [{"op": "put", "namespace": "routing", "key": "tiers", "value": {"fast": "haiku"}},
             {"op": "patch", "namespace": "models", "key": "opus", "value": {"temperature": 0.2}},
             {"op": "delete", "namespace": "routing", "key": "old", "expected_version": 3}]}

A bare list of ops is accepted too. The whole document's shape is checked before the transaction
starts, so a typo in op 40 is a usage error naming op 40.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import typer

from ..errors import InvalidRequest
from .common import (
    AuthorOpt,
    EnvOpt,
    MetadataOpt,
    ReasonOpt,
    WriteMeta,
    session,
    target_options,
)
from .inputs import load_document
from .output import Output, marked, preview

__all__ = ["Op", "parse_ops", "register"]

_KINDS = {"put": "put", "set": "put", "patch": "patch", "delete": "delete"}


@dataclass(frozen=True)
class Op:
    """One checked operation of a transaction."""

    op: str
    namespace: str
    key: str
    env: str
    value: Any = None
    expected_version: int | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"op": self.op, "namespace": self.namespace, "key": self.key,
                                "env": self.env}
        if self.op != "delete":
            data["value"] = self.value
        if self.expected_version is not None:
            data["expected_version"] = self.expected_version
        return data


def parse_ops(document: Any, default_env: str) -> tuple[list[Op], dict[str, Any]]:
    """Check an ops document; return the ops and the document's own options (reason, dry_run)."""
    options: dict[str, Any] = {}
    if isinstance(document, dict):
        options = {k: v for k, v in document.items() if k != "ops"}
        unknown = set(options) - {"reason", "dry_run", "author", "metadata"}
        if unknown:
            raise InvalidRequest("unknown field(s) in the ops document: "
                                 + ", ".join(sorted(unknown)))
        document = document.get("ops")
    if not isinstance(document, list) or not document:
        raise InvalidRequest('the ops document must be a non-empty list of ops or {"ops": [...]}')
    ops = []
    for index, raw in enumerate(document):
        where = f"op {index + 1}"
        if not isinstance(raw, dict):
            raise InvalidRequest(f"{where} is not an object")
        kind = _KINDS.get(str(raw.get("op", "")))
        if kind is None:
            raise InvalidRequest(
                f"{where}: 'op' must be put, patch or delete, not {raw.get('op')!r}")
        namespace: Any
        key: Any
        if "address" in raw and "namespace" not in raw:
            namespace, _, key = str(raw["address"]).partition("/")
        else:
            namespace, key = raw.get("namespace"), raw.get("key")
        if not isinstance(namespace, str) or not isinstance(key, str) or not namespace or not key:
            raise InvalidRequest(f"{where}: 'namespace' and 'key' are required strings")
        if kind != "delete" and "value" not in raw:
            raise InvalidRequest(f"{where}: a {kind} needs a 'value'")
        expected = raw.get("expected_version")
        if expected is not None and (not isinstance(expected, int) or isinstance(expected, bool)
                                     or expected < 0):
            raise InvalidRequest(f"{where}: 'expected_version' must be a whole number >= 0")
        unknown = set(raw) - {"op", "namespace", "key", "address", "env", "value",
                              "expected_version"}
        if unknown:
            raise InvalidRequest(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
        ops.append(Op(kind, namespace, key, str(raw.get("env") or default_env), raw.get("value"),
                      expected))
    return ops, options


def register(app: typer.Typer) -> None:
    app.command("txn")(txn)


@target_options
def txn(
    cmd: typer.Context,
    source: Annotated[str, typer.Argument(metavar="FILE", show_default=False,
                                          help="JSON or YAML ops document; '-' reads stdin.")],
    env: EnvOpt = "base",
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Run every check and show the changes, commit nothing.")] = False,
    reason: ReasonOpt = None,
    author: AuthorOpt = None,
    metadata: MetadataOpt = None,
) -> None:
    """Apply several puts, patches and deletes atomically: all commit, or none (one revision).

    --env is the layer for ops that name none; --reason overrides the document's reason.

    [b]Examples[/b]

      $ confhub txn ops.json --reason "tune routing"
      $ confhub txn ops.yaml --dry-run
      $ echo '[{"op": "delete", "namespace": "routing", "key": "old"}]' | confhub txn -

    [b]Ops file[/b]

      {"reason": "tune routing", "ops": [
        {"op": "put", "namespace": "routing", "key": "tiers", "value": {"fast": "haiku"}},
        {"op": "patch", "namespace": "models", "key": "opus", "value": {"temperature": 0.2}},
        {"op": "delete", "namespace": "routing", "key": "old", "expected_version": 3}]}
    """
    with session(cmd) as ctx:
        ops, options = parse_ops(load_document(source), env)
        document_meta = options.get("metadata") or {}
        if not isinstance(document_meta, dict):
            raise InvalidRequest("'metadata' in the ops document must be an object")
        meta = WriteMeta.parse(reason or options.get("reason"), author or options.get("author"),
                               metadata)
        all_meta = {**document_meta, **meta.metadata}
        dry = bool(dry_run or options.get("dry_run"))
        tx = ctx.tenant.transaction(reason=meta.reason, author=meta.author, metadata=all_meta,
                                    dry_run=dry)
        with tx:
            for op in ops:
                _add(tx, op)
        result: dict[str, Any] = {"revision": tx.revision,
                                  "changes": [c.to_dict() for c in tx.changes]}
        title = ("dry run: would commit" if dry else "committed") + (
            f" as revision {tx.revision}" if tx.revision is not None else "")
        ctx.out.result(marked(result, dry), lambda: _changes_table(ctx.out, tx.changes, title))


def _add(tx: Any, op: Op) -> None:
    """Add one op to a ``Tenant.transaction``; it commits when the ``with`` block ends."""
    if op.op == "put":
        tx.set(op.namespace, op.key, op.value, env=op.env, expected_version=op.expected_version)
    elif op.op == "patch":
        tx.patch(op.namespace, op.key, op.value, env=op.env,
                 expected_version=op.expected_version)
    else:
        tx.delete(op.namespace, op.key, env=op.env, expected_version=op.expected_version)


def _changes_table(out: Output, changes: list[Any], title: str) -> None:
    out.table(f"{len(changes)} change(s) {title}",
              ["op", "namespace/key", "env", "version", "value"],
              [(c.op, f"{c.namespace}/{c.key}", c.env, str(c.version),
                "(deleted)" if c.deleted else preview(c.value, 40)) for c in changes])
