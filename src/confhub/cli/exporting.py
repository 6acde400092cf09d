"""``export --format`` / ``export --to DIR`` and ``import-env``: config in other shapes.

``export`` itself lives in backup.py (the backup document is its default); it hands over to
:func:`export_other` when a format or a directory is asked for.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from ..codeplan import export_to_directory
from ..codeplan.envimport import document_from_env
from ..codeplan.export import write_atomically
from ..codeplan.exporters import FORMATS, render
from ..codeplan.view import read_view
from ..errors import InvalidRequest, NotFound
from ..layering import diff
from .common import (
    AuthorOpt,
    Context,
    MetadataOpt,
    ReasonOpt,
    TenantOpt,
    WriteMeta,
    session,
    target_options,
)
from .output import marked

__all__ = ["export_other", "import_env", "is_directory_target", "register"]


def register(app: typer.Typer) -> None:
    app.command("import-env")(import_env)


def is_directory_target(to: str | None) -> bool:
    """``--to`` names a directory (the config layout) when it is one or ends with ``/``."""
    return to is not None and (Path(to).is_dir() or to.endswith(("/", os.sep)))


def export_other(ctx: Context, tenant: str, *, fmt: str | None, to: str | None,
                 env: str, namespace: str | None, prefix: str | None,
                 include_secrets: bool, prune: bool) -> None:
    """Write the layout into a directory, or the resolved view in ``fmt``."""
    if is_directory_target(to):
        assert to is not None
        file_format = fmt if fmt in ("yaml", "yml", "json", "toml") else None
        if fmt is not None and file_format is None:
            raise InvalidRequest(f"--to DIR writes the config layout: --format must be yaml, "
                                 f"json or toml, not {fmt!r}")
        with ctx.out.progress(f"exporting tenant {tenant} to {to}…"):
            result = export_to_directory(ctx.hub, tenant, to, file_format=file_format,
                                         namespaces=[namespace] if namespace else None,
                                         prune=prune)
        def human() -> None:
            ctx.out.success(f"exported tenant [bold]{tenant}[/bold] to {to}: "
                            f"{len(result.written)} file(s) written, {len(result.unchanged)} "
                            "unchanged")
            if result.stale:
                ctx.out.note(f"{len(result.stale)} file(s) have no key in the store (--prune "
                             "removes them): " + ", ".join(result.stale))

        ctx.out.result(result.to_dict(), human)
        return
    if fmt not in FORMATS:
        raise InvalidRequest(f"--format {fmt!r} is not one of {', '.join(FORMATS)}")
    view = read_view(ctx.hub, tenant, env, namespace=namespace, include_secrets=include_secrets)
    if namespace and not any(ns == namespace for ns, _ in view.keys):
        raise NotFound(f"namespace {namespace!r} has no keys in tenant {tenant!r}",
                       namespace=namespace)
    text = render(view, fmt, namespace=namespace, prefix=prefix,
                  include_secrets=include_secrets)
    if to is None:
        typer.echo(text, nl=False)
        return
    write_atomically(Path(to), text)
    ctx.out.result({"tenant": tenant, "env": env, "format": fmt, "file": to},
                   lambda: ctx.out.success(f"exported {fmt} of tenant [bold]{tenant}"
                                           f"[/bold] env={env} to {to}"))


@target_options
def import_env(
    cmd: typer.Context,
    prefix: Annotated[str, typer.Option("--prefix", metavar="PREFIX",
                                        help="Variables to take (APP_ takes APP_DB__HOST).")],
    namespace: Annotated[str, typer.Option("--namespace", "-n", metavar="NS",
                                           help="Namespace to write into.")],
    key: Annotated[str, typer.Option("--key", "-k", metavar="KEY",
                                     help="Key of the document.")] = "env",
    env: Annotated[str, typer.Option("--env", "-e", metavar="ENV",
                                     help="Env layer to write.")] = "base",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show the document, write nothing.")
                       ] = False,
    reason: ReasonOpt = None,
    author: AuthorOpt = None,
    metadata: MetadataOpt = None,
    tenant: TenantOpt = "default",
) -> None:
    """Turn environment variables into one document: PREFIX is cut, '__' nests, names are
    lower-cased, values are JSON scalars where they read as one (5432, true), else strings.

    [b]Examples[/b]

      $ APP_DB__HOST=db APP_DB__PORT=5432 confhub import-env --prefix APP_ --namespace app
      $ confhub import-env --prefix APP_ --namespace app --key settings --dry-run
    """
    meta = WriteMeta.parse(reason or f"import-env {prefix}*", author, metadata)
    with session(cmd) as ctx:
        document = document_from_env(os.environ, prefix)
        if not document:
            raise NotFound(f"no environment variable starts with {prefix!r}", prefix=prefix)
        entry = ctx.tenant.set(namespace, key, document, env=env, dry_run=dry_run,
                               **meta.kwargs())
        data = marked(entry.to_dict(), dry_run)
        if dry_run:
            data["diff"] = diff(None, document)

        def human() -> None:
            verb = "dry run: would write" if dry_run else "imported"
            ctx.out.success(f"{verb} {len(document)} field(s) into [bold]{namespace}/{key}"
                            f"[/bold] env={env} (version {entry.version})")
            ctx.out.value(entry.value)

        ctx.out.result(data, human)
