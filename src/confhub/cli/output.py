"""How the CLI prints: stable JSON for scripts, rich tables and colour for people.

Results go to stdout, errors and progress to stderr, so ``confhub get x --json | jq`` always
receives clean JSON. JSON is written with plain ``sys.stdout.write`` (never through rich), so no
markup, wrapping or colour codes can slip into it.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from functools import cached_property
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text

from ..errors import ConfhubError

__all__ = ["Output", "dumps", "marked", "preview", "short_time"]


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)


def dumps(data: Any, *, indent: int | None = 2) -> str:
    """The CLI's one JSON encoding: UTF-8 text, sorted as given, model objects via ``to_dict``."""
    return json.dumps(data, indent=indent, ensure_ascii=False, default=_default)


def marked(data: dict[str, Any], dry_run: bool) -> dict[str, Any]:
    """Dry-run results carry ``"dry_run": true`` so a script cannot mistake them for commits."""
    return {**data, "dry_run": True} if dry_run else data


def preview(value: Any, width: int = 60) -> str:
    """A one-line rendering of a JSON value for table cells."""
    text = json.dumps(value, ensure_ascii=False, separators=(", ", ": "), default=_default)
    return text if len(text) <= width else text[: width - 1] + "…"


def short_time(value: Any) -> str:
    """Timestamps in tables: to the second, UTC, without the noise of microseconds."""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, str) and "T" in value:
        return value.replace("T", " ")[:19]
    return "" if value is None else str(value)


PIPE_WIDTH = 10_000  # columns of a table printed to a pipe or file (no wrapping)


class Output:
    """Prints one command's result in the mode the user chose."""

    def __init__(self, *, json: bool, command: str | None = None) -> None:
        self.json = json
        self.command = command  # the command's name, for hints that name its options

    # Consoles are made on first use, inside the command, so they bind to the sys.stdout/err
    # of that invocation (CliRunner swaps them per run).
    @cached_property
    def console(self) -> Console:
        console = Console(soft_wrap=False, highlight=False)
        if not console.is_terminal and "COLUMNS" not in os.environ:
            # Piped (``confhub changes | cat``): rich would wrap tables at 80 columns and split
            # names and dates; a pipe has no width, so give each row the line it needs.
            console = Console(soft_wrap=False, highlight=False, width=PIPE_WIDTH)
        return console

    @cached_property
    def err(self) -> Console:
        return Console(stderr=True, highlight=False, soft_wrap=True)

    def result(self, data: Any, human: Callable[[], None] | None = None) -> None:
        """Print ``data`` as JSON, or call ``human`` to draw it (falls back to JSON)."""
        if self.json or human is None:
            sys.stdout.write(dumps(data) + "\n")
            sys.stdout.flush()
        else:
            human()

    def print(self, *renderables: Any) -> None:
        self.console.print(*renderables)

    def value(self, value: Any) -> None:
        """A config value, pretty and (on a terminal) syntax-highlighted."""
        self.console.print(Syntax(dumps(value), "json", theme="ansi_dark",
                                  background_color="default", word_wrap=True))

    def success(self, message: str) -> None:
        """A one-line confirmation for people; silent in JSON mode, where the data speaks."""
        self.console.print(f"[green]✓[/green] {message}")

    def table(self, title: str | None, columns: Sequence[str],
              rows: Sequence[Sequence[Any]]) -> None:
        # The title is a line of its own: a rich table title wraps to the table's width.
        if title:
            self.console.print(f"[bold]{escape(title)}[/bold]")
        table = Table(header_style="bold cyan", show_edge=False, pad_edge=False)
        for column in columns:
            table.add_column(column, overflow="fold")
        for row in rows:
            # Plain cells are user data: escaped, so "[x]" in a reason is never read as markup.
            table.add_row(*(cell if isinstance(cell, Text) else escape(str(cell))
                            for cell in row))
        self.console.print(table)

    def json_patch(self, ops: Sequence[Mapping[str, Any]]) -> None:
        """RFC 6902 operations as coloured lines: + add, - remove, ~ replace/move/copy/test."""
        if not ops:
            self.console.print("[dim]no differences[/dim]")
            return
        for op in ops:
            kind = str(op.get("op", "?"))
            sign, style = {"add": ("+", "green"), "remove": ("-", "red")}.get(kind,
                                                                            ("~", "yellow"))
            line = Text(f"{sign} {kind:<8} {op.get('path') or '/'}", style=style)
            if "value" in op:
                line.append(f"  {dumps(op['value'], indent=None)}")
            if "from" in op:
                line.append(f"  from {op['from']}")
            self.console.print(line)

    def note(self, message: str) -> None:
        """Side information for people (stderr, so it never mixes with data)."""
        if not self.json:
            self.err.print(f"[dim]{message}[/dim]")

    def error(self, error: ConfhubError) -> None:
        """An error: the JSON error body with ``--json``, a red line otherwise; always stderr."""
        if self.json:
            sys.stderr.write(dumps(error.to_dict()) + "\n")
            return
        issues = error.details.get("errors") if error.code == "validation_failed" else None
        if isinstance(issues, list) and issues:
            # One line per problem: the summary message only shows the first few.
            self.err.print("[bold red]error:[/bold red] validation failed; nothing was written")
            for issue in issues:
                if isinstance(issue, dict):
                    self.err.print(f"  [red]✗[/red] {escape(str(issue.get('message')))}")
            for issue in error.details.get("warnings") or []:
                if isinstance(issue, dict):
                    self.err.print(f"  [yellow]![/yellow] {escape(str(issue.get('message')))}")
        else:
            self.err.print(f"[bold red]error:[/bold red] {escape(error.message)}")
        hint = _hint(error, self.command)
        if hint:
            self.err.print(f"[dim]{escape(hint)}[/dim]")

    @contextmanager
    def progress(self, description: str) -> Iterator[Callable[[str], None]]:
        """A spinner on stderr for long work; the yielded function updates its text.

        Shown only to people at a terminal: in JSON mode or when stderr is piped it stays
        silent, so logs and scripts get no control characters.
        """
        err = self.err
        if self.json or not err.is_terminal:
            yield lambda _text: None
            return
        with err.status(description) as status:
            yield lambda text: status.update(text)


def _hint(error: ConfhubError, command: str | None = None) -> str | None:
    """One line telling the user what to do next, for the errors that have an obvious next
    step; it names only options the failed ``command`` has."""
    code = error.code
    if code == "version_conflict":
        current = error.details.get("current_version")
        if current is None:
            return None
        if command == "edit":
            return (f"someone changed it while you edited (now version {current}); run "
                    "confhub edit again to start from their version")
        if command in ("txn", "apply"):
            return (f"the current version is {current}; re-read the key and set that "
                    f'"expected_version" in the transaction, or leave it out')
        if command in ("set", "patch", "delete", "rollback"):
            return (f"the current version is {current}; re-read the key and retry with "
                    f"--expected-version {current}")
        return f"the current version is {current}; re-read the key and retry"
    if code == "unauthorized":
        return "pass a token with --token or CONFHUB_TOKEN"
    if code == "unavailable":
        return "is the server running and --url / --db right?"
    return None
