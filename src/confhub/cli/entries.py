"""Entries, the keys and their values: ``get``, ``set``, ``patch``, ``delete`` and ``ls``.

Each command is a thin shell over one ``Tenant`` method: parse the address and the value, call the
API, print the result. All rules (CAS, layering, validation, size limits) live in the hub, so the
CLI behaves exactly like the library and the server.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.markup import escape

from ..errors import NotFound
from ..layering import diff
from .common import (
    AddressArg,
    AuthorOpt,
    Context,
    EnvOpt,
    ExpectedVersionOpt,
    MetadataOpt,
    ReasonOpt,
    WriteMeta,
    session,
    split_address,
    target_options,
)
from .inputs import read_value
from .output import Output, marked, preview, short_time

__all__ = ["register"]

ValueArg = Annotated[str | None, typer.Argument(
    metavar="[VALUE]", show_default=False,
    help="JSON (or YAML) value; '-' reads stdin. Omit it when using -f.")]
FileOpt = Annotated[str | None, typer.Option("--file", "-f", metavar="FILE",
                                             help="Read the value from a JSON or YAML file.")]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Validate and show, write nothing.")]


def register(app: typer.Typer) -> None:
    for command in (get, set_, patch, delete, ls):
        name = command.__name__.rstrip("_")
        app.command(name)(command)


def _current_value(cfg: Any, namespace: str, key: str, env: str) -> Any:
    """The value a write would replace (None when the key does not exist yet)."""
    try:
        return cfg.get(namespace, key, env=env).value
    except NotFound:
        return None


def _report_write(out: Output, entry: Any, verbs: tuple[str, str], dry_run: bool,
                  before: Any) -> None:
    """The new entry; a dry run also shows (and, in JSON, returns) the change as JSON Patch."""
    data = marked(entry.to_dict(), dry_run)
    ops = diff(before, entry.value) if dry_run else []
    if dry_run:
        data["diff"] = ops

    def human() -> None:
        _entry_summary(out, entry, f"dry run: would {verbs[0]}" if dry_run else verbs[1])
        if dry_run:
            out.json_patch(ops)

    out.result(data, human)


def _entry_summary(out: Output, entry: Any, verb: str) -> None:
    created = " (created)" if entry.version == 1 else ""
    out.success(
        f"{verb} [bold]{entry.namespace}/{entry.key}[/bold] env={entry.env} "
        f"→ version [bold]{entry.version}[/bold], revision {entry.revision}{created}"
    )


@target_options
def get(
    cmd: typer.Context,
    address: AddressArg,
    env: EnvOpt = "base",
    version: Annotated[int | None, typer.Option("--version", metavar="N", min=1,
                                                help="Show an old version.")] = None,
    resolved: Annotated[bool, typer.Option(
        "--resolved", help="Merge base with --env and show where each field comes from.")] = False,
    raw: Annotated[bool, typer.Option(
        "--raw", help="Print only the value as JSON (for jq and shell scripts).")] = False,
    reveal: Annotated[bool, typer.Option(
        "--reveal", help="Decrypt secrets (editor or admin; audited; needs the master key "
                         "locally).")] = False,
) -> None:
    """Show a key's value: the current one, an old --version, or --resolved across layers.

    [b]Examples[/b]

      $ confhub get models/claude-opus
      $ confhub get models/claude-opus --version 1
      $ confhub get models/claude-opus --env production --resolved
      $ confhub get models/claude-opus --raw | jq .max_tokens
      $ confhub get models/claude-opus --json
    """
    if resolved and version is not None:
        raise typer.BadParameter("--resolved shows the current value; drop --version")
    with session(cmd) as ctx:
        namespace, key = split_address(address)
        if resolved:
            res = ctx.tenant.resolve(namespace, key, env=env)
            if raw:
                ctx.out.result(res.value)
                return

            def human_resolved() -> None:
                versions = ", ".join(f"{layer} v{n}" for layer, n in res.versions.items())
                ctx.out.print(f"[bold]{res.namespace}/{res.key}[/bold]  env={res.env}  "
                              f"[dim]({versions})[/dim]")
                ctx.out.value(res.value)
                if res.sources:
                    ctx.out.table(None, ["field", "from layer"],
                                  [(field or "(whole value)", layer)
                                   for field, layer in res.sources.items()])

            ctx.out.result(res.to_dict(), human_resolved)
            return
        entry = (ctx.tenant.get(namespace, key, env=env, version=version, reveal=True)
                 if reveal else ctx.tenant.get(namespace, key, env=env, version=version))
        if raw:
            ctx.out.result(entry.value)
            return

        def human() -> None:
            by = f" by {escape(entry.updated_by)}" if entry.updated_by else ""
            ctx.out.print(
                f"[bold]{entry.namespace}/{entry.key}[/bold]  env={entry.env}  "
                f"version [bold]{entry.version}[/bold]  revision {entry.revision}  "
                f"[dim]updated {short_time(entry.updated_at)}{by}[/dim]"
            )
            ctx.out.value(entry.value)

        ctx.out.result(entry.to_dict(), human)


@target_options
def set_(
    cmd: typer.Context,
    address: AddressArg,
    value: ValueArg = None,
    file: FileOpt = None,
    string: Annotated[bool, typer.Option(
        "--string", "-s", help="Store the text as a JSON string, unparsed.")] = False,
    env: EnvOpt = "base",
    expected_version: ExpectedVersionOpt = None,
    dry_run: DryRunOpt = False,
    secret: Annotated[bool, typer.Option(
        "--secret", help="Encrypt the whole value (needs the master key); shown as ***.")
    ] = False,
    reason: ReasonOpt = None,
    author: AuthorOpt = None,
    metadata: MetadataOpt = None,
) -> None:
    """Create or replace a key's value (a new version).

    [b]Examples[/b]

      $ confhub set models/claude-opus '{"max_tokens": 8192}' --reason "raise limit"
      $ confhub set models/claude-opus -f claude-opus.yaml --env production
      $ cat value.json | confhub set models/claude-opus -
      $ confhub set features/dark-mode true
      $ confhub set app/motd --string "hello, world"
      $ confhub set models/claude-opus '{"max_tokens": 4096}' --expected-version 3
      $ confhub set models/new '{}' --expected-version 0   # only if it does not exist yet
    """
    with session(cmd) as ctx:
        namespace, key = split_address(address)
        data = read_value(value, file, string=string)
        meta = WriteMeta.parse(reason, author, metadata)
        before = _current_value(ctx.tenant, namespace, key, env) if dry_run else None
        extra = {"secret": True} if secret else {}
        entry = ctx.tenant.set(namespace, key, data, env=env, expected_version=expected_version,
                               dry_run=dry_run, **meta.kwargs(), **extra)
        _report_write(ctx.out, entry, ("set", "set"), dry_run, before)


@target_options
def patch(
    cmd: typer.Context,
    address: AddressArg,
    value: ValueArg = None,
    file: FileOpt = None,
    json_patch: Annotated[bool, typer.Option(
        "--json-patch", help="The value is an RFC 6902 JSON Patch (a list of operations).")
    ] = False,
    env: EnvOpt = "base",
    expected_version: ExpectedVersionOpt = None,
    dry_run: DryRunOpt = False,
    reason: ReasonOpt = None,
    author: AuthorOpt = None,
    metadata: MetadataOpt = None,
) -> None:
    """Change part of a key's value with a JSON merge patch (RFC 7386): null removes a field.

    [b]Examples[/b]

      $ confhub patch models/claude-opus '{"temperature": 0.2}'
      $ confhub patch models/claude-opus '{"legacy_field": null}' --reason cleanup
      $ confhub patch models/claude-opus -f tweak.yaml --env staging --if-version 4
      $ confhub patch models/claude-opus --json-patch '[{"op": "remove", "path": "/beta"}]'
    """
    with session(cmd) as ctx:
        namespace, key = split_address(address)
        data = read_value(value, file)
        meta = WriteMeta.parse(reason, author, metadata)
        before = _current_value(ctx.tenant, namespace, key, env) if dry_run else None
        entry = ctx.tenant.patch(namespace, key, data, env=env, expected_version=expected_version,
                                 json_patch=json_patch, dry_run=dry_run, **meta.kwargs())
        _report_write(ctx.out, entry, ("patch", "patched"), dry_run, before)


@target_options
def delete(
    cmd: typer.Context,
    address: AddressArg,
    env: EnvOpt = "base",
    expected_version: ExpectedVersionOpt = None,
    dry_run: DryRunOpt = False,
    reason: ReasonOpt = None,
    author: AuthorOpt = None,
    metadata: MetadataOpt = None,
) -> None:
    """Delete a key: writes a tombstone version, so history stays and rollback can undo it.

    [b]Examples[/b]

      $ confhub delete models/old-model --reason "retired"
      $ confhub delete models/old-model --env staging --expected-version 7
    """
    with session(cmd) as ctx:
        namespace, key = split_address(address)
        meta = WriteMeta.parse(reason, author, metadata)
        tombstone = ctx.tenant.delete(namespace, key, env=env, expected_version=expected_version,
                                      dry_run=dry_run, **meta.kwargs())
        verb = "dry run: would delete" if dry_run else "deleted"
        ctx.out.result(marked(tombstone.to_dict(), dry_run), lambda: ctx.out.success(
            f"{verb} [bold]{namespace}/{key}[/bold] env={env} "
            f"(tombstone version {tombstone.version}, revision {tombstone.revision})"))


@target_options
def ls(
    cmd: typer.Context,
    namespace: Annotated[str | None, typer.Argument(
        metavar="[NAMESPACE]", show_default=False,
        help="List this namespace's keys; without it, list the namespaces.")] = None,
    prefix: Annotated[str | None, typer.Option(
        "--prefix", metavar="TEXT", help="Only keys that start with TEXT.")] = None,
    resolved: Annotated[bool, typer.Option(
        "--resolved", help="Show each key's value for --env: base merged with the env layer.")
    ] = False,
    env: EnvOpt = "base",
) -> None:
    """List namespaces, or the keys of one namespace with their versions.

    [b]Examples[/b]

      $ confhub ls
      $ confhub ls models
      $ confhub ls models --prefix claude- --env production --json
      $ confhub ls models --env production --resolved   # what production sees
    """
    with session(cmd) as ctx:
        cfg = ctx.tenant
        if namespace is None:
            counts = [{"namespace": name, "keys": n}
                      for name, n in cfg.namespace_counts(env=env).items() if n]
            ctx.out.result(counts, lambda: ctx.out.table(
                f"namespaces of tenant {ctx.tenant_name} (env {env})", ["namespace", "keys"],
                [(c["namespace"], c["keys"]) for c in counts]) if counts
                else ctx.out.note("no namespaces yet"))
            return
        if resolved:
            _ls_resolved(ctx, namespace, env, prefix)
            return
        entries = cfg.list(namespace, env=env, prefix=prefix)
        ctx.out.result([e.to_dict() for e in entries], lambda: ctx.out.table(
            f"{namespace} (tenant {ctx.tenant_name}, env {env})",
            ["key", "version", "revision", "updated", "by", "value"],
            [(e.key, e.version, e.revision, short_time(e.updated_at), e.updated_by or "",
              preview(e.value)) for e in entries]) if entries
            else ctx.out.note(f"no keys in {namespace} (env {env})"))


def _ls_resolved(ctx: Context, namespace: str, env: str, prefix: str | None) -> None:
    """Every key visible in ``env`` (set in base or in the env layer), resolved."""
    cfg = ctx.tenant
    layers = ("base",) if env == "base" else ("base", env)
    keys = sorted({e.key for layer in layers for e in cfg.list(namespace, env=layer,
                                                               prefix=prefix)})
    values = [cfg.resolve(namespace, key, env=env) for key in keys]
    ctx.out.result([r.to_dict() for r in values], lambda: ctx.out.table(
        f"{namespace} resolved for env {env} (tenant {ctx.tenant_name})",
        ["key", "layers", "value"],
        [(r.key, ", ".join(f"{layer} v{n}" for layer, n in r.versions.items()),
          preview(r.value)) for r in values]) if values
        else ctx.out.note(f"no keys in {namespace} (env {env})"))
