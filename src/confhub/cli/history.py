"""The past: a key's ``history``, ``diff`` and ``rollback``; the tenant's ``changes`` feed.

History is never rewritten, so these commands only read it - except ``rollback``, which writes a
*new* version equal to an old one (``op = rollback``), exactly as the library does.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.text import Text

from .common import (
    AddressArg,
    AuthorOpt,
    EnvOpt,
    ExpectedVersionOpt,
    MetadataOpt,
    ReasonOpt,
    TenantOpt,
    WriteMeta,
    session,
    split_address,
    target_options,
)
from .output import Output, marked, preview, short_time

__all__ = ["register"]


OP_STYLE = {"put": "green", "patch": "cyan", "delete": "red", "rollback": "yellow",
             "restore": "magenta", "import": "blue"}


def register(app: typer.Typer) -> None:
    app.command("history")(history)
    app.command("diff")(diff)
    app.command("rollback")(rollback)
    app.command("changes")(changes)


@target_options
def history(
    cmd: typer.Context,
    address: AddressArg,
    env: EnvOpt = "base",
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, metavar="N",
                                       help="How many versions, newest first.")] = 50,
    before: Annotated[int | None, typer.Option(
        "--before", metavar="N", min=1,
        help="Page back: only versions older than N.")] = None,
    values: Annotated[bool, typer.Option("--values", help="Show a preview of each value.")
                      ] = False,
) -> None:
    """Show a key's versions, newest first: who changed it, when, why, and how.

    [b]Examples[/b]

      $ confhub history models/claude-opus
      $ confhub history models/claude-opus --limit 10 --values
      $ confhub history models/claude-opus --limit 10 --before 41   # the next page
      $ confhub history models/claude-opus --env production --json
    """
    with session(cmd) as ctx:
        namespace, key = split_address(address)
        versions = ctx.tenant.history(namespace, key, env=env, limit=limit, before=before)
        ctx.out.result([v.to_dict() for v in versions],
                       lambda: _history_table(ctx.out, f"{namespace}/{key}", env, versions, values))


def _history_table(out: Output, title: str, env: str, versions: list[Any], values: bool) -> None:
    if not versions:
        out.note(f"no history for {title} (env {env})")
        return
    columns = ["version", "revision", "op", "when", "author", "reason"]
    if values:
        columns.append("value")
    rows = []
    for v in versions:
        op = v.op + (f" → v{v.rollback_of}" if v.rollback_of else "")
        row: list[Any] = [str(v.version), str(v.revision),
                          Text(op, style=OP_STYLE.get(v.op, "")),
                          short_time(v.created_at), v.author or "", v.reason or ""]
        if values:
            row.append("(deleted)" if v.deleted else preview(v.value, 40))
        rows.append(row)
    out.table(f"history of {title} (env {env})", columns, rows)


@target_options
def diff(
    cmd: typer.Context,
    address: AddressArg,
    from_version: Annotated[int | None, typer.Argument(
        metavar="[FROM]", show_default=False,
        help="Older version [default: the one before TO].")] = None,
    to_version: Annotated[int | None, typer.Argument(
        metavar="[TO]", show_default=False, help="Newer version [default: the current one].")
    ] = None,
    env: EnvOpt = "base",
) -> None:
    """Show what changed between two versions of a key, as JSON Patch (RFC 6902) operations.

    [b]Examples[/b]

      $ confhub diff models/claude-opus            # the last change
      $ confhub diff models/claude-opus 1 3
      $ confhub diff models/claude-opus 2 --json   # version 2 against the current one
    """
    with session(cmd) as ctx:
        namespace, key = split_address(address)
        cfg = ctx.tenant
        if to_version is None:  # history raises NotFound for a key that never existed
            to_version = cfg.history(namespace, key, env=env, limit=1)[0].version
        if from_version is None:
            from_version = max(to_version - 1, 1)
        ops = cfg.diff(namespace, key, from_version, to_version, env=env)
        ops = [dict(op) for op in ops]

        def human() -> None:
            ctx.out.print(f"[bold]{namespace}/{key}[/bold]  version {from_version} → {to_version}")
            ctx.out.json_patch(ops)

        ctx.out.result(ops, human)


@target_options
def rollback(
    cmd: typer.Context,
    address: AddressArg,
    to: Annotated[int, typer.Option("--to", metavar="N", min=1, show_default=False,
                                    help="The version whose value to bring back.")],
    env: EnvOpt = "base",
    expected_version: ExpectedVersionOpt = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check and show, write nothing.")
                       ] = False,
    reason: ReasonOpt = None,
    author: AuthorOpt = None,
    metadata: MetadataOpt = None,
) -> None:
    """Bring back an old version's value as a new version (history is kept).

    [b]Examples[/b]

      $ confhub rollback models/claude-opus --to 1 --reason "bad change"
      $ confhub rollback models/claude-opus --to 3 --env production --expected-version 5
    """
    with session(cmd) as ctx:
        namespace, key = split_address(address)
        meta = WriteMeta.parse(reason, author, metadata)
        entry = ctx.tenant.rollback(namespace, key, to_version=to, env=env,
                                    expected_version=expected_version, dry_run=dry_run,
                                    **meta.kwargs())
        verb = "dry run: would roll back" if dry_run else "rolled back"
        ctx.out.result(marked(entry.to_dict(), dry_run), lambda: ctx.out.success(
            f"{verb} [bold]{namespace}/{key}[/bold] env={env} to the value of version {to} "
            f"→ version [bold]{entry.version}[/bold], revision {entry.revision}"))


@target_options
def changes(
    cmd: typer.Context,
    since: Annotated[int, typer.Option("--since", metavar="R", min=0,
                                       help="Changes after this revision.")] = 0,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, metavar="N",
                                       help="At most this many (a transaction is never split).")
                     ] = 1000,
    tenant: TenantOpt = "default",
) -> None:
    """List the tenant's changes after a revision, oldest first (the change feed).

    Every change carries the revision that made it; pass the last revision you saw as --since
    to continue where you left off.

    [b]Examples[/b]

      $ confhub changes
      $ confhub changes --since 120 --json | jq -r '.[].key'
    """
    with session(cmd) as ctx:
        feed = ctx.tenant.changes(since=since, limit=limit)
        ctx.out.result([c.to_dict() for c in feed], lambda: _feed_table(ctx.out, tenant, since,
                                                                        feed))


def _feed_table(out: Output, tenant: str, since: int, feed: list[Any]) -> None:
    if not feed:
        out.note(f"no changes in tenant {tenant} after revision {since}")
        return
    out.table(f"changes in tenant {tenant} after revision {since}",
              ["revision", "op", "namespace/key", "env", "version", "when", "author", "reason"],
              [(str(c.revision), Text(c.op, style=OP_STYLE.get(c.op, "")),
                f"{c.namespace}/{c.key}", c.env, str(c.version), short_time(c.created_at),
                c.author or "", c.reason or "") for c in feed])
