"""``txn``: apply a batch of puts, patches and deletes atomically, as one revision.

The ops document has the shape of the HTTP ``POST /v1/tenants/{t}/txn`` body, so one file works
with ``curl`` and with the CLI::

    {"reason": "tune routing",
     "ops": [{"op": "put", "namespace": "routing", "key": "tiers", "value": {"fast": "haiku"}},
             {"op": "patch", "namespace": "models", "key": "opus", "value": {"temperature": 0.2}},
             {"op": "delete", "namespace": "routing", "key": "old", "expected_version": 3}]}

A bare list of ops is accepted too. The whole document is checked before anything is sent, so a
typo in op 40 is a usage error, not a half-built transaction (the hub would roll it back anyway).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import typer

from ..errors import InvalidRequest
from .common import (
    DEFAULT_DB,
    AuthorOpt,
    DbOpt,
    EnvOpt,
    JsonOpt,
    MetadataOpt,
    ReasonOpt,
    TenantOpt,
    TokenOpt,
    UrlOpt,
    WriteMeta,
    session,
)
from .inputs import load_document
from .output import Output, preview

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
            raise InvalidRequest(f"unknown field(s) in the ops document: {', '.join(sorted(unknown))}")
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
            raise InvalidRequest(f"{where}: 'op' must be put, patch or delete, not {raw.get('op')!r}")
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


def txn(
    source: Annotated[str, typer.Argument(metavar="FILE", show_default=False,
                                          help="JSON or YAML ops document; '-' reads stdin.")],
    env: EnvOpt = "base",
    dry_run: Annotated[bool, typer.Option("--dry-run",
                                          help="Check and show the ops, write nothing.")] = False,
    reason: ReasonOpt = None,
    author: AuthorOpt = None,
    metadata: MetadataOpt = None,
    tenant: TenantOpt = "default",
    json: JsonOpt = False,
    url: UrlOpt = None,
    token: TokenOpt = None,
    db: DbOpt = DEFAULT_DB,
) -> None:
    """Apply several puts, patches and deletes atomically: all commit, or none (one revision).

    --env is the layer for ops that name none; --reason overrides the document's reason.

    [b]Examples[/b]

      confhub txn ops.json --reason "tune routing"
      confhub txn ops.yaml --dry-run
      echo '[{"op": "delete", "namespace": "routing", "key": "old"}]' | confhub txn -

    [b]Ops file[/b]

      {"reason": "tune routing", "ops": [
        {"op": "put", "namespace": "routing", "key": "tiers", "value": {"fast": "haiku"}},
        {"op": "patch", "namespace": "models", "key": "opus", "value": {"temperature": 0.2}},
        {"op": "delete", "namespace": "routing", "key": "old", "expected_version": 3}]}
    """
    with session(url=url, token=token, db=db, tenant=tenant, json=json) as ctx:
        ops, options = parse_ops(load_document(source), env)
        document_meta = options.get("metadata") or {}
        if not isinstance(document_meta, dict):
            raise InvalidRequest("'metadata' in the ops document must be an object")
        meta = WriteMeta.parse(reason or options.get("reason"), author or options.get("author"),
                               metadata)
        all_meta = {**document_meta, **meta.metadata}
        if dry_run or options.get("dry_run"):
            report = {"dry_run": True, "ops": [op.to_dict() for op in ops]}
            ctx.out.result(report, lambda: _ops_table(ctx.out, ops, "dry run: would apply"))
            return
        revision = _apply(ctx.tenant, ops, reason=meta.reason, author=meta.author,
                          metadata=all_meta)
        result = {"revision": revision, "ops": [op.to_dict() for op in ops]}
        ctx.out.result(result, lambda: _ops_table(
            ctx.out, ops, f"committed as revision {revision}" if revision is not None
            else "committed"))


def _apply(cfg: Any, ops: list[Op], **meta: Any) -> int | None:
    """Run the ops in one ``Tenant.transaction``; return the committed revision if known."""
    with cfg.transaction(**meta) as tx:
        for op in ops:
            cas = {} if op.expected_version is None else {"expected_version": op.expected_version}
            if op.op == "put":
                tx.set(op.namespace, op.key, op.value, env=op.env, **cas)
            elif op.op == "patch":
                tx.patch(op.namespace, op.key, op.value, env=op.env, **cas)
            else:
                tx.delete(op.namespace, op.key, env=op.env, **cas)
    revision = getattr(tx, "revision", None)
    return int(revision) if revision is not None else None


def _ops_table(out: Output, ops: list[Op], title: str) -> None:
    out.table(f"{len(ops)} op(s) {title}", ["op", "namespace/key", "env", "expect", "value"],
              [(op.op, f"{op.namespace}/{op.key}", op.env,
                "" if op.expected_version is None else str(op.expected_version),
                "" if op.op == "delete" else preview(op.value, 40)) for op in ops])
