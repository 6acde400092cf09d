"""``edit``: change a key in your editor, safely (``kubectl edit`` for configuration).

The value is written to a temporary file (YAML by default, since people edit YAML more happily
than JSON), ``$VISUAL`` / ``$EDITOR`` is run on it, and the result is saved as a new version with
compare-and-set against the version that was opened: if someone else changed the key meanwhile,
nothing is overwritten and the command exits 4, keeping the edited text for a retry.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer

from ..errors import ConfhubError, InvalidRequest
from ..model import thaw
from .common import (
    AuthorOpt,
    EnvOpt,
    MetadataOpt,
    ReasonOpt,
    WriteMeta,
    session,
    split_address,
    target_options,
)
from .inputs import parse, yaml
from .output import dumps

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    app.command("edit")(edit)


@target_options
def edit(
    cmd: typer.Context,
    address: Annotated[str, typer.Argument(metavar="NAMESPACE/KEY", show_default=False,
                                           help="The key to edit.")],
    env: EnvOpt = "base",
    fmt: Annotated[str, typer.Option("--format", metavar="yaml|json",
                                     help="How the value is shown in the editor.")] = "yaml",
    reason: ReasonOpt = None,
    author: AuthorOpt = None,
    metadata: MetadataOpt = None,
) -> None:
    """Edit a key's value in $VISUAL / $EDITOR and save it as a new version.

    Saved with compare-and-set against the version you opened: if the key changed meanwhile,
    nothing is overwritten (exit 4) and your edit is kept in a file for another try.
    Saving an unchanged or empty file changes nothing.

    [b]Examples[/b]

      $ confhub edit models/claude-opus --reason "tune temperature"
      $ EDITOR=nano confhub edit routing/tiers --env production --format json
    """
    if fmt not in ("yaml", "json"):
        raise typer.BadParameter("must be yaml or json", param_hint="--format")
    with session(cmd) as ctx:
        namespace, key = split_address(address)
        meta = WriteMeta.parse(reason, author, metadata)
        entry = ctx.tenant.get(namespace, key, env=env)
        original = thaw(entry.value)
        path = _write_draft(address, env, entry.version, original, fmt)
        try:
            edited = _run_editor(path, fmt)
            if edited is None or edited == original:
                ctx.out.note("no changes: nothing saved")
                ctx.out.result({**entry.to_dict(), "changed": False}, lambda: None)
                path.unlink(missing_ok=True)
                return
            saved = ctx.tenant.set(namespace, key, edited, env=env,
                                   expected_version=entry.version, **meta.kwargs())
        except ConfhubError:
            ctx.out.note(f"your edit is kept in {path}")
            raise
        path.unlink(missing_ok=True)
        ctx.out.result({**saved.to_dict(), "changed": True}, lambda: ctx.out.success(
            f"saved [bold]{namespace}/{key}[/bold] env={env} → version "
            f"[bold]{saved.version}[/bold], revision {saved.revision}"))


def _write_draft(address: str, env: str, version: int, value: Any, fmt: str) -> Path:
    """The value in a temporary file the editor can open (kept if saving fails)."""
    if fmt == "yaml":
        header = (f"# confhub edit {address} (env {env}, version {version}).\n"
                  "# Save and quit to store a new version; an empty file cancels.\n")
        text = header + yaml.safe_dump(value, sort_keys=False, allow_unicode=True)
    else:
        text = dumps(value) + "\n"
    fd, name = tempfile.mkstemp(prefix=f"confhub-{address.replace('/', '-')}-",
                                suffix=f".{fmt}")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    return Path(name)


def _run_editor(path: Path, fmt: str) -> Any:
    """Run the user's editor on ``path``; the parsed result, or None for an empty file."""
    command = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
    try:
        returned = subprocess.run([*shlex.split(command), str(path)], check=False).returncode
    except FileNotFoundError:
        raise InvalidRequest(f"editor {command!r} not found; set $EDITOR") from None
    if returned != 0:
        raise InvalidRequest(f"the editor exited with status {returned}; nothing saved")
    text = path.read_text(encoding="utf-8")
    meaningful = [line for line in text.splitlines()
                  if line.strip() and not line.lstrip().startswith("#")]
    if not meaningful:
        return None
    return parse(text, origin=str(path), prefer_yaml=fmt == "yaml")
