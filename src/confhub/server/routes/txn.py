"""``POST /v1/tenants/{t}/txn``: several writes committed as one revision, or none at all."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from ...errors import InvalidRequest
from ...model import BASE_ENV
from ..auth import require_namespaces
from ..body import json_body, read_model
from ..deps import author_of, call, hub_of, reason_of
from ..responses import json_response
from ..schemas import TxnIn, TxnOut, errors
from .configs import Name

router = APIRouter(tags=["configs"])

MAX_OPS = 10_000  # etcd allows 128 by default; a config-as-code apply of 1,000s of keys is one txn


@router.post("/v1/tenants/{tenant}/txn", response_model=None,
             responses={200: {"model": TxnOut}, **errors(404, 412, 413, 415, 422)},
             openapi_extra=json_body(TxnIn.model_json_schema()),
             summary="Atomic batch: all operations commit with one revision, or none")
async def transaction(request: Request, tenant: Name) -> Response:
    body = await read_model(request, TxnIn)
    if not body.ops:
        raise InvalidRequest("a transaction needs at least one op")
    if len(body.ops) > MAX_OPS:
        raise InvalidRequest(f"a transaction holds at most {MAX_OPS} ops", limit=MAX_OPS)
    for index, op in enumerate(body.ops):
        if op.op in ("put", "patch") and "value" not in op.model_fields_set:
            # A missing value is not null: storing null by accident loses the config.
            raise InvalidRequest(f"op {index} ({op.op} {op.namespace}/{op.key}) has no "
                                 '"value"; send "value": null to store null on purpose',
                                 op=index)
    require_namespaces(request, [op.namespace for op in body.ops])
    cfg = hub_of(request).tenant(tenant)
    result = await call(run_txn, cfg, body, reason_of(request, body.reason),
                        author_of(request, body.author))
    return json_response(result)


def run_txn(cfg: Any, body: TxnIn, reason: str | None, author: str | None) -> dict[str, Any]:
    """Build and commit the transaction in a worker thread."""
    tx = cfg.transaction(reason=reason, author=author, metadata=body.metadata,
                         dry_run=body.dry_run)
    for op in body.ops:
        env = op.env or BASE_ENV
        if op.op == "put":
            tx.set(op.namespace, op.key, op.value, env=env,
                   expected_version=op.expected_version)
        elif op.op == "patch":
            tx.patch(op.namespace, op.key, op.value, env=env,
                     expected_version=op.expected_version, json_patch=op.json_patch)
        elif op.op == "delete":
            tx.delete(op.namespace, op.key, env=env, expected_version=op.expected_version)
        else:
            if op.to_version is None:
                raise InvalidRequest("a rollback op needs to_version")
            tx.rollback(op.namespace, op.key, op.to_version, env=env,
                        expected_version=op.expected_version)
    changes = tx.commit()
    return {"revision": tx.revision, "dry_run": body.dry_run,
            "changes": [c.to_dict() for c in changes],
            "warnings": [w.to_dict() for w in tx.warnings]}
