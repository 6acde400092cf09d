"""Compare two envs (resolved values) of one tenant, or the same env of two tenants, showing
only the keys that differ; each difference links to "copy across", which opens the editor on
the target with the source's value (so the copy goes through the same preview, validation and
compare-and-set as any edit)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from ....errors import NotFound
from ....model import check_name
from ...deps import call
from ..render import Diff, line_diff
from ..session import Session
from .common import BASE, envs_of, open_tenant, param

if TYPE_CHECKING:
    from ..app import UI

__all__ = ["PAGES", "Difference", "resolved_values"]

MAX_KEYS = 5000  # keys compared on one page


@dataclass(frozen=True)
class Difference:
    namespace: str
    key: str
    status: str  # only-left, only-right, changed
    diff: Diff


def resolved_values(cfg: Any, session: Session, env: str,
                    namespace: str | None) -> dict[tuple[str, str], Any]:
    """Every key's resolved value for ``env`` (base merged with the env's layer). Blocking:
    run it in a worker thread (one hop for the whole tenant, not one per key)."""
    out: dict[tuple[str, str], Any] = {}
    names = [namespace] if namespace else cfg.namespaces()
    for ns in names:
        if not session.sees(cfg.name, ns):
            continue
        keys: set[str] = set()
        for layer in {BASE, env}:
            keys.update(e.key for e in cfg.list(ns, env=layer))
        for key in sorted(keys):
            try:
                out[(ns, key)] = cfg.resolve(ns, key, env=env).value
            except NotFound:
                continue
            if len(out) >= MAX_KEYS:
                return out
    return out


async def compare(request: Request, ui: UI, session: Session) -> Response:
    name = request.path_params["tenant"]
    cfg = await open_tenant(ui, session, name)
    envs = await envs_of(cfg)
    left_tenant = check_name("tenant", param(request, "left_tenant", name))
    right_tenant = check_name("tenant", param(request, "right_tenant", name))
    left_env = check_name("env", param(request, "left_env", BASE))
    default_right = next((e for e in envs if e != left_env), BASE)
    right_env = check_name("env", param(request, "right_env", default_right))
    namespace = param(request, "namespace") or None
    if namespace:
        check_name("namespace", namespace)
    left_cfg = await open_tenant(ui, session, left_tenant)
    right_cfg = await open_tenant(ui, session, right_tenant)
    left = await call(resolved_values, left_cfg, session, left_env, namespace)
    right = await call(resolved_values, right_cfg, session, right_env, namespace)
    left_label, right_label = f"{left_tenant} · {left_env}", f"{right_tenant} · {right_env}"
    differences = []
    for ns, key in sorted(left.keys() | right.keys()):
        a, b = left.get((ns, key)), right.get((ns, key))
        if (ns, key) in left and (ns, key) in right and a == b:
            continue
        status = ("only-left" if (ns, key) not in right else
                  "only-right" if (ns, key) not in left else "changed")
        differences.append(Difference(ns, key, status,
                                      line_diff(a, b, left_label, right_label, context=2)))
    tenants = [t.id for t in await call(ui.hub.tenants) if session.sees(t.id)]
    return ui.page(request, session, "compare.html", tenant=name, envs=envs, tenants=tenants,
                   left_tenant=left_tenant, right_tenant=right_tenant, left_env=left_env,
                   right_env=right_env, namespace=namespace or "", differences=differences,
                   same=len(left.keys() & right.keys()) - sum(
                       1 for d in differences if d.status == "changed"),
                   can_edit_left=session.can(left_tenant, "editor"),
                   can_edit_right=session.can(right_tenant, "editor"))


PAGES = [("/t/{tenant}/compare", compare, ["GET"])]
