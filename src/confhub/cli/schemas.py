"""``schema set|get|ls|history|rollback|delete`` and ``validate``: a namespace's JSON Schema and
CEL rules, and checking a value against them without writing it.

A schema file holds either a JSON Schema, or the whole document
``{"schema": ..., "rules": [...], "key_pattern": "..."}`` (what ``schema get --json`` prints, so a
schema round-trips through a file).
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from ..errors import ValidationFailed
from .common import (
    AddressArg,
    AuthorOpt,
    EnvOpt,
    ReasonOpt,
    TenantOpt,
    WriteMeta,
    session,
    split_address,
    target_options,
)
from .inputs import read_value
from .output import Output, short_time

__all__ = ["register", "schema_app"]

schema_app = typer.Typer(
    name="schema", no_args_is_help=True,
    help="A namespace's JSON Schema and CEL rules: set, show, list, history, rollback.\n\n"
         "[b]Examples[/b]\n\n  $ confhub schema set params -f params.schema.json\n"
         "  $ confhub schema get params\n  $ confhub schema ls",
)

NamespaceArg = Annotated[str, typer.Argument(metavar="NAMESPACE", show_default=False,
                                             help="The namespace the schema governs.")]
AllTenantsOpt = Annotated[bool, typer.Option(
    "--all-tenants", help="The schema of every tenant (a tenant's own schema wins).")]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Check everything, store nothing.")]


def register(app: typer.Typer) -> None:
    app.add_typer(schema_app)
    app.command("validate")(validate)


def _summary(out: Output, schema: Any, verb: str) -> None:
    scope = "all tenants" if schema.all_tenants else f"tenant {schema.scope}"
    pattern = f" keys {schema.key_pattern}" if schema.key_pattern else ""
    out.success(f"{verb} schema of [bold]{schema.namespace}[/bold]{pattern} ({scope}) → "
                f"version [bold]{schema.version}[/bold], {len(schema.rules)} rule(s)")


@schema_app.command("set")
@target_options
def set_(
    cmd: typer.Context,
    namespace: NamespaceArg,
    value: Annotated[str | None, typer.Argument(
        metavar="[SCHEMA]", show_default=False,
        help="JSON (or YAML) schema; '-' reads stdin. Omit it when using -f.")] = None,
    file: Annotated[str | None, typer.Option("--file", "-f", metavar="FILE",
                                             help="Read the schema from a JSON or YAML file.")
                    ] = None,
    rules: Annotated[str | None, typer.Option(
        "--rules", metavar="FILE", help="A JSON or YAML file with the list of CEL rules.")] = None,
    key_pattern: Annotated[str | None, typer.Option(
        "--key-pattern", metavar="GLOB", help="Only keys matching this glob are governed.")
    ] = None,
    all_tenants: AllTenantsOpt = False,
    dry_run: DryRunOpt = False,
    reason: ReasonOpt = None,
    author: AuthorOpt = None,
) -> None:
    """Set a namespace's schema (a new version); refused, exit 5, if existing values break it.

    [b]Examples[/b]

      $ confhub schema set params -f params.schema.json --rules params.rules.yaml
      $ confhub schema set models '{"type": "object"}' --key-pattern 'claude-*'
      $ confhub schema set params -f schema.json --all-tenants --dry-run
    """
    with session(cmd) as ctx:
        document = read_value(value, file)
        rule_list = read_value(None, rules) if rules else None
        if isinstance(document, dict) and document and set(document) <= {
                "schema", "rules", "key_pattern"} and "schema" in document:
            rule_list = rule_list if rule_list is not None else document.get("rules")
            key_pattern = key_pattern or document.get("key_pattern")
            document = document["schema"]
        meta = WriteMeta.parse(reason, author, None)
        schema = ctx.tenant.set_schema(namespace, document, rule_list, key_pattern=key_pattern,
                                       all_tenants=all_tenants, reason=meta.reason,
                                       author=meta.author, dry_run=dry_run)
        data = schema.to_dict() | ({"dry_run": True} if dry_run else {})
        ctx.out.result(data, lambda: _summary(ctx.out, schema,
                                              "dry run: would set" if dry_run else "set"))


@schema_app.command("get")
@target_options
def get(
    cmd: typer.Context,
    namespace: NamespaceArg,
    version: Annotated[int | None, typer.Option("--version", metavar="N", min=1,
                                                help="Show an old version.")] = None,
    all_tenants: AllTenantsOpt = False,
) -> None:
    """Show the schema in force for a namespace (or an old --version).

    [b]Examples[/b]

      $ confhub schema get params
      $ confhub schema get params --version 1 --json
    """
    with session(cmd) as ctx:
        schema = ctx.tenant.get_schema(namespace, version=version, all_tenants=all_tenants)

        def human() -> None:
            _summary(ctx.out, schema, "version" if version else "current")
            ctx.out.value({"schema": schema.schema, "rules": list(schema.rules),
                           "key_pattern": schema.key_pattern})
            for name, paths in schema.annotations.items():
                if paths:
                    ctx.out.note(f"{name}: {', '.join(paths)}")

        ctx.out.result(schema.to_dict(), human)


@schema_app.command("ls")
@target_options
def ls(
    cmd: typer.Context,
    all_tenants: AllTenantsOpt = False,
    tenant: TenantOpt = "default",
) -> None:
    """List the schemas in force in a tenant, one per namespace.

    [b]Examples[/b]

      $ confhub schema ls
      $ confhub schema ls --tenant acme --json
    """
    with session(cmd) as ctx:
        items = ctx.tenant.schemas(all_tenants=all_tenants)
        ctx.out.result([s.to_dict() for s in items], lambda: ctx.out.table(
            f"schemas of tenant {tenant}", ["namespace", "version", "scope", "keys", "rules",
                                            "updated"],
            [(s.namespace, str(s.version), "all tenants" if s.all_tenants else s.scope,
              s.key_pattern or "*", str(len(s.rules)), short_time(s.created_at))
             for s in items]) if items else ctx.out.note(f"no schemas in tenant {tenant}"))


@schema_app.command("history")
@target_options
def history(
    cmd: typer.Context,
    namespace: NamespaceArg,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="At most N versions.")] = 50,
    all_tenants: AllTenantsOpt = False,
) -> None:
    """Versions of a namespace's schema, newest first.

    [b]Examples[/b]

      $ confhub schema history params
      $ confhub schema history params --all-tenants --json
    """
    with session(cmd) as ctx:
        items = ctx.tenant.schema_history(namespace, all_tenants=all_tenants, limit=limit)
        ctx.out.result([s.to_dict() for s in items], lambda: ctx.out.table(
            f"schema history of {namespace}", ["version", "op", "rules", "when", "author",
                                               "reason"],
            [(str(s.version), "delete" if s.deleted else
              (f"rollback to {s.rollback_of}" if s.rollback_of else "set"),
              str(len(s.rules)), short_time(s.created_at), s.author or "", s.reason or "")
             for s in items]))


@schema_app.command("rollback")
@target_options
def rollback(
    cmd: typer.Context,
    namespace: NamespaceArg,
    to: Annotated[int, typer.Option("--to", metavar="N", min=1,
                                    help="The version to bring back.")],
    all_tenants: AllTenantsOpt = False,
    dry_run: DryRunOpt = False,
    reason: ReasonOpt = None,
    author: AuthorOpt = None,
) -> None:
    """Make an old schema version current again (as a new version).

    [b]Examples[/b]

      $ confhub schema rollback params --to 1 --reason "too strict"
    """
    with session(cmd) as ctx:
        meta = WriteMeta.parse(reason, author, None)
        schema = ctx.tenant.rollback_schema(namespace, to, all_tenants=all_tenants,
                                            reason=meta.reason, author=meta.author,
                                            dry_run=dry_run)
        data = schema.to_dict() | ({"dry_run": True} if dry_run else {})
        ctx.out.result(data, lambda: _summary(ctx.out, schema, "rolled back"))


@schema_app.command("delete")
@target_options
def delete(
    cmd: typer.Context,
    namespace: NamespaceArg,
    all_tenants: AllTenantsOpt = False,
    reason: ReasonOpt = None,
    author: AuthorOpt = None,
) -> None:
    """Remove a namespace's schema (history is kept).

    [b]Examples[/b]

      $ confhub schema delete params --reason "moving to a pydantic model"
    """
    with session(cmd) as ctx:
        meta = WriteMeta.parse(reason, author, None)
        schema = ctx.tenant.delete_schema(namespace, all_tenants=all_tenants,
                                          reason=meta.reason, author=meta.author)
        ctx.out.result(schema.to_dict(), lambda: ctx.out.success(
            f"deleted schema of [bold]{namespace}[/bold] (version {schema.version})"))


@target_options
def validate(
    cmd: typer.Context,
    address: AddressArg,
    value: Annotated[str | None, typer.Argument(
        metavar="[VALUE]", show_default=False,
        help="JSON (or YAML) value; '-' reads stdin. Omit it when using -f.")] = None,
    file: Annotated[str | None, typer.Option("--file", "-f", metavar="FILE",
                                             help="Read the value from a JSON or YAML file.")
                    ] = None,
    env: EnvOpt = "base",
) -> None:
    """Check a value against its namespace's schema and rules without writing it (exit 5 if
    invalid).

    [b]Examples[/b]

      $ confhub validate params/agent '{"max_membrane_depth": 65}'
      $ confhub validate params/agent -f agent.yaml --env production --json
    """
    with session(cmd) as ctx:
        namespace, key = split_address(address)
        report = ctx.tenant.validate(namespace, key, read_value(value, file), env=env)

        def human() -> None:
            for issue in report.errors:
                ctx.out.print(f"[red]✗[/red] {issue.message}")
            for issue in report.warnings:
                ctx.out.print(f"[yellow]![/yellow] {issue.message}")
            if report.valid:
                ctx.out.success(f"{address} is valid"
                                + (f" ({len(report.warnings)} warning(s))"
                                   if report.warnings else ""))

        ctx.out.result(report.to_dict(), human)
        if not report.valid:
            raise typer.Exit(ValidationFailed.exit_code)
