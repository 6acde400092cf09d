"""``rollout start|status|ls|advance|pause|resume|rollback`` and ``consumers``.

A rollout delivers a change to a growing share of the consumers, watches their health and
completes or rolls back by itself (DESIGN.md section 8; docs/rollouts.md). Automatic steps
are driven by a running ``confhub serve`` (or any open hub) on the same database.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Annotated, Any

import typer

from ..errors import InvalidRequest
from ..model import BASE_ENV, now_micros
from .common import (
    AuthorOpt,
    Command,
    EnvOpt,
    ReasonOpt,
    TenantOpt,
    WriteMeta,
    session,
    split_address,
    target_options,
    with_options,
)
from .inputs import load_document, read_value
from .output import Output, short_time

__all__ = ["STRATEGY_OPTIONS", "register", "rollout_app", "rollout_options", "strategy_options"]

rollout_app = typer.Typer(
    name="rollout", no_args_is_help=True,
    help="Staged rollouts: deliver a change to a growing cohort, gate on health.\n\n"
         "[b]Examples[/b]\n\n"
         "  $ confhub rollout start models/claude-opus -f new.yaml --steps 10,50,100 --bake 2m\n"
         "  $ confhub rollout status r-1\n  $ confhub rollout rollback r-1 --reason 'errors'",
)

IdArg = Annotated[str, typer.Argument(metavar="ID", show_default=False,
                                      help="The rollout id (r-1, r-2, ...).")]


StepsOpt = Annotated[str | None, typer.Option(
    "--steps", metavar="P1,P2,..", help="Percentages of the cohort, ending at 100.")]
BakeOpt = Annotated[str | None, typer.Option(
    "--bake", metavar="DURATION", help="Time each step runs healthy before the next "
                                       "(30s, 5m, 1h) [default: 5m].")]
FinalBakeOpt = Annotated[str | None, typer.Option(
    "--final-bake", metavar="DURATION", help="Bake of the last step, before the commit.")]
MaxFailureOpt = Annotated[str, typer.Option(
    "--max-failure", metavar="SHARE", help="Failure share that rolls back (0-1 or 5%).")]
MinReportsOpt = Annotated[int, typer.Option("--min-reports", min=1, metavar="N",
                                            help="Reports needed before failures count.")]
MinAckOpt = Annotated[str, typer.Option(
    "--min-ack", metavar="SHARE", help="Share of known cohort consumers that must report "
                                       "applied within each bake (0: off).")]
ManualOpt = Annotated[bool, typer.Option("--manual", help="Never advance by itself; only by hand.")]
SelectorOpt = Annotated[str | None, typer.Option(
    "--selector", metavar="LABELS", help="Eligible consumers, e.g. 'region in (eu,us)'.")]
ClientOpt = Annotated[list[str] | None, typer.Option(
    "--client", metavar="CLIENT_ID", help="A canary consumer, in from the first step; "
                                          "repeat for more.")]
GatePrometheusOpt = Annotated[str | None, typer.Option(
    "--gate-prometheus", metavar="URL", help="Prometheus to ask while it runs.")]
GateQueryOpt = Annotated[str | None, typer.Option(
    "--gate-query", metavar="PROMQL", help="Any result of this query rolls back.")]


# How a change set is delivered, shared by ``rollout start`` and ``apply --rollout``:
# parameter name -> (annotation, default), in the order ``--help`` lists them.
STRATEGY_OPTIONS: dict[str, tuple[Any, Any]] = {
    "steps": (StepsOpt, None),
    "bake": (BakeOpt, None),
    "final_bake": (FinalBakeOpt, None),
    "max_failure": (MaxFailureOpt, "0"),
    "min_reports": (MinReportsOpt, 1),
    "min_ack": (MinAckOpt, "0"),
    "manual": (ManualOpt, False),
    "selector": (SelectorOpt, None),
    "client": (ClientOpt, None),
    "gate_prometheus": (GatePrometheusOpt, None),
    "gate_query": (GateQueryOpt, None),
}


def strategy_options(after: str) -> Callable[[Command], Command]:
    """Add :data:`STRATEGY_OPTIONS` to a command, right after its option ``after`` (the one
    that names the strategy); the command reads them with :func:`rollout_options`."""
    return with_options(STRATEGY_OPTIONS, after=after)


def rollout_options(cmd: typer.Context) -> dict[str, Any]:
    """The keyword arguments of ``rollouts.start`` from the :data:`STRATEGY_OPTIONS` given
    to the running command."""
    given = cmd.params
    return {"steps": given["steps"], "bake": given["bake"], "final_bake": given["final_bake"],
            "max_failure": given["max_failure"], "min_reports": given["min_reports"],
            "min_ack": given["min_ack"], "auto": not given["manual"],
            "selector": given["selector"], "clients": given["client"],
            "gate_prometheus": given["gate_prometheus"], "gate_query": given["gate_query"]}


def register(app: typer.Typer) -> None:
    app.add_typer(rollout_app)
    app.command("consumers")(consumers)


@rollout_app.command("start")
@target_options
@strategy_options(after="strategy")
def start(
    cmd: typer.Context,
    address: Annotated[str | None, typer.Argument(
        metavar="NAMESPACE/KEY", show_default=False,
        help="The key to change (or give --ops FILE for several).")] = None,
    value: Annotated[str | None, typer.Argument(
        metavar="VALUE", show_default=False, help="The new value (JSON/YAML), or '-'.")] = None,
    file: Annotated[str | None, typer.Option("--file", "-f", metavar="FILE",
                                             help="Read the new value from FILE.")] = None,
    delete: Annotated[bool, typer.Option("--delete", help="Stage a deletion of the key.")
                      ] = False,
    ops: Annotated[str | None, typer.Option(
        "--ops", metavar="FILE", help="A list of transaction ops (put/patch/delete) to stage "
                                      "as one change set.")] = None,
    strategy: Annotated[str | None, typer.Option(
        "--strategy", metavar="PRESET",
        help="canary, linear, exponential or all-at-once.")] = None,
    env: EnvOpt = BASE_ENV,
    reason: ReasonOpt = None,
    author: AuthorOpt = None,
) -> None:
    """Start a staged rollout of one key (or --ops FILE), validated like any write.

    [b]Examples[/b]

      $ confhub rollout start models/claude-opus -f new.yaml --steps 10,50,100 --bake 2m \\
          --max-failure 0 --selector 'region=eu' --reason "raise limit"
      $ confhub rollout start routing/tiers '{"fast": 2}' --strategy canary
      $ confhub rollout start --ops change.yaml --strategy linear --bake 10m
    """
    with session(cmd) as ctx:
        change = _change(address, value, file, delete, ops, env)
        meta = WriteMeta.parse(reason, author, None)
        rollout = ctx.tenant.rollouts.start(
            change, strategy=strategy, reason=meta.reason, author=meta.author,
            **rollout_options(cmd))
        ctx.out.result(rollout.to_dict(now=now_micros()), lambda: ctx.out.success(
            f"rollout [bold]{rollout.id}[/bold] started: {', '.join(rollout.keys)} at "
            f"{rollout.percent:g} % (steps {', '.join(f'{s:g}' for s in rollout.strategy.steps)})"
        ))


def _change(address: str | None, value: str | None, file: str | None, delete: bool,
            ops: str | None, env: str) -> list[dict[str, Any]]:
    if ops is not None:
        if address is not None or value is not None or file is not None or delete:
            raise InvalidRequest("give --ops FILE or NAMESPACE/KEY with a value, not both")
        loaded = load_document(ops)
        items = loaded.get("ops") if isinstance(loaded, dict) else loaded
        if not isinstance(items, list):
            raise InvalidRequest(f"{ops} must hold a list of ops (or {{\"ops\": [...]}})")
        return [dict(item) if isinstance(item, dict) else item for item in items]
    if address is None:
        raise InvalidRequest("name the key (NAMESPACE/KEY) or give --ops FILE")
    namespace, key = split_address(address)
    if delete:
        if value is not None or file is not None:
            raise InvalidRequest("--delete takes no value")
        return [{"op": "delete", "namespace": namespace, "key": key, "env": env}]
    return [{"op": "put", "namespace": namespace, "key": key, "env": env,
             "value": read_value(value, file)}]


@rollout_app.command("status")
@target_options
def status(
    cmd: typer.Context,
    rollout_id: IdArg,
) -> None:
    """Show a rollout: state, step, cohort, who applied, failed or is silent, bake left.

    [b]Examples[/b]

      $ confhub rollout status r-1
      $ confhub rollout status r-1 --json
    """
    with session(cmd) as ctx:
        rollout = ctx.tenant.rollouts.get(rollout_id)
        ctx.out.result(rollout.to_dict(now=now_micros()), lambda: _show(ctx.out, rollout))


def _show(out: Output, rollout: Any) -> None:
    steps = " -> ".join(f"[bold]{s:g}%[/bold]" if i == rollout.step else f"{s:g}%"
                        for i, s in enumerate(rollout.strategy.steps))
    out.success(f"rollout [bold]{rollout.id}[/bold] {rollout.state}: {steps}")
    left = rollout.bake_left(now_micros())
    lines = [("keys", ", ".join(rollout.keys)),
             ("cohort", str(rollout.cohort.selector or "every consumer")
              + (f" + {', '.join(sorted(rollout.cohort.clients))}"
                 if rollout.cohort.clients else "")),
             ("bake left", f"{left:.0f}s" if rollout.state == "running" else "-"),
             ("last event", f"{rollout.event}"
              + (f": {rollout.event_reason}" if rollout.event_reason else "")),
             ("reason", rollout.reason or "-"), ("author", rollout.author or "-")]
    health = rollout.health
    if health is not None:
        lines += [("consumers", str(len(health.cohort))),
                  ("applied", ", ".join(health.applied) or "-"),
                  ("failed", ", ".join(f"{c} ({r})" if r else c for c, r in health.failed)
                   or "-"),
                  ("silent", ", ".join(health.silent) or "-")]
    out.table(None, ["", ""], lines)


@rollout_app.command("ls")
@target_options
def ls(
    cmd: typer.Context,
    state: Annotated[str | None, typer.Option(
        "--state", metavar="STATE", help="running, paused, completed or rolled_back.")] = None,
    tenant: TenantOpt = "default",
) -> None:
    """List the tenant's rollouts, oldest first.

    [b]Examples[/b]

      $ confhub rollout ls
      $ confhub rollout ls --state running --json
    """
    with session(cmd) as ctx:
        items = ctx.tenant.rollouts.list(state=state)
        now = now_micros()
        ctx.out.result([r.to_dict(now=now) for r in items], lambda: ctx.out.table(
            f"rollouts of tenant {tenant}", ["id", "state", "step", "keys", "updated", "reason"],
            [(r.id, r.state, f"{r.percent:g}%", _clip(", ".join(r.keys), 40),
              short_time(r.to_dict()["updated_at"]), _clip(r.reason or "", 30))
             for r in items]) if items else ctx.out.note(f"no rollouts in tenant {tenant}"))


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _mover(action: str, summary: str, example: str) -> Any:
    def command(
        cmd: typer.Context,
        rollout_id: IdArg,
        reason: ReasonOpt = None,
        author: AuthorOpt = None,
    ) -> None:
        with session(cmd) as ctx:
            meta = WriteMeta.parse(reason, author, None)
            rollout = getattr(ctx.tenant.rollouts, action)(rollout_id, reason=meta.reason,
                                                          author=meta.author)
            ctx.out.result(rollout.to_dict(now=now_micros()), lambda: ctx.out.success(
                f"rollout [bold]{rollout.id}[/bold] {rollout.state} at {rollout.percent:g} %"))

    command.__doc__ = f"{summary}\n\n    [b]Examples[/b]\n\n      {example}\n"
    command.__name__ = action
    return target_options(command)  # after naming it: the decorator copies name and doc


for _action, _summary, _example in (
    ("advance", "Go to the next step now (at the last step: complete and commit).",
     "$ confhub rollout advance r-1 --reason 'dashboards are green'"),
    ("pause", "Hold the rollout at its step (failures still roll it back).",
     "$ confhub rollout pause r-1"),
    ("resume", "Run a paused rollout again; its step's bake starts over.",
     "$ confhub rollout resume r-1"),
    ("rollback", "Stop: the cohort returns to the committed values, nothing is committed.",
     "$ confhub rollout rollback r-1 --reason 'latency up'"),
):
    rollout_app.command(_action)(_mover(_action, _summary, _example))


@target_options
def consumers(
    cmd: typer.Context,
    client: Annotated[str | None, typer.Option("--client", metavar="CLIENT_ID",
                                               help="Show one consumer.")] = None,
    tenant: TenantOpt = "default",
) -> None:
    """List the consumers seen in the tenant: labels, last seen, revision, rollouts, reports.

    [b]Examples[/b]

      $ confhub consumers --tenant acme
      $ confhub consumers --client api-7 --json
    """
    with session(cmd) as ctx:
        items = ctx.tenant.consumers(client)
        now = time.time()
        ctx.out.result([c.to_dict() for c in items], lambda: ctx.out.table(
            f"consumers of tenant {tenant}",
            ["client", "labels", "last seen", "revision", "connected", "rollouts", "last report"],
            [(c.client_id, ",".join(f"{k}={v}" for k, v in c.labels.items()),
              f"{now - c.last_seen.timestamp():.0f}s ago", str(c.revision),
              "yes" if c.connected else "no", ", ".join(c.rollouts) or "-",
              (f"{c.reports[0]['rollout']} {c.reports[0]['status']}" if c.reports else "-"))
             for c in items]) if items else ctx.out.note(f"no consumers seen in tenant {tenant}"))
