"""``flags import|export|ls|eval``: feature flags in flagd's format (DESIGN.md section 9).

Flags are ordinary keys of the ``flags`` namespace, so ``get``, ``history``, ``diff`` and
``rollback`` work on them too (``confhub history flags/new-checkout``); these commands add the
flagd flag-set file as a whole, and a way to see what a flag evaluates to.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from ..errors import InvalidRequest
from ..flags import FLAGS_NAMESPACE, FlagSet, plan_import, to_flagd
from ..model import BASE_ENV
from .backup import _write_atomically
from .common import (
    AuthorOpt,
    EnvOpt,
    MetadataOpt,
    ReasonOpt,
    WriteMeta,
    session,
    target_options,
)
from .inputs import load_document, parse
from .output import dumps

__all__ = ["flags_app", "register"]

flags_app = typer.Typer(
    name="flags", no_args_is_help=True,
    help="Feature flags in flagd's format: import and export flag-set files, list, evaluate.\n\n"
         "[b]Examples[/b]\n\n  $ confhub flags import flags.json --reason 'launch checkout'\n"
         "  $ confhub flags export --to flags.json\n"
         "  $ confhub flags eval new-checkout --context '{\"targetingKey\": \"user-1\"}'",
)

NamespaceOpt = Annotated[str, typer.Option(
    "--namespace", "-n", metavar="NAMESPACE", help="The namespace holding the flags.")]


def register(app: typer.Typer) -> None:
    app.add_typer(flags_app)


@flags_app.command("import")
@target_options
def import_(
    cmd: typer.Context,
    file: Annotated[str, typer.Argument(metavar="FILE", show_default=False,
                                        help="A flagd flag-set file (JSON or YAML); '-' reads "
                                             "stdin.")],
    prune: Annotated[bool, typer.Option(
        "--prune", help="Also delete the flags the file does not have.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check and show, write nothing.")
                       ] = False,
    namespace: NamespaceOpt = FLAGS_NAMESPACE,
    env: EnvOpt = BASE_ENV,
    reason: ReasonOpt = None,
    author: AuthorOpt = None,
    metadata: MetadataOpt = None,
) -> None:
    """Load a flagd flag-set file (flags, shared $evaluators, metadata) as ONE transaction.

    Every flag is checked first; any problem refuses the whole file (exit 5) and names the
    flag. Unchanged flags are not rewritten.

    [b]Examples[/b]

      $ confhub flags import flags.json --reason "launch checkout"
      $ confhub flags import flags.json --prune --dry-run --tenant acme
    """
    with session(cmd) as ctx:
        document = load_document(file)
        cfg = ctx.tenant
        existing = {e.key: e.value for e in cfg.list(namespace, env=env)}
        plan = plan_import(document, existing, prune=prune, namespace=namespace)
        meta = WriteMeta.parse(reason or f"flags import {Path(file).name}", author, metadata)
        revision = None
        if plan.puts or plan.deletes:
            with cfg.transaction(**meta.kwargs(), dry_run=dry_run) as tx:
                for key, value in plan.puts.items():
                    tx.set(namespace, key, value, env=env)
                for key in plan.deletes:
                    tx.delete(namespace, key, env=env)
            revision = tx.revision
        created = sorted(k for k in plan.puts if k not in existing)
        updated = sorted(k for k in plan.puts if k in existing)
        summary: dict[str, Any] = {
            "tenant": ctx.tenant_name, "namespace": namespace, "env": env,
            "created": created, "updated": updated, "deleted": plan.deletes,
            "unchanged": plan.unchanged, "revision": revision, "dry_run": dry_run}

        def human() -> None:
            verb = "dry run: would write" if dry_run else "imported"
            ctx.out.success(
                f"{verb} {len(created)} new, {len(updated)} changed, {len(plan.deletes)} "
                f"deleted, {len(plan.unchanged)} unchanged key(s) in [bold]{namespace}[/bold]"
                + (f" at revision {revision}" if revision and not dry_run else ""))

        ctx.out.result(summary, human)


@flags_app.command("export")
@target_options
def export(
    cmd: typer.Context,
    to: Annotated[str | None, typer.Option(
        "--to", "-o", metavar="FILE", show_default=False,
        help="Write to this file (atomically) instead of stdout.")] = None,
    namespace: NamespaceOpt = FLAGS_NAMESPACE,
    env: EnvOpt = BASE_ENV,
) -> None:
    """Write the flags as a flagd flag-set file (what flagd and `flags import` read).

    [b]Examples[/b]

      $ confhub flags export > flags.json
      $ confhub flags export --tenant acme --to acme-flags.json
    """
    with session(cmd) as ctx:
        values = {e.key: e.value for e in ctx.tenant.list(namespace, env=env)}
        text = dumps(to_flagd(values)) + "\n"
        if to is None:
            sys.stdout.write(text)
            return
        _write_atomically(Path(to), text)
        flags = len(to_flagd(values)["flags"])
        ctx.out.result({"tenant": ctx.tenant_name, "namespace": namespace, "file": to,
                        "flags": flags},
                       lambda: ctx.out.success(f"exported {flags} flag(s) to {to}"))


@flags_app.command("ls")
@target_options
def ls(
    cmd: typer.Context,
    namespace: NamespaceOpt = FLAGS_NAMESPACE,
    env: EnvOpt = BASE_ENV,
) -> None:
    """List the flags: state, variants, default variant, whether they target, version.

    [b]Examples[/b]

      $ confhub flags ls
      $ confhub flags ls --tenant acme --env production --json
    """
    with session(cmd) as ctx:
        entries = ctx.tenant.list(namespace, env=env)
        flags = to_flagd({e.key: e.value for e in entries})["flags"]
        versions = {e.key: e.version for e in entries}
        rows = [{"key": key, "state": flag.get("state"),
                 "variants": list(flag.get("variants", {})),
                 "defaultVariant": flag.get("defaultVariant"),
                 "targeting": bool(flag.get("targeting")), "version": versions[key]}
                for key, flag in flags.items()]
        ctx.out.result({"flags": rows}, lambda: ctx.out.table(
            f"flags in {namespace}", ["flag", "state", "variants", "default", "targeting",
                                      "version"],
            [[r["key"], r["state"], ", ".join(r["variants"])[:60],
              str(r["defaultVariant"]), "yes" if r["targeting"] else "", str(r["version"])]
             for r in rows]))


@flags_app.command("eval")
@target_options
def eval_(
    cmd: typer.Context,
    key: Annotated[str, typer.Argument(metavar="FLAG", show_default=False,
                                       help="The flag to evaluate.")],
    context: Annotated[str | None, typer.Option(
        "--context", "-c", metavar="JSON",
        help="Evaluation context: an object with targetingKey and attributes.")] = None,
    namespace: NamespaceOpt = FLAGS_NAMESPACE,
    env: EnvOpt = BASE_ENV,
) -> None:
    """Evaluate a flag for a context, as the OpenFeature provider and OFREP would.

    [b]Examples[/b]

      $ confhub flags eval new-checkout -c '{"targetingKey": "user-1", "email": "a@acme.com"}'
    """
    with session(cmd) as ctx:
        attributes = parse(context, origin="--context") if context else {}
        if not isinstance(attributes, dict):
            raise InvalidRequest("--context must be a JSON object")
        targeting_key = attributes.pop("targetingKey", None)
        flags = FlagSet.from_entries(ctx.tenant.list(namespace, env=env))
        result = flags.evaluate(key, attributes, targeting_key)
        data = {"key": key, "value": result.value, "variant": result.variant,
                "reason": result.reason, "errorCode": result.error_code,
                "errorDetails": result.error_message, "metadata": dict(result.metadata)}

        def human() -> None:
            if result.error_code:
                ctx.out.print(f"[red]{result.error_code}[/red]: {result.error_message}")
            else:
                shown = "(code default)" if result.variant is None else dumps(result.value)
                ctx.out.print(f"{key} = {shown}  variant {result.variant or '-'}, reason "
                              f"{result.reason}")

        ctx.out.result(data, human)
        if result.error_code == "FLAG_NOT_FOUND":
            raise typer.Exit(3)
