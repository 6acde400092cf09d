"""Config as code: ``plan``, ``apply``, ``drift`` and ``sync`` over a config directory.

``plan`` and ``drift`` answer with terraform's ``-detailed-exitcode`` convention, so CI can
branch on them: 0 nothing to do / in sync, 1 error, 2 changes / drifted, 3 changes above
``--max-risk`` (refused). ``apply`` uses confhub's usual codes (4 conflict, 5 validation
failed) plus 3 when the plan is refused for its risk. The tenant is ``--tenant`` (or
CONFHUB_TENANT) when given, else ``tenant`` from the directory's confhub.toml, else
``default``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.text import Text

from ..codeplan import (
    Layout,
    Plan,
    apply_plan,
    find_drift,
    load_directory,
    make_plan,
    start_plan_rollout,
)
from ..codeplan.ownership import address_text
from ..codeplan.risk import Level, parse_level
from ..errors import InvalidRequest
from ..model import DEFAULT_TENANT
from .common import (
    AuthorOpt,
    Context,
    MetadataOpt,
    ReasonOpt,
    WriteMeta,
    session,
    target_options,
)
from .output import Output, dumps, short_time
from .rollouts import STRATEGY_OPTIONS, rollout_options, strategy_options

__all__ = ["register", "render_plan", "tenant_for"]

DirArg = Annotated[str, typer.Argument(metavar="DIR", show_default=False,
                                       help="The config directory (the desired state).")]
MaxRiskOpt = Annotated[str | None, typer.Option(
    "--max-risk", metavar="LEVEL",
    help="Refuse (exit 3) a plan riskier than LEVEL: LOW, MEDIUM, HIGH or CRITICAL "
         "\\[default: confhub.toml's max_risk, else no limit].")]
LayerOpt = Annotated[str | None, typer.Option(
    "--env", "-e", metavar="ENV", help="Only this env layer (base, production, ...).")]
PruneOpt = Annotated[bool, typer.Option(
    "--prune", help="Delete keys that an earlier apply from this directory created and whose "
                    "file is gone (never keys made by hand).")]

_ACTION_STYLE = {"create": ("+", "green"), "update": ("~", "yellow"), "delete": ("-", "red")}
_RISK_STYLE = {"LOW": "green", "MEDIUM": "yellow", "HIGH": "red", "CRITICAL": "bold red"}


def register(app: typer.Typer) -> None:
    app.command("plan")(plan)
    app.command("apply")(apply)
    app.command("drift")(drift)
    from .sync import sync  # a module of its own: it runs a file watcher

    app.command("sync")(sync)


def tenant_for(cmd: typer.Context, layout: Layout) -> str:
    """``--tenant``/CONFHUB_TENANT when given, else confhub.toml's, else ``default``."""
    source = cmd.get_parameter_source("tenant")
    if source is not None and source.name in ("COMMANDLINE", "ENVIRONMENT"):
        return str(cmd.params["tenant"])
    return layout.config.tenant or DEFAULT_TENANT


def max_risk_for(option: str | None, layout: Layout) -> Level | None:
    text = option or layout.config.max_risk
    return parse_level(text) if text else None


@contextmanager
def errors_exit_1(cmd: typer.Context) -> Iterator[Context]:
    """``session``, but every error exits 1: in plan and drift, 2 and 3 mean results."""
    try:
        with session(cmd) as ctx:
            yield ctx
    except typer.Exit as done:
        raise typer.Exit(1 if done.exit_code not in (0, 130) else done.exit_code) from None


def render_plan(out: Output, plan: Plan) -> None:
    """The plan for people: one table row per field change, validation, then the summary."""
    rows: list[list[Any]] = []
    for change in plan.changes:
        sign, style = _ACTION_STYLE[change.action]
        name = Text(f"{sign} {address_text(change.address)}", style=style)
        risk = Text(change.risk, style=_RISK_STYLE[change.risk])
        shown = list(change.fields) if change.action == "update" else []
        if not shown:
            what = ("created" if change.action == "create" else "deleted") + (
                " (secret)" if change.secret else "")
            rows.append([name, what, "", risk])
        for index, item in enumerate(shown):
            old = "***" if item.secret else dumps(item.old, indent=None)
            new = "***" if item.secret else dumps(item.new, indent=None)
            text = {"add": f"+ {new}", "remove": f"- {old}", "replace": f"{old} → {new}"}
            rows.append([name if index == 0 else "", item.shown_path, text[item.op],
                         risk if index == 0 else ""])
    if rows:
        out.table(f"plan for tenant {plan.tenant} (revision {plan.revision})",
                  ["key", "field", "change", "risk"], rows)
    for change in plan.changes:
        for issue in change.report.errors:
            out.print(f"[red]✗ {escape(change.file or address_text(change.address))}: "
                      f"{escape(issue.path or '/')}: {escape(issue.message)}[/red]")
        for issue in change.report.warnings:
            out.print(f"[yellow]! {escape(change.file or address_text(change.address))}: "
                      f"{escape(issue.message)}[/yellow]")
        if change.reasons and change.risk != "LOW":
            out.print(f"[dim]{escape(address_text(change.address))}: "
                      f"{escape(', '.join(change.reasons))}[/dim]")
    if plan.plan_reasons:
        out.print(f"[dim]plan: {escape(', '.join(plan.plan_reasons))}[/dim]")
    if plan.orphans and not plan.prune:
        out.print(f"[dim]{len(plan.orphans)} key(s) this directory created have no file any "
                  "more; --prune deletes them: "
                  + escape(", ".join(address_text(a) for a in plan.orphans)) + "[/dim]")
    summary = Text(plan.summary())
    if plan.changes:
        summary.stylize(_RISK_STYLE[plan.risk.name], len(summary) - len(plan.risk.name))
    out.print(summary)
    if plan.refused:
        assert plan.max_risk is not None
        out.print(f"[bold red]refused: risk {plan.risk.name} is above --max-risk "
                  f"{plan.max_risk.name}[/bold red]")


@target_options
def plan(
    cmd: typer.Context,
    directory: DirArg,
    env: LayerOpt = None,
    prune: PruneOpt = False,
    max_risk: MaxRiskOpt = None,
) -> None:
    """Show what apply would change: per key a field-by-field diff, validation by the store's
    schemas, and a risk level per change and overall. Writes nothing.

    Exit codes (like terraform plan -detailed-exitcode): 0 nothing to do, 1 error,
    2 changes, 3 changes above --max-risk (refused).

    [b]Examples[/b]

      $ confhub plan config/
      $ confhub plan config/ --env production --max-risk HIGH --json
    """
    with errors_exit_1(cmd) as ctx:
        layout = load_directory(directory, env=env)
        with ctx.out.progress("planning…") as update:
            result = make_plan(ctx.hub, tenant_for(cmd, layout), layout, env=env, prune=prune,
                               max_risk=max_risk_for(max_risk, layout), progress=update)
        ctx.out.result(result.to_dict(), lambda: render_plan(ctx.out, result))
    raise typer.Exit(3 if result.refused else 2 if result.changes else 0)


@target_options
@strategy_options(after="rollout")
def apply(
    cmd: typer.Context,
    directory: DirArg,
    env: LayerOpt = None,
    prune: PruneOpt = False,
    max_risk: MaxRiskOpt = None,
    expect_revision: Annotated[int | None, typer.Option(
        "--expect-revision", metavar="R", min=0,
        help="Refuse (exit 4) unless the tenant is still at revision R (the one plan showed).")
    ] = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Have the store check the whole batch; commit nothing.")] = False,
    reason: ReasonOpt = None,
    author: AuthorOpt = None,
    metadata: MetadataOpt = None,
    rollout: Annotated[str | None, typer.Option(
        "--rollout", metavar="STRATEGY",
        help="Start a staged rollout of the plan instead of committing it: canary, linear, "
             "exponential or all-at-once (docs/rollouts.md).")] = None,
) -> None:
    """Make the store match the directory: the plan, committed as one transaction (all or
    nothing), with the git commit, branch and dirty flag as metadata. With --rollout the
    plan (and the directory's ownership record) is staged as a rollout instead, committed
    when the rollout completes; --steps, --bake, --selector... are those of rollout start.

    [b]Examples[/b]

      $ confhub apply config/ --reason "raise opus limit (PR 42)"
      $ confhub apply config/ --max-risk HIGH --expect-revision 17 --prune
      $ confhub apply config/ --rollout canary --bake 10m --selector 'region=eu'
    """
    meta = WriteMeta.parse(reason, author, metadata)
    with session(cmd) as ctx:
        staged = rollout_options(cmd)
        given = [name for name in STRATEGY_OPTIONS
                 if getattr(cmd.get_parameter_source(name), "name", None) == "COMMANDLINE"]
        if rollout is None and given:
            raise InvalidRequest("--steps, --bake, --selector and the other rollout options "
                                 "need --rollout STRATEGY")
        if rollout is not None and (dry_run or metadata):
            raise InvalidRequest("--rollout takes no --dry-run or --metadata (a rollout's "
                                 "commit carries the rollout id; git metadata is in the "
                                 "ownership record)")
        layout = load_directory(directory, env=env)
        with ctx.out.progress("planning…") as update:
            result = make_plan(ctx.hub, tenant_for(cmd, layout), layout, env=env, prune=prune,
                               max_risk=max_risk_for(max_risk, layout), progress=update)
            if rollout is not None:
                done = start_plan_rollout(ctx.hub, result, strategy=rollout,
                                          reason=meta.reason, author=meta.author,
                                          expect_revision=expect_revision, progress=update,
                                          **staged)
            else:
                done = apply_plan(ctx.hub, result, reason=meta.reason, author=meta.author,
                                  metadata=meta.metadata, dry_run=dry_run,
                                  expect_revision=expect_revision, progress=update)

        def human() -> None:
            render_plan(ctx.out, result)
            if done.rollout is not None:
                ctx.out.success(
                    f"rollout [bold]{done.rollout.id}[/bold] started in tenant "
                    f"[bold]{result.tenant}[/bold] at {done.rollout.percent:g} %; the plan "
                    f"is committed when it completes (confhub rollout status "
                    f"{done.rollout.id})")
            elif dry_run:
                ctx.out.success("dry run: the store accepts this plan; nothing was written")
            elif done.revision is not None:
                ctx.out.success(f"applied to tenant [bold]{result.tenant}[/bold] at revision "
                                f"{done.revision}")

        ctx.out.result(done.to_dict(), human)


@target_options
def drift(
    cmd: typer.Context,
    directory: DirArg,
) -> None:
    """Read-only: keys changed in the store since the last apply from DIR (who, when, why)
    and files changed since. Exit 0 in sync, 2 drifted, 1 error.

    [b]Examples[/b]

      $ confhub drift config/
      $ confhub drift config/ --json | jq '.store[].author'
    """
    with errors_exit_1(cmd) as ctx:
        layout = load_directory(directory)
        report = find_drift(ctx.hub, tenant_for(cmd, layout), layout)

        def human() -> None:
            out = ctx.out
            if report.applied_revision is None:
                out.print(f"[yellow]never applied[/yellow] from {escape(report.source)} to "
                          f"tenant {escape(report.tenant)}: {len(report.files)} file(s) new")
                return
            if report.store:
                out.table("changed in the store since the last apply "
                          f"(revision {report.applied_revision})",
                          ["key", "op", "version", "by", "when", "reason"],
                          [[address_text(s.address), s.op, s.version, s.author or "",
                            short_time(s.at), s.reason or ""] for s in report.store])
            if report.files:
                out.table("files changed since the last apply", ["file", "status"],
                          [[f.file, f.status] for f in report.files])
            if not report.drifted:
                out.success(f"in sync with tenant [bold]{escape(report.tenant)}[/bold] "
                            f"(last apply at revision {report.applied_revision})")
            else:
                out.print(f"[yellow]drifted:[/yellow] {len(report.store)} key(s) changed in "
                          f"the store, {len(report.files)} file(s) changed")

        ctx.out.result(report.to_dict(), human)
    raise typer.Exit(2 if report.drifted else 0)
