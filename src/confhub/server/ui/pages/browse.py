"""Looking around: tenants, a tenant's envs and namespaces, a namespace's keys, one key,
search by key or value, and revealing a secret (audited, editors and up)."""

from __future__ import annotations

import contextlib
import json
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ....errors import NotFound
from ....model import check_name
from ...deps import call
from ..render import pretty
from ..session import Session, check_csrf, form_of
from .common import BASE, env_of, envs_of, open_tenant, param
from .rollouts import rollouts_of_key

if TYPE_CHECKING:
    from ..app import UI

__all__ = ["PAGES"]

RECENT = 25  # revisions looked at for a tenant's recent changes
SHOWN = 50  # changes listed there at most
SEARCH_LIMIT = 200  # hits shown for one search


async def tenants(request: Request, ui: UI, session: Session) -> Response:
    found = [t for t in await call(ui.hub.tenants) if session.sees(t.id)]
    if len(found) == 1 and not session.principal.superadmin:
        return RedirectResponse(f"/ui/t/{found[0].id}", 303)
    return ui.page(request, session, "tenants.html", tenants=found)


async def tenant(request: Request, ui: UI, session: Session) -> Response:
    name = request.path_params["tenant"]
    cfg = await open_tenant(ui, session, name)
    # Keys of the base layer per namespace (an env overlay adds no key of its own).
    base = await call(cfg.namespace_counts, env=BASE)
    counts = {ns: base.get(ns, 0) for ns in await call(cfg.namespace_counts)
              if session.sees(name, ns)}
    revision = await call(lambda: cfg.revision)
    recent = await call(cfg.changes, max(0, revision - RECENT), 200)
    recent = [c for c in reversed(recent) if session.sees(name, c.namespace)][:SHOWN]
    return ui.page(request, session, "tenant.html", tenant=name, counts=counts,
                   envs=await envs_of(cfg), recent=recent, revision=revision)


async def namespace(request: Request, ui: UI, session: Session) -> Response:
    name, ns = request.path_params["tenant"], request.path_params["namespace"]
    cfg = await open_tenant(ui, session, name, namespace=check_name("namespace", ns))
    env = env_of(request)
    entries = await call(cfg.list, ns, env=env)
    return ui.page(request, session, "namespace.html", tenant=name, namespace=ns, env=env,
                   envs=await envs_of(cfg), entries=entries)


async def key_page(request: Request, ui: UI, session: Session,
                   revealed: Any = None) -> Response:
    name, ns, key = (request.path_params[p] for p in ("tenant", "namespace", "key"))
    cfg = await open_tenant(ui, session, name, namespace=check_name("namespace", ns))
    check_name("key", key)
    env = env_of(request)
    entry = last = resolved = schema = None
    try:
        entry = await call(cfg.get, ns, key, env=env)
        last = (await call(cfg.history, ns, key, env=env, limit=1))[0]
    except NotFound:
        pass
    if env != BASE:
        with contextlib.suppress(NotFound):
            resolved = await call(cfg.resolve, ns, key, env=env)
    if entry is None and resolved is None:
        deleted = None
        with contextlib.suppress(NotFound):
            deleted = (await call(cfg.history, ns, key, env=env, limit=1))[0]
        if deleted is None:
            raise NotFound(f"{ns}/{key} does not exist in env {env!r} of tenant {name!r}",
                           tenant=name, namespace=ns, key=key, env=env)
        last = deleted
    try:
        schema = await call(cfg.get_schema, ns)
    except NotFound:
        schema = None
    annotations = await call(cfg.schema_annotations, ns, key)
    rollouts = await rollouts_of_key(cfg, ns, key, env)
    return ui.page(request, session, "key.html", tenant=name, namespace=ns, key=key, env=env,
                   envs=await envs_of(cfg), entry=entry, last=last, resolved=resolved,
                   schema=schema, annotations=annotations, revealed=revealed,
                   rollouts=rollouts, can_edit=session.can(name, "editor", ns),
                   saved=param(request, "saved"))


async def reveal(request: Request, ui: UI, session: Session) -> Response:
    """Show a secret in clear on this page only; the hub audits the reveal."""
    name, ns, key = (request.path_params[p] for p in ("tenant", "namespace", "key"))
    form = await form_of(request)
    check_csrf(request, session, form)
    cfg = await open_tenant(ui, session, name, "editor", check_name("namespace", ns))
    env = env_of(request, form)
    entry = await call(cfg.get, ns, key, env=env, reveal=True)
    return await key_page(request, ui, session, revealed=entry.value)


async def search(request: Request, ui: UI, session: Session) -> Response:
    """Keys whose name or (redacted) value contains the text, across every env and
    namespace the user sees. Secrets read ``***``, so a search never finds a secret."""
    name = request.path_params["tenant"]
    cfg = await open_tenant(ui, session, name)
    query = param(request, "q").strip()
    where = param(request, "in", "all")
    hits, truncated = await call(_search, cfg, session, query.lower(), where) if query \
        else ([], False)
    return ui.page(request, session, "search.html", tenant=name, query=query, where=where,
                   hits=hits, truncated=truncated)


def _search(cfg: Any, session: Session, needle: str, where: str
            ) -> tuple[list[tuple[Any, str, str]], bool]:
    """Blocking: run it in a worker thread (one hop for the whole tenant)."""
    hits: list[tuple[Any, str, str]] = []
    envs = [BASE, *[e for e in cfg.envs() if e != BASE]]
    for env in envs:
        for ns in cfg.namespaces(env=env):
            if not session.sees(cfg.name, ns):
                continue
            for entry in cfg.list(ns, env=env):
                in_key = needle in f"{ns}/{entry.key}".lower()
                in_value = needle in json.dumps(entry.value, ensure_ascii=False).lower()
                if (where in ("all", "key") and in_key) or \
                        (where in ("all", "value") and in_value):
                    hits.append((entry, "key" if in_key else "value",
                                 _snippet(entry.value, needle)))
                    if len(hits) >= SEARCH_LIMIT:
                        return hits, True
    return hits, False


def _snippet(value: Any, needle: str, lines: int = 3) -> str:
    """The lines of the pretty value that hold the text (else its first lines)."""
    text = pretty(value).splitlines()
    found = [line.strip() for line in text if needle in line.lower()]
    return "\n".join((found or [line.strip() for line in text])[:lines])


async def home(request: Request, ui: UI, session: Session) -> Response:
    return RedirectResponse("/ui/", 303)


PAGES = [
    ("", home, ["GET"]),
    ("/", tenants, ["GET"]),
    ("/t/{tenant}", tenant, ["GET"]),
    ("/t/{tenant}/search", search, ["GET"]),
    ("/t/{tenant}/ns/{namespace}", namespace, ["GET"]),
    ("/t/{tenant}/k/{namespace}/{key}", key_page, ["GET"]),
    ("/t/{tenant}/k/{namespace}/{key}/reveal", reveal, ["POST"]),
]
