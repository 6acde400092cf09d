"""Paths DESIGN.md defines for later releases: audit, tokens.

They answer 501 with the usual error body (``code: not_implemented``) so clients get a clear
message now and the paths cannot be taken by anything else meanwhile.
"""

from __future__ import annotations

import re

from fastapi import APIRouter
from starlette.responses import Response

from ..errors import not_implemented
from ..schemas import errors

router = APIRouter(tags=["reserved"])

_RESERVED = {
    "/v1/tenants/{tenant}/audit": (["GET"], "audit log"),
    "/v1/tokens": (["GET", "POST"], "token management"),
    "/v1/tokens/{token_id}": (["GET", "DELETE"], "token management"),
}


def _make(feature: str):  # type: ignore[no-untyped-def]
    async def reserved() -> Response:
        return not_implemented(feature)

    return reserved


for _path, (_methods, _feature) in _RESERVED.items():
    for _method in _methods:
        _slug = re.sub(r"[^a-z0-9]+", "_", _path.lower()).strip("_")
        router.add_api_route(
            _path, _make(_feature), methods=[_method], response_model=None,
            responses=errors(501), summary=f"Reserved: {_feature} (answers 501 for now)",
            openapi_extra={"parameters": [
                {"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
                for p in re.findall(r"{(\w+)}", _path)
            ]},
            operation_id=f"reserved_{_slug}_{_method.lower()}",
        )
