"""``export`` and ``import``: a tenant to a versioned JSON document and back.

The document is whatever ``Hub.export`` returns (JSON-serialisable, with a format version), so a
file written by the CLI imports through the library, the server or the CLI alike. Both can take a
while on big tenants, so people at a terminal get a spinner on stderr.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from ..errors import InvalidRequest
from .common import TenantOpt, session, target_options
from .inputs import load_document
from .output import dumps, marked

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    app.command("export")(export)
    app.command("import")(import_)


@target_options
def export(
    cmd: typer.Context,
    to: Annotated[str | None, typer.Option(
        "--to", "-o", metavar="FILE", show_default=False,
        help="Write to this file (atomically) instead of stdout.")] = None,
    include_history: Annotated[bool, typer.Option(
        "--history/--no-history", help="Include every version, not only current values.")
    ] = False,
    include_secrets: Annotated[bool, typer.Option(
        "--include-secrets", help="Secrets in plain text instead of *** (admin; audited).")
    ] = False,
    tenant: TenantOpt = "default",
) -> None:
    """Export a tenant's configuration as a JSON document (a backup, or a copy to elsewhere).

    Without --to the document goes to stdout; with --to a summary is printed.

    [b]Examples[/b]

      $ confhub export > acme.json
      $ confhub export --tenant acme --history --to acme-full.json
      $ confhub export --url http://prod:8011 | confhub import - --tenant acme-copy
    """
    with session(cmd) as ctx:
        with ctx.out.progress(f"exporting tenant {tenant}…"):
            extra = {"include_secrets": True} if include_secrets else {}
            document = ctx.hub.export(tenant, include_history=include_history, **extra)
            text = dumps(document) + "\n"
        if to is None:
            sys.stdout.write(text)
            return
        _write_atomically(Path(to), text)
        summary = {"tenant": tenant, "file": to, "bytes": len(text.encode("utf-8")),
                   "include_history": include_history,
                   "entries": len(document.get("entries", []))}
        ctx.out.result(summary, lambda: ctx.out.success(
            f"exported tenant [bold]{tenant}[/bold] to {to} "
            f"({summary['bytes']:,} bytes{', with history' if include_history else ''})"))


def _write_atomically(path: Path, text: str) -> None:
    """Write via a temporary file and rename, so an interrupted export never leaves half a file."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    except OSError as error:
        raise InvalidRequest(f"cannot write {path}: {error.strerror}", path=str(path)) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@target_options
def import_(
    cmd: typer.Context,
    source: Annotated[str, typer.Argument(metavar="FILE", show_default=False,
                                          help="An export document (JSON or YAML); '-' is stdin.")],
    overwrite_existing: Annotated[bool, typer.Option(
        "--overwrite/--no-overwrite", help="Replace keys that already exist in the tenant.")
    ] = False,
    preserve_versions: Annotated[bool, typer.Option(
        "--preserve-versions/--new-versions",
        help="Keep the document's version numbers, or write each value as a new version.")
    ] = True,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check and count, write nothing.")
                       ] = False,
    tenant: TenantOpt = "default",
) -> None:
    """Import an export document into a tenant (--tenant picks the target, not the file).

    [b]Examples[/b]

      $ confhub import acme.json --tenant acme-restored
      $ confhub import acme.json --tenant acme --overwrite --new-versions
      $ confhub export --tenant acme | confhub import - --tenant acme-staging
    """
    with session(cmd) as ctx:
        with ctx.out.progress(f"reading {source}…") as update:
            document = load_document(source)
            if not isinstance(document, dict):
                raise InvalidRequest(f"{source} is not a confhub export document (not an object)")
            update(f"importing into tenant {tenant}…")
            counts = ctx.hub.import_(tenant, document, overwrite_existing=overwrite_existing,
                                     preserve_versions=preserve_versions, dry_run=dry_run)
        data = dict(counts)
        verb = "dry run: would import" if dry_run else "imported"
        ctx.out.result(marked({"tenant": tenant, **data}, dry_run),
                       lambda: ctx.out.success(
            f"{verb} into tenant [bold]{tenant}[/bold]: "
            + ", ".join(f"{name} {value}" for name, value in data.items())))
