"""The ``confhub`` command line: a Typer app built from one module per command group.

It talks to the store only through the public API (``confhub.open``), against a server
(``--url``) or a local database (``--db``), so it behaves exactly like the library. Exit codes are
the errors' own (``ConfhubError.exit_code``): 0 ok, 1 error, 2 usage, 3 not found, 4 conflict,
5 validation failed.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

import confhub

from . import (
    admin,
    backup,
    bench,
    codeplan,
    edit,
    entries,
    exporting,
    flags,
    history,
    mirror,
    operations,
    rollouts,
    schemas,
    security,
    serve,
    snapshots,
    tenants,
    txn,
    watch,
)

__all__ = ["app", "build_app", "main"]

_HELP = """Versioned, multi-tenant configuration: get, set, history, rollback and more.

Works on a local database (--db, CONFHUB_DB, default ./confhub.db) or a server
(--url / CONFHUB_URL, --token / CONFHUB_TOKEN). Addresses are NAMESPACE/KEY.
--json on any command prints stable JSON for scripts.

Exit codes: 0 ok, 1 error, 2 usage, 3 not found, 4 conflict, 5 validation failed.

[b]Examples[/b]

  $ confhub set models/claude-opus '{"max_tokens": 8192}' --reason "raise limit"
  $ confhub get models/claude-opus
  $ confhub history models/claude-opus
  $ confhub rollback models/claude-opus --to 1
  $ confhub serve
"""


def _version(value: bool) -> None:
    if value:
        typer.echo(f"confhub {confhub.__version__}")
        raise typer.Exit()


def _root(
    show_version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    """Root options only; every real option belongs to a command."""


def _no_flag_metavar() -> None:
    """Flags take no value, so help must not show one: typer prints ``<bool>`` beside every
    ``--json`` and ``--dry-run`` (as if ``--json <bool>`` were the syntax). Options that take
    a value keep theirs."""
    from typer.core import TyperOption

    shown = TyperOption.display_type_rich
    if getattr(shown, "_confhub_flags", False):
        return

    def display_type_rich(self: TyperOption, ctx: Any) -> str | None:
        if self.is_flag and self.metavar is None:
            return None
        return shown(self, ctx)

    display_type_rich._confhub_flags = True  # type: ignore[attr-defined]
    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]


def build_app() -> typer.Typer:
    """The app with every command registered (``app`` below is the one the script runs)."""
    _no_flag_metavar()
    app = typer.Typer(
        name="confhub",
        help=_HELP,
        no_args_is_help=True,
        rich_markup_mode="rich",
        context_settings={"help_option_names": ["-h", "--help"]},
        pretty_exceptions_enable=False,
        add_completion=False,
    )
    app.callback()(_root)
    for module in (entries, edit, history, watch, txn, backup, snapshots, tenants, schemas, admin,
                   security, serve, flags, bench, operations, rollouts, codeplan, exporting,
                   mirror):
        module.register(app)
    return app


app = build_app()


def main() -> None:
    """Console-script entry point (``confhub = "confhub.cli:main"``)."""
    app(prog_name="confhub")  # click turns a broken pipe (`confhub export | head`) into exit 1
