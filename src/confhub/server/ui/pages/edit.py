"""Changing a value safely: edit -> preview (the server's validation and the diff) -> save.

Every save is a compare-and-set on the version the editor started from. When someone else
saved in between, the save is refused and the conflict page shows the three versions (the
one you started from, theirs, yours) with a merge of the two edits when they do not touch
the same place, to save again from.

The form carries everything (namespace, key, env, format, text, expected version), so the
flow works without scripts, across servers, and after a server restart.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ....errors import ConfhubError, NotFound, ValidationFailed, VersionConflict
from ....model import ValidationReport, check_name
from ...deps import call
from ..render import FORMATS, line_diff, parse_value, redact, three_way, to_text
from ..session import Session, check_csrf, form_of
from .common import BASE, STRATEGIES, env_of, envs_of, key_url, open_tenant, param

if TYPE_CHECKING:
    from ..app import UI

__all__ = ["PAGES", "Draft"]


class Draft:
    """An edit in progress, as the forms carry it."""

    def __init__(self, tenant: str, namespace: str, key: str, env: str, text: str,
                 fmt: str, expected: int, reason: str = "", secret: bool = False,
                 source: str = "") -> None:
        self.tenant, self.namespace, self.key, self.env = tenant, namespace, key, env
        self.text, self.fmt, self.expected, self.reason = text, fmt, expected, reason
        self.secret, self.source = secret, source

    @classmethod
    def from_form(cls, tenant: str, form: dict[str, str]) -> Draft:
        fmt = form.get("fmt", "json")
        expected = form.get("expected_version", "0").strip() or "0"
        if not expected.isdigit():
            from ....errors import InvalidRequest

            raise InvalidRequest(f"expected_version must be a number, not {expected!r}")
        return cls(tenant, check_name("namespace", form.get("namespace", "").strip()),
                   check_name("key", form.get("key", "").strip()),
                   check_name("env", form.get("env", BASE).strip() or BASE),
                   form.get("value", ""), fmt if fmt in FORMATS else "json", int(expected),
                   form.get("reason", ""), form.get("secret") == "1", form.get("source", ""))

    @property
    def is_new(self) -> bool:
        return self.expected == 0


async def _current(cfg: Any, draft: Draft) -> Any:
    try:
        return await call(cfg.get, draft.namespace, draft.key, env=draft.env)
    except NotFound:
        return None


async def _secret_paths(cfg: Any, draft: Draft, current: Any) -> list[str]:
    """What a diff must mask: the whole value of a secret key, else its x-secret fields."""
    if draft.secret or (current is not None and current.secret):
        return [""]
    annotations = await call(cfg.schema_annotations, draft.namespace, draft.key)
    return list(annotations.get("secret", []))


def _masked(value: Any, paths: list[str]) -> Any:
    if value is None:
        return None
    return "***" if "" in paths else redact(value, paths)


async def edit_form(request: Request, ui: UI, session: Session, draft: Draft | None = None,
                    error: str | None = None, status: int = 200) -> Response:
    """The editor, for a key (its current value, or a copy of another env's or tenant's
    value with ``?from_tenant=&from_env=``) or for a new key."""
    tenant = request.path_params["tenant"]
    if draft is None:
        ns = check_name("namespace", request.path_params.get("namespace")
                        or param(request, "namespace") or "app")
        key = request.path_params.get("key") or param(request, "key")
        env = env_of(request)
        cfg = await open_tenant(ui, session, tenant, "editor", ns)
        fmt = param(request, "fmt", "json")
        fmt = fmt if fmt in FORMATS else "json"
        draft = Draft(tenant, ns, key, env, "{\n  \n}", fmt, 0)
        if key:
            check_name("key", key)
            current = await _current(cfg, draft)
            if current is not None:
                draft.expected = current.version
                draft.text = to_text(current.value, fmt)
                paths = await _secret_paths(cfg, draft, current)
                if paths and request.method == "POST":  # "reveal and edit" (audited)
                    revealed = await call(cfg.get, ns, key, env=env, reveal=True)
                    draft.text = to_text(revealed.value, fmt)
                elif paths:
                    return ui.page(request, session, "reveal_to_edit.html", tenant=tenant,
                                   draft=draft)
            source = await _copy_source(ui, session, request, ns, key, env)
            if source is not None:
                draft.text = to_text(source[1], fmt)
                draft.source = source[0]
    else:
        await open_tenant(ui, session, tenant, "editor", draft.namespace)
    return ui.page(request, session, "edit.html", status=status, tenant=tenant, draft=draft,
                   error=error, envs=await envs_of(ui.hub.tenant(tenant)))


async def _copy_source(ui: UI, session: Session, request: Request, ns: str, key: str,
                       env: str) -> tuple[str, Any] | None:
    """``?from_tenant=&from_env=``: the resolved value to copy in (compare's "copy")."""
    from_tenant = param(request, "from_tenant")
    from_env = param(request, "from_env")
    if not from_tenant and not from_env:
        return None
    source_tenant = from_tenant or request.path_params["tenant"]
    source_env = check_name("env", from_env or env)
    cfg = await open_tenant(ui, session, source_tenant, "viewer", ns)
    resolved = await call(cfg.resolve, ns, key, env=source_env)
    return f"{source_tenant}/{source_env}", resolved.value


async def edit_again(request: Request, ui: UI, session: Session) -> Response:
    """Back from the preview (the text kept), or "reveal and edit" for a key with secrets."""
    form = await form_of(request)
    check_csrf(request, session, form)
    if form.get("reveal") == "1":
        return await edit_form(request, ui, session)
    return await edit_form(request, ui, session, Draft.from_form(request.path_params["tenant"],
                                                                   form))


async def preview(request: Request, ui: UI, session: Session) -> Response:
    """What saving would do: the server's validation (errors block the save) and the diff."""
    form = await form_of(request)
    check_csrf(request, session, form)
    return await _preview(request, ui, session,
                          Draft.from_form(request.path_params["tenant"], form))


async def _preview(request: Request, ui: UI, session: Session, draft: Draft,
                   error: str | None = None) -> Response:
    cfg = await open_tenant(ui, session, draft.tenant, "editor", draft.namespace)
    try:
        value = parse_value(draft.text, draft.fmt)
        report: ValidationReport = await call(cfg.validate, draft.namespace, draft.key, value,
                                              env=draft.env)
        await call(cfg.set, draft.namespace, draft.key, value, env=draft.env,
                   expected_version=draft.expected, dry_run=True, secret=draft.secret)
    except VersionConflict as exc:
        return await conflict(request, ui, session, draft, exc)
    except ValidationFailed:
        pass  # the report above lists it
    except ConfhubError as exc:
        if isinstance(exc, NotFound) and "tenant" in exc.message:
            raise
        return await edit_form(request, ui, session, draft, error=exc.message, status=400)
    current = await _current(cfg, draft)
    paths = await _secret_paths(cfg, draft, current)
    diff = line_diff(_masked(current.value if current else None, paths), _masked(value, paths),
                     f"version {draft.expected}" if draft.expected else "(new key)",
                     "your edit")
    return ui.page(request, session, "preview.html", status=400 if error else 200,
                   tenant=draft.tenant, draft=draft, report=report, diff=diff,
                   secret_masked=bool(paths), error=error, strategies=STRATEGIES)


async def save(request: Request, ui: UI, session: Session) -> Response:
    """Commit the edit as a compare-and-set on the version it started from."""
    form = await form_of(request)
    check_csrf(request, session, form)
    draft = Draft.from_form(request.path_params["tenant"], form)
    cfg = await open_tenant(ui, session, draft.tenant, "editor", draft.namespace)
    try:
        value = parse_value(draft.text, draft.fmt)
        entry = await call(cfg.set, draft.namespace, draft.key, value, env=draft.env,
                           expected_version=draft.expected, reason=draft.reason or None,
                           secret=draft.secret,
                           metadata={"via": "ui", **({"copied_from": draft.source}
                                                     if draft.source else {})})
    except VersionConflict as exc:
        return await conflict(request, ui, session, draft, exc)
    except ValidationFailed:  # a schema changed since the preview: show why
        return await _preview(request, ui, session, draft)
    except ConfhubError as exc:
        if isinstance(exc, NotFound) and "tenant" in exc.message:
            raise
        return await edit_form(request, ui, session, draft, error=exc.message, status=400)
    return RedirectResponse(key_url(draft.tenant, draft.namespace, draft.key, draft.env,
                                    saved=entry.version), 303)


async def conflict(request: Request, ui: UI, session: Session, draft: Draft,
                   exc: VersionConflict) -> Response:
    """Someone saved first: show base (what you started from), theirs and yours, and offer a
    merge to continue from (yours when both changed the same place)."""
    cfg = ui.hub.tenant(draft.tenant)
    current = await _current(cfg, draft)
    base = None
    if draft.expected:
        try:
            base = (await call(cfg.get, draft.namespace, draft.key, env=draft.env,
                               version=draft.expected)).value
        except NotFound:
            base = None
    theirs = current.value if current is not None else None
    try:
        yours = parse_value(draft.text, draft.fmt)
    except ConfhubError as bad:
        return await edit_form(request, ui, session, draft, error=bad.message, status=400)
    merge = three_way(base, theirs, yours)
    paths = await _secret_paths(cfg, draft, current)
    resolved_text = to_text(merge.merged if merge.merged is not None else yours, draft.fmt)
    retry = Draft(draft.tenant, draft.namespace, draft.key, draft.env, resolved_text,
                  draft.fmt, current.version if current is not None else 0, draft.reason,
                  draft.secret, draft.source)
    return ui.page(
        request, session, "conflict.html", status=412, tenant=draft.tenant, draft=retry,
        mine=draft, current=current, merge=merge, base=_masked(base, paths),
        theirs=_masked(theirs, paths), yours=_masked(yours, paths),
        theirs_diff=line_diff(_masked(base, paths), _masked(theirs, paths),
                              f"version {draft.expected} (you started here)",
                              f"version {exc.current_version} (saved meanwhile)"),
        yours_diff=line_diff(_masked(base, paths), _masked(yours, paths),
                             f"version {draft.expected} (you started here)", "your edit"),
        envs=await envs_of(cfg))


async def check(request: Request, ui: UI, session: Session) -> Response:
    """The server's validation of the editor's text as you type (a fragment the editor page
    shows under the editor; the preview remains the step that gates the save)."""
    form = await form_of(request)
    check_csrf(request, session, form)
    draft = Draft.from_form(request.path_params["tenant"], form)
    cfg = await open_tenant(ui, session, draft.tenant, "editor", draft.namespace)
    try:
        value = parse_value(draft.text, draft.fmt)
        report = await call(cfg.validate, draft.namespace, draft.key, value, env=draft.env)
    except ConfhubError as exc:
        if isinstance(exc, NotFound) and "tenant" in exc.message:
            raise
        return ui.page(request, session, "_check.html", report=None, error=exc.message)
    return ui.page(request, session, "_check.html", report=report, error=None)


PAGES = [
    ("/t/{tenant}/new", edit_form, ["GET"]),
    ("/t/{tenant}/k/{namespace}/{key}/edit", edit_form, ["GET"]),
    ("/t/{tenant}/k/{namespace}/{key}/edit", edit_again, ["POST"]),
    ("/t/{tenant}/edit", edit_again, ["POST"]),
    ("/t/{tenant}/preview", preview, ["POST"]),
    ("/t/{tenant}/check", check, ["POST"]),
    ("/t/{tenant}/save", save, ["POST"]),
]
