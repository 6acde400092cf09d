"""Small things most pages share: the tenant a page is about, the env it shows, links."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from starlette.requests import Request

from ....errors import NotFound
from ....model import check_name
from ...deps import call
from ..session import Session, require

if TYPE_CHECKING:
    from ..app import UI

__all__ = ["BASE", "STRATEGIES", "env_of", "envs_of", "key_url", "open_tenant", "param"]

BASE = "base"
STRATEGIES = ("canary", "linear", "exponential", "all-at-once")  # rollout presets


def param(request: Request, name: str, default: str = "") -> str:
    return request.query_params.get(name, default)


def env_of(request: Request, form: dict[str, str] | None = None) -> str:
    """The env layer a page shows (``?env=``, or the form's ``env``), ``base`` by default."""
    raw = (form or {}).get("env") or request.query_params.get("env") or BASE
    return check_name("env", raw)


async def open_tenant(ui: UI, session: Session, tenant: str, role: str = "viewer",
                      namespace: str | None = "") -> Any:
    """The hub's Tenant after checking the user may act as ``role`` there; NotFound for a
    tenant that does not exist (or that the user may not see: the same answer)."""
    require(session, check_name("tenant", tenant), role, namespace)
    info = await call(ui.hub.tenant_info, tenant)
    if info.deleted:
        raise NotFound(f"tenant {tenant!r} does not exist", tenant=tenant)
    return ui.hub.tenant(tenant)


async def envs_of(cfg: Any) -> list[str]:
    """``base`` first, then every env layer that holds a key."""
    envs = await call(cfg.envs)
    return [BASE, *[e for e in envs if e != BASE]]


def key_url(tenant: str, namespace: str, key: str, env: str = BASE, suffix: str = "",
            **query: Any) -> str:
    path = f"/ui/t/{quote(tenant)}/k/{quote(namespace)}/{quote(key)}{suffix}"
    params = {k: v for k, v in {"env": env if env != BASE else None, **query}.items()
              if v is not None}
    return path + (f"?{urlencode(params)}" if params else "")
