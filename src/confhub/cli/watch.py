"""``watch``: print the tenant's changes as they commit, until interrupted.

The watch itself runs in the library's own thread (embedded: the hub's subscription; remote:
the reconnecting SSE client); this command only takes changes off a queue and prints them, so
Ctrl-C, ``--count`` and ``--timeout`` are honoured between changes.
"""

from __future__ import annotations

import queue
import sys
import time
from typing import Annotated, Any

import typer
from rich.text import Text

from ..errors import ConfhubError
from .common import (
    session,
    target_options,
)
from .history import OP_STYLE
from .output import Output, dumps, preview, short_time

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    app.command("watch")(watch)


@target_options
def watch(
    cmd: typer.Context,
    address: Annotated[str | None, typer.Argument(
        metavar="[NAMESPACE[/KEY]]", show_default=False,
        help="Only this namespace, or this key; everything in the tenant when left out.")
    ] = None,
    env: Annotated[str | None, typer.Option(
        "--env", "-e", metavar="ENV", help="Only changes to this env layer (default: all).")
    ] = None,
    since: Annotated[int | None, typer.Option(
        "--since", metavar="R", min=0,
        help="Start after this revision (replays what came since); default: from now.")
    ] = None,
    count: Annotated[int | None, typer.Option(
        "--count", "-n", metavar="N", min=1, help="Exit after N changes.")] = None,
    timeout: Annotated[float | None, typer.Option(
        "--timeout", metavar="SECONDS", min=0, help="Exit after this long.")] = None,
) -> None:
    """Print changes as they are committed, one line each, until Ctrl-C.

    Changes arrive in revision order, exactly once; the changes of one transaction share a
    revision. With --json each change is one JSON object on its own line.

    [b]Examples[/b]

      $ confhub watch
      $ confhub watch models --env production
      $ confhub watch models/claude-opus --since 120 --json | jq .value
    """
    namespace, _, key = (address or "").partition("/")
    changes: queue.SimpleQueue[Any] = queue.SimpleQueue()
    with session(cmd) as ctx:
        handle = ctx.tenant.watch(changes.put, namespace or None, key or None, env, since)
        try:
            _print_until(ctx.out, handle, changes, count, timeout)
        finally:
            handle.stop()


def _print_until(out: Output, handle: Any, changes: queue.SimpleQueue[Any],
                 count: int | None, timeout: float | None) -> None:
    deadline = None if timeout is None else time.monotonic() + timeout
    printed = 0
    if not out.json:
        out.note("watching for changes (Ctrl-C to stop)")
    while count is None or printed < count:
        wait = 0.2 if deadline is None else min(0.2, deadline - time.monotonic())
        if wait <= 0:
            return
        try:
            change = changes.get(timeout=wait)
        except queue.Empty:
            if not handle.running and handle.error is not None:
                raise _as_error(handle.error) from None
            continue
        _print(out, change)
        printed += 1


def _as_error(error: Exception) -> ConfhubError:
    return error if isinstance(error, ConfhubError) else ConfhubError(str(error))


def _print(out: Output, change: Any) -> None:
    if out.json:
        sys.stdout.write(dumps(change.to_dict(), indent=None) + "\n")
        sys.stdout.flush()
        return
    line = Text.assemble(
        (f"{short_time(change.created_at)}  ", "dim"), (f"r{change.revision:<6} ", "bold"),
        (f"{change.op:<8}", OP_STYLE.get(change.op, "")), f" {change.namespace}/{change.key}",
        (f" env={change.env}" if change.env != "base" else ""), f"  v{change.version}",
        ("" if change.deleted else f"  {preview(change.value)}"),
        ((f"  by {change.author}" if change.author else ""), "dim"),
        ((f"  — {change.reason}" if change.reason else ""), "dim"))
    out.print(line)
