"""``snapshot create|ls`` and ``restore``: labels on revisions, and going back to them.

A restore never rewrites history: it makes the current state equal to the state at a revision as
one new transaction, so a restore can itself be undone by restoring the revision before it.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from ..errors import InvalidRequest
from .common import (
    DEFAULT_DB,
    AuthorOpt,
    DbOpt,
    JsonOpt,
    MetadataOpt,
    ReasonOpt,
    TenantOpt,
    TokenOpt,
    UrlOpt,
    WriteMeta,
    session,
)
from .output import short_time

__all__ = ["register", "snapshot_app"]

snapshot_app = typer.Typer(
    name="snapshot", no_args_is_help=True,
    help="Label the tenant's current revision, and list labels.\n\n"
         "[b]Examples[/b]\n\n  confhub snapshot create before-migration\n  confhub snapshot ls",
)


def register(app: typer.Typer) -> None:
    app.add_typer(snapshot_app)
    app.command("restore")(restore)


@snapshot_app.command("create")
def create(
    label: Annotated[str, typer.Argument(metavar="LABEL", show_default=False,
                                         help="A new, unique name for the current revision.")],
    tenant: TenantOpt = "default",
    json: JsonOpt = False,
    url: UrlOpt = None,
    token: TokenOpt = None,
    db: DbOpt = DEFAULT_DB,
) -> None:
    """Label the tenant's current revision so it can be restored later.

    [b]Examples[/b]

      confhub snapshot create before-migration
      confhub snapshot create release-42 --tenant acme --json
    """
    with session(url=url, token=token, db=db, tenant=tenant, json=json) as ctx:
        snap = ctx.tenant.snapshot(label)
        ctx.out.result(snap.to_dict(), lambda: ctx.out.success(
            f"snapshot [bold]{snap.label}[/bold] = revision {snap.revision} "
            f"of tenant {snap.tenant}"))


@snapshot_app.command("ls")
def ls(
    tenant: TenantOpt = "default",
    json: JsonOpt = False,
    url: UrlOpt = None,
    token: TokenOpt = None,
    db: DbOpt = DEFAULT_DB,
) -> None:
    """List the tenant's snapshots.

    [b]Examples[/b]

      confhub snapshot ls
      confhub snapshot ls --tenant acme --json
    """
    with session(url=url, token=token, db=db, tenant=tenant, json=json) as ctx:
        snaps = list(ctx.tenant.snapshots())
        ctx.out.result([s.to_dict() for s in snaps], lambda: ctx.out.table(
            f"snapshots of tenant {tenant}", ["label", "revision", "created"],
            [(s.label, str(s.revision), short_time(s.created_at)) for s in snaps]) if snaps
            else ctx.out.note(f"no snapshots in tenant {tenant}"))


def restore(
    snapshot: Annotated[str | None, typer.Option("--snapshot", "-s", metavar="LABEL",
                                                 help="Restore the state of this snapshot.")
                        ] = None,
    revision: Annotated[int | None, typer.Option("--revision", metavar="R", min=0,
                                                 help="Restore the state at this revision.")
                        ] = None,
    namespace: Annotated[str | None, typer.Option(
        "--namespace", "-n", metavar="NAMESPACE",
        help="Restore only this namespace; the rest of the tenant is untouched.")] = None,
    reason: ReasonOpt = None,
    author: AuthorOpt = None,
    metadata: MetadataOpt = None,
    tenant: TenantOpt = "default",
    json: JsonOpt = False,
    url: UrlOpt = None,
    token: TokenOpt = None,
    db: DbOpt = DEFAULT_DB,
) -> None:
    """Make the current state equal to a snapshot or revision, as one new transaction.

    [b]Examples[/b]

      confhub restore --snapshot before-migration --reason "migration failed"
      confhub restore --revision 120 --namespace routing
    """
    with session(url=url, token=token, db=db, tenant=tenant, json=json) as ctx:
        if (snapshot is None) == (revision is None):
            raise InvalidRequest("give exactly one of --snapshot LABEL or --revision R")
        meta = WriteMeta.parse(reason, author, metadata)
        kwargs: dict[str, Any] = {"namespace": namespace}
        if snapshot is not None:
            kwargs["snapshot"] = snapshot
        else:
            kwargs["revision"] = revision
        result = ctx.tenant.restore(**kwargs, **meta.kwargs())
        data = _as_dict(result)
        target = f"snapshot {snapshot}" if snapshot is not None else f"revision {revision}"
        scope = f" (namespace {namespace})" if namespace else ""
        ctx.out.result({"tenant": tenant, "restored": target, "namespace": namespace, **data},
                       lambda: ctx.out.success(f"restored tenant [bold]{tenant}[/bold] to "
                                               f"{target}{scope}{_describe(data)}"))


def _as_dict(result: Any) -> dict[str, Any]:
    """Whatever ``Tenant.restore`` returns (a revision, a dict, a list of changes) as JSON."""
    if result is None:
        return {}
    if isinstance(result, int):
        return {"revision": result}
    if isinstance(result, dict):
        return dict(result)
    if hasattr(result, "to_dict"):
        return dict(result.to_dict())
    if isinstance(result, list | tuple):
        return {"changes": [c.to_dict() if hasattr(c, "to_dict") else c for c in result]}
    return {"result": result}


def _describe(data: dict[str, Any]) -> str:
    parts = []
    if "revision" in data:
        parts.append(f"new revision {data['revision']}")
    if "changes" in data:
        parts.append(f"{len(data['changes'])} key(s) changed")
    return f": {', '.join(parts)}" if parts else ""
