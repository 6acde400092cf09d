"""``stats`` and ``health``: figures about the store, and whether it answers.

``health`` exits 1 when the store is not ok, so it works directly as a probe in scripts and
container health checks.
"""

from __future__ import annotations

from typing import Any

import typer

from .common import session, target_options
from .output import Output, preview

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    app.command("stats")(stats)
    app.command("health")(health)


def _figures(out: Output, title: str, data: dict[str, Any]) -> None:
    """A two-column table; nested mappings (configs_per_namespace) get their own table."""
    flat = [(name, value) for name, value in data.items() if not isinstance(value, dict)]
    out.table(title, ["", "value"], [(name, preview(value) if not isinstance(value, str)
                                      else value) for name, value in flat])
    for name, value in data.items():
        if isinstance(value, dict) and value:
            out.table(name, ["", "value"], [(k, preview(v)) for k, v in value.items()])


@target_options(tenant=False)
def stats(cmd: typer.Context) -> None:
    """Show figures: configs, tenants, versions, storage size, configs per namespace.

    [b]Examples[/b]

      $ confhub stats
      $ confhub stats --url http://127.0.0.1:8011 --json
    """
    with session(cmd) as ctx:
        data = dict(ctx.hub.stats())
        ctx.out.result(data, lambda: _figures(ctx.out, "confhub stats", data))


@target_options(tenant=False)
def health(cmd: typer.Context) -> None:
    """Check that the store answers; exit 0 when healthy, 1 when not.

    [b]Examples[/b]

      $ confhub health
      $ confhub health --url http://127.0.0.1:8011 --json
    """
    with session(cmd) as ctx:
        data = dict(ctx.hub.health())
        ctx.out.result(data, lambda: _figures(ctx.out, "confhub health", data))
        if not data.get("ok", False):
            raise typer.Exit(1)
