"""Day-two commands: ``retention``, ``compact``, ``doctor``, ``backup`` (and the whole-store
form of ``restore FILE``, which ``snapshots.restore`` hands over to :func:`restore_store`).

``backup`` and ``restore FILE`` work on a database (``--db``): they read or replace the whole
store, every tenant, which no single token over HTTP should be able to do. ``backup`` is safe
while a server keeps serving the same database; after ``restore`` restart the servers of that
database (their caches hold the old state).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

from ..errors import InvalidRequest
from .common import TenantOpt, session, target_options
from .output import Output

__all__ = ["register", "restore_store"]

retention_app = typer.Typer(
    name="retention", no_args_is_help=True,
    help="How much history each tenant or namespace keeps.\n\n"
         "[b]Examples[/b]\n\n  $ confhub retention set --keep-last 50\n"
         "  $ confhub retention show --tenant acme")

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def register(app: typer.Typer) -> None:
    app.add_typer(retention_app)
    app.command("compact")(compact)
    app.command("doctor")(doctor)
    app.command("backup")(backup)


def parse_duration(text: str) -> int:
    """``90``, ``90s``, ``15m``, ``12h``, ``30d``, ``2w`` -> seconds."""
    found = re.fullmatch(r"\s*(\d+)\s*([smhdw]?)\s*", text)
    if not found or int(found.group(1)) < 1:
        raise InvalidRequest(f"--keep-for must be a duration like 3600s, 90m, 12h, 30d or 2w, "
                             f"not {text!r}")
    return int(found.group(1)) * _UNITS[found.group(2) or "s"]


@retention_app.command("set")
@target_options
def retention_set(
    cmd: typer.Context,
    keep_last: Annotated[int | None, typer.Option(
        "--keep-last", min=1, metavar="N", help="Keep the last N versions of each key.")
    ] = None,
    keep_for: Annotated[str | None, typer.Option(
        "--keep-for", metavar="DURATION",
        help="Keep versions younger than this (3600s, 90m, 12h, 30d, 2w).")] = None,
    namespace: Annotated[str | None, typer.Option(
        "--namespace", "-n", metavar="NS",
        help="The policy of one namespace (else the tenant's).")] = None,
    clear: Annotated[bool, typer.Option("--clear", help="Remove the policy.")] = False,
    tenant: TenantOpt = "default",
) -> None:
    """Set a retention policy; a version is kept while either limit keeps it.

    Current versions, the versions snapshots need and rollback targets are always kept.

    [b]Examples[/b]

      $ confhub retention set --keep-last 50
      $ confhub retention set --namespace flags --keep-last 10 --keep-for 30d
      $ confhub retention set --namespace flags --clear
    """
    with session(cmd) as ctx:
        if clear == (keep_last is not None or keep_for is not None):
            raise InvalidRequest("give --keep-last and/or --keep-for, or --clear")
        seconds = parse_duration(keep_for) if keep_for is not None else None
        policy = ctx.hub.set_retention(tenant, namespace=namespace, keep_last=keep_last,
                                       keep_for_seconds=seconds)
        ctx.out.result(policy.to_dict(), lambda: ctx.out.success(
            f"retention of {tenant}{'/' + namespace if namespace else ''}: "
            + (_describe(policy.to_dict()) if not clear else "keep everything")))


@retention_app.command("show")
@target_options
def retention_show(
    cmd: typer.Context,
    tenant: TenantOpt = "default",
) -> None:
    """Show a tenant's retention policies (none: everything is kept).

    [b]Examples[/b]

      $ confhub retention show --tenant acme --json
    """
    with session(cmd) as ctx:
        rows = [p.to_dict() for p in ctx.hub.retention(tenant)]
        ctx.out.result(rows, lambda: ctx.out.table(
            f"retention of tenant {tenant}", ["namespace", "policy"],
            [(r["namespace"] or "(whole tenant)", _describe(r)) for r in rows]
            or [("(none)", "keep everything")]))


def _describe(policy: dict[str, Any]) -> str:
    parts = []
    if policy.get("keep_last") is not None:
        parts.append(f"last {policy['keep_last']} versions")
    if policy.get("keep_for_seconds") is not None:
        parts.append(f"versions younger than {policy['keep_for_seconds']} s")
    return " or ".join(parts) or "keep everything"


@target_options
def compact(
    cmd: typer.Context,
    tenant: Annotated[str | None, typer.Option(
        "--tenant", "-t", metavar="TENANT",
        help="Only this tenant (with --url: required) \\[default: every tenant].")] = None,
    vacuum: Annotated[bool, typer.Option(
        "--vacuum", help="Then rewrite the SQLite file (VACUUM) to give all free space back; "
                         "holds the write lock meanwhile.")] = False,
) -> None:
    """Apply the retention policies now (a server also does it in the background).

    [b]Examples[/b]

      $ confhub compact
      $ confhub compact --tenant acme --json
      $ confhub compact --vacuum
    """
    if vacuum:
        _local_only(cmd, "--vacuum")
    with session(cmd) as ctx:
        with ctx.out.progress("compacting…"):
            report = ctx.hub.compact(tenant, vacuum=True) if vacuum \
                else ctx.hub.compact(tenant)
        ctx.out.result(report, lambda: _compacted(ctx.out, report))


def _compacted(out: Output, report: dict[str, Any]) -> None:
    out.table("compaction", ["tenant", "versions removed", "compacted revision"],
              [(name, t["removed"], t["compacted_revision"])
               for name, t in report["tenants"].items()] or [("(no policy)", 0, "")])
    space = report.get("space")
    if space:
        out.note(f"space: {space['size_mb_before']} MB -> {space['size_mb_after']} MB "
                 f"({space['method']})")


@target_options
def doctor(
    cmd: typer.Context,
    tenant: Annotated[str | None, typer.Option(
        "--tenant", "-t", metavar="TENANT", help="Only this tenant \\[default: all].")] = None,
) -> None:
    """Verify checksums, revision continuity, current pointers, cache vs storage and (SQLite)
    integrity_check. Reports, never repairs; exit 1 when anything is found.

    With --url the server runs the checks, so its own cache is compared with storage.

    [b]Examples[/b]

      $ confhub doctor
      $ confhub doctor --url http://127.0.0.1:8011 --json
    """
    with session(cmd) as ctx:
        with ctx.out.progress("checking…"):
            report = ctx.hub.doctor(tenant)
        ctx.out.result(report, lambda: _doctored(ctx.out, report))
    if not report["ok"]:
        raise typer.Exit(1)


def _doctored(out: Output, report: dict[str, Any]) -> None:
    checked = report["checked"]
    if report["ok"]:
        out.success(f"no findings ({checked['tenants']} tenants, {checked['versions']:,} "
                    f"versions, {checked['cached_views']} cached views checked)")
        return
    out.table(f"{len(report['findings'])} findings", ["check", "tenant", "finding"],
              [(f["check"], f["tenant"] or "", f["message"]) for f in report["findings"]])


@contextmanager
def _bar(out: Output, description: str) -> Iterator[Callable[[int, int], None]]:
    """A progress bar on stderr for people at a terminal (silent otherwise)."""
    if out.json or not out.err.is_terminal:
        yield lambda done, total: None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
               TextColumn("{task.completed:,}/{task.total:,} rows"))
    with Progress(*columns, console=out.err, transient=True) as bar:
        task = bar.add_task(description, total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


def _local_only(cmd: typer.Context, what: str) -> None:
    if cmd.params.get("url"):
        raise InvalidRequest(f"{what} works on a database: give --db PATH|DSN (it is safe "
                             "while a server serves the same database)")


@target_options(tenant=False, remote=False)
def backup(
    cmd: typer.Context,
    file: Annotated[str, typer.Argument(metavar="FILE", show_default=False,
                                        help="Where to write the backup.")],
) -> None:
    """Back up the whole store (every tenant, history, schemas, snapshots, retention, tokens,
    audit; secrets stay encrypted) to FILE, consistent while a server keeps writing.

    [b]Examples[/b]

      $ confhub backup /var/backups/confhub-$(date +%F).backup
      $ confhub backup nightly.backup --db postgresql://confhub@db/confhub --json
    """
    with session(cmd) as ctx:
        with _bar(ctx.out, "backing up") as progress:
            figures = ctx.hub.backup(file, progress=progress)
        ctx.out.result(figures, lambda: ctx.out.success(
            f"backed up {figures['rows']:,} rows to {file} ({figures['bytes']:,} bytes, "
            f"sha256 {figures['sha256'][:16]}…)"))


def restore_store(cmd: typer.Context, file: str, force: bool) -> None:
    """``confhub restore FILE [--force]``: replace the whole store with a backup."""
    _local_only(cmd, "restore FILE")
    with session(cmd) as ctx:
        with _bar(ctx.out, "checking and restoring") as progress:
            figures = ctx.hub.restore_backup(file, force=force, progress=progress)
        report = figures["doctor"]

        def human() -> None:
            ctx.out.success(f"restored {figures['rows']:,} rows from {file} (made on "
                            f"{figures['backend']}, schema {figures['schema']})")
            _doctored(ctx.out, report)

        ctx.out.result(figures, human)
    if not figures["doctor"]["ok"]:
        raise typer.Exit(1)
