"""``tenant ls|create|clone|delete|restore``: the isolation units themselves.

A soft delete hides a tenant and keeps everything (``tenant restore`` brings it back); ``--hard``
purges it with its history, so it asks for confirmation unless ``--yes`` is given.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from ..errors import InvalidRequest
from .common import session, target_options
from .inputs import load_document
from .output import short_time

__all__ = ["register", "tenant_app"]

tenant_app = typer.Typer(
    name="tenant", no_args_is_help=True,
    help="List, show, create, clone, delete and restore tenants.\n\n"
         "[b]Examples[/b]\n\n  $ confhub tenant ls\n"
         "  $ confhub tenant create acme --template enterprise\n"
         "  $ confhub tenant clone acme acme-staging",
)

NameArg = Annotated[str, typer.Argument(metavar="TENANT", show_default=False, help="Tenant name.")]


def register(app: typer.Typer) -> None:
    app.add_typer(tenant_app)


@tenant_app.command("ls")
@target_options(tenant=False)
def ls(
    cmd: typer.Context,
    all_: Annotated[bool, typer.Option("--all", "-a", help="Include soft-deleted tenants.")
                    ] = False,
) -> None:
    """List tenants.

    [b]Examples[/b]

      $ confhub tenant ls
      $ confhub tenant ls --all --json
    """
    with session(cmd) as ctx:
        tenants = ctx.hub.tenants(include_deleted=all_) if all_ else ctx.hub.tenants()
        ctx.out.result([t.to_dict() for t in tenants], lambda: ctx.out.table(
            "tenants", ["tenant", "revision", "created", "deleted"],
            [(t.id, str(t.revision), short_time(t.created_at), short_time(t.deleted_at))
             for t in tenants]))


@tenant_app.command("show")
@target_options(tenant=False)
def show(
    cmd: typer.Context,
    name: NameArg,
) -> None:
    """Show one tenant: its revision, when it was created or deleted, and its namespaces.

    [b]Examples[/b]

      $ confhub tenant show acme
      $ confhub tenant show acme --json
    """
    with session(cmd) as ctx:
        info = ctx.hub.tenant_info(name)
        # A soft-deleted tenant has no readable keys; its record is all there is to show.
        counts = {} if info.deleted else dict(ctx.hub.tenant(name).namespace_counts())
        data = {**info.to_dict(), "namespaces": counts}

        def human() -> None:
            state = f"deleted {short_time(info.deleted_at)}" if info.deleted else "active"
            ctx.out.print(f"tenant [bold]{info.id}[/bold]  revision {info.revision}  "
                          f"created {short_time(info.created_at)}  {state}")
            if counts:
                ctx.out.table(None, ["namespace", "keys (all envs)"],
                              [(ns, str(n)) for ns, n in counts.items()])

        ctx.out.result(data, human)


@tenant_app.command("create")
@target_options(tenant=False)
def create(
    cmd: typer.Context,
    name: NameArg,
    template: Annotated[str | None, typer.Option(
        "--template", metavar="TENANT", help="Start as a copy of this tenant's current values.")
    ] = None,
    overrides: Annotated[str | None, typer.Option(
        "--overrides", metavar="FILE",
        help='JSON/YAML {"namespace": {"key": value}} applied over the template.')] = None,
) -> None:
    """Create a tenant, empty or from a template tenant with overrides.

    [b]Examples[/b]

      $ confhub tenant create acme
      $ confhub tenant create acme --template enterprise --overrides acme-overrides.yaml
    """
    with session(cmd) as ctx:
        kwargs: dict[str, Any] = {}
        if template is not None:
            kwargs["template"] = template
        if overrides is not None:
            document = load_document(overrides)
            if not isinstance(document, dict):
                raise InvalidRequest(f"{overrides}: overrides must be an object of namespaces")
            kwargs["overrides"] = document
        info = ctx.hub.create_tenant(name, **kwargs)
        origin = f" from template {template}" if template else ""
        ctx.out.result(info.to_dict(), lambda: ctx.out.success(
            f"created tenant [bold]{name}[/bold]{origin} at revision {info.revision}"))


@tenant_app.command("clone")
@target_options(tenant=False)
def clone(
    cmd: typer.Context,
    source: Annotated[str, typer.Argument(metavar="SOURCE", show_default=False,
                                          help="Tenant to copy.")],
    target: Annotated[str, typer.Argument(metavar="TARGET", show_default=False,
                                          help="New tenant name.")],
) -> None:
    """Copy a tenant's configuration into a new tenant.

    [b]Examples[/b]

      $ confhub tenant clone acme acme-staging
    """
    with session(cmd) as ctx:
        info = ctx.hub.clone_tenant(source, target)
        ctx.out.result({**info.to_dict(), "source": source}, lambda: ctx.out.success(
            f"cloned tenant [bold]{source}[/bold] to [bold]{target}[/bold]"))


@tenant_app.command("delete")
@target_options(tenant=False)
def delete(
    cmd: typer.Context,
    name: NameArg,
    hard: Annotated[bool, typer.Option(
        "--hard", help="Purge the tenant and all its history (cannot be undone).")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask before --hard.")] = False,
) -> None:
    """Delete a tenant: soft by default (tenant restore undoes it), --hard purges everything.

    [b]Examples[/b]

      $ confhub tenant delete old-customer
      $ confhub tenant delete old-customer --hard --yes
    """
    if hard and not yes:
        typer.confirm(f"Purge tenant {name!r} and all of its history? This cannot be undone",
                      abort=True, err=True)
    with session(cmd) as ctx:
        ctx.hub.delete_tenant(name, hard=hard)
        kind = "purged" if hard else "deleted (restore with: confhub tenant restore " + name + ")"
        ctx.out.result({"id": name, "deleted": True, "hard": hard},
                       lambda: ctx.out.success(f"tenant [bold]{name}[/bold] {kind}"))


@tenant_app.command("restore")
@target_options(tenant=False)
def restore(
    cmd: typer.Context,
    name: NameArg,
) -> None:
    """Undo a soft delete of a tenant.

    [b]Examples[/b]

      $ confhub tenant restore old-customer
    """
    with session(cmd) as ctx:
        info = ctx.hub.restore_tenant(name)
        ctx.out.result(info.to_dict(),
                       lambda: ctx.out.success(f"restored tenant [bold]{name}[/bold]"))
