"""``sync``: apply a config directory now, and with ``--watch`` on every saved change."""

from __future__ import annotations

import signal
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from ..codeplan.sync import SyncRound, sync_once, watch_and_sync
from .codeplan import DirArg, MaxRiskOpt, PruneOpt, tenant_for
from .common import (
    AuthorOpt,
    ReasonOpt,
    WriteMeta,
    session,
    target_options,
)
from .output import Output, dumps

__all__ = ["sync"]


def _printer(out: Output) -> Any:
    def report(round_: SyncRound) -> None:
        if out.json:
            print(dumps(round_.to_dict(), indent=None), flush=True)
            return
        stamp = datetime.now(UTC).strftime("%H:%M:%S")
        if round_.error is not None:
            out.print(f"[dim]{stamp}[/dim] [bold red]refused:[/bold red] "
                      f"{escape(round_.error.message)} [dim](nothing applied; still "
                      "watching)[/dim]")
        elif round_.result is not None and round_.result.revision is not None:
            out.print(f"[dim]{stamp}[/dim] [green]applied[/green] at revision "
                      f"{round_.result.revision}: {escape(round_.result.plan.summary())}")
        else:
            out.print(f"[dim]{stamp}[/dim] in sync")
    return report


@target_options
def sync(
    cmd: typer.Context,
    directory: DirArg,
    watch: Annotated[bool, typer.Option(
        "--watch", "-w", help="Keep running: apply again on every saved change (debounced).")
    ] = False,
    debounce: Annotated[int, typer.Option("--debounce", metavar="MS", min=10,
                                          help="Wait for saves to settle this long.")] = 300,
    prune: PruneOpt = False,
    max_risk: MaxRiskOpt = None,
    reason: ReasonOpt = None,
    author: AuthorOpt = None,
) -> None:
    """Apply DIR now; with --watch, again after every saved change. A state that cannot be
    applied whole (a broken file, a value a schema refuses) is reported and nothing of it is
    applied; watching carries on. One JSON line per round with --json.

    [b]Examples[/b]

      $ confhub sync config/ --watch
      $ confhub sync config/ --watch --max-risk MEDIUM --json
    """
    from ..codeplan.risk import parse_level

    meta = WriteMeta.parse(reason, author, None)
    level = parse_level(max_risk) if max_risk else None
    options: dict[str, Any] = {"max_risk": level, "prune": prune,
                               "reason": meta.reason or "sync",
                               "author": meta.author}
    root = Path(directory)
    with session(cmd) as ctx:
        report = _printer(ctx.out)

        def name(layout: Any) -> str:
            return tenant_for(cmd, layout)

        if not watch:
            outcome = sync_once(ctx.hub, name, root, **options)
            report(outcome)
            if outcome.error is not None:
                raise outcome.error
            return
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        ctx.out.note(f"watching {directory} (Ctrl-C stops)")
        watch_and_sync(ctx.hub, name, root, report, stop=stop, debounce_ms=debounce,
                       **options)
