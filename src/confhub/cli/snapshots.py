"""``snapshot create|ls`` and ``restore``: labels on revisions, and going back to them.

A restore never rewrites history: it makes the current state equal to the state at a revision as
one new transaction, so a restore can itself be undone by restoring the revision before it.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from ..errors import InvalidRequest
from .common import (
    AuthorOpt,
    ReasonOpt,
    TenantOpt,
    WriteMeta,
    session,
    target_options,
)
from .operations import restore_store
from .output import Output, marked, preview, short_time

__all__ = ["register", "snapshot_app"]

snapshot_app = typer.Typer(
    name="snapshot", no_args_is_help=True,
    help="Label the tenant's current revision, and list labels.\n\n"
         "[b]Examples[/b]\n\n  $ confhub snapshot create before-migration\n  $ confhub snapshot ls",
)


def register(app: typer.Typer) -> None:
    app.add_typer(snapshot_app)
    app.command("restore")(restore)


@snapshot_app.command("create")
@target_options
def create(
    cmd: typer.Context,
    label: Annotated[str, typer.Argument(metavar="LABEL", show_default=False,
                                         help="A new, unique name for the current revision.")],
) -> None:
    """Label the tenant's current revision so it can be restored later.

    [b]Examples[/b]

      $ confhub snapshot create before-migration
      $ confhub snapshot create release-42 --tenant acme --json
    """
    with session(cmd) as ctx:
        snap = ctx.tenant.snapshot(label)
        ctx.out.result(snap.to_dict(), lambda: ctx.out.success(
            f"snapshot [bold]{snap.label}[/bold] = revision {snap.revision} "
            f"of tenant {snap.tenant}"))


@snapshot_app.command("ls")
@target_options
def ls(
    cmd: typer.Context,
    tenant: TenantOpt = "default",
) -> None:
    """List the tenant's snapshots.

    [b]Examples[/b]

      $ confhub snapshot ls
      $ confhub snapshot ls --tenant acme --json
    """
    with session(cmd) as ctx:
        snaps = list(ctx.tenant.snapshots())
        ctx.out.result([s.to_dict() for s in snaps], lambda: ctx.out.table(
            f"snapshots of tenant {tenant}", ["label", "revision", "created"],
            [(s.label, str(s.revision), short_time(s.created_at)) for s in snaps]) if snaps
            else ctx.out.note(f"no snapshots in tenant {tenant}"))


@target_options
def restore(
    cmd: typer.Context,
    file: Annotated[str | None, typer.Argument(
        metavar="[FILE]", show_default=False,
        help="A backup made by `confhub backup`: replace the whole store with it.")] = None,
    force: Annotated[bool, typer.Option(
        "--force", help="With FILE: replace a store that is not empty.")] = False,
    snapshot: Annotated[str | None, typer.Option("--snapshot", "-s", metavar="LABEL",
                                                 help="Restore the state of this snapshot.")
                        ] = None,
    revision: Annotated[int | None, typer.Option("--revision", metavar="R", min=0,
                                                 help="Restore the state at this revision.")
                        ] = None,
    namespace: Annotated[str | None, typer.Option(
        "--namespace", "-n", metavar="NAMESPACE",
        help="Restore only this namespace; the rest of the tenant is untouched.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run",
                                          help="Show what would change, write nothing.")] = False,
    reason: ReasonOpt = None,
    author: AuthorOpt = None,
    tenant: TenantOpt = "default",
) -> None:
    """Make the current state equal to a snapshot or revision, as one new transaction;
    or, given a backup FILE, replace the whole store with it (checked first; --db only).

    [b]Examples[/b]

      $ confhub restore --snapshot before-migration --reason "migration failed"
      $ confhub restore --revision 120 --namespace routing
      $ confhub restore nightly.backup --db /var/lib/confhub/new.db
    """
    if file is not None:
        if snapshot is not None or revision is not None or namespace is not None:
            raise typer.BadParameter("a backup FILE restores the whole store: no --snapshot, "
                                     "--revision or --namespace with it")
        restore_store(cmd, file, force)
        return
    with session(cmd) as ctx:
        if (snapshot is None) == (revision is None):
            raise InvalidRequest("give exactly one of --snapshot LABEL or --revision R")
        meta = WriteMeta.parse(reason, author, None)
        changes = ctx.tenant.restore(snapshot, revision=revision, namespace=namespace,
                                     reason=meta.reason, author=meta.author, dry_run=dry_run)
        target = f"snapshot {snapshot}" if snapshot is not None else f"revision {revision}"
        # Like txn, "revision" is the revision this restore committed (None when nothing
        # changed or on a dry run); the request is echoed as snapshot / to_revision.
        committed = changes[0].revision if changes and not dry_run else None
        data: dict[str, Any] = {"tenant": tenant, "snapshot": snapshot, "to_revision": revision,
                                "namespace": namespace, "revision": committed,
                                "changes": [c.to_dict() for c in changes]}
        ctx.out.result(marked(data, dry_run),
                       lambda: _restored(ctx.out, tenant, target, namespace, changes, dry_run))


def _restored(out: Output, tenant: str, target: str, namespace: str | None, changes: list[Any],
              dry_run: bool) -> None:
    scope = f" (namespace {namespace})" if namespace else ""
    if not changes:
        out.success(f"tenant [bold]{tenant}[/bold]{scope} already equals {target}: nothing to do")
        return
    verb = "dry run: would restore" if dry_run else "restored"
    new_revision = "" if dry_run else f" as revision {changes[0].revision}"
    out.success(f"{verb} tenant [bold]{tenant}[/bold]{scope} to {target}{new_revision}: "
                f"{len(changes)} key(s) changed")
    out.table(None, ["namespace/key", "env", "version", "now"],
              [(f"{c.namespace}/{c.key}", c.env, str(c.version),
                "(deleted)" if c.deleted else preview(c.value, 40)) for c in changes])
