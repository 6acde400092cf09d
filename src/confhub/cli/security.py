"""``token …``, ``audit`` and ``keys …``: tokens, the audit log and the master key.

The first token of a database is made locally: ``confhub token create --superadmin --db PATH``
works on the database directly (whoever can open the database file already has everything).
Later tokens can be made over HTTP by an admin (``--url`` with ``--token``).
"""

from __future__ import annotations

import os
import sys
from datetime import datetime
from typing import Annotated, Any

import typer

from ..errors import InvalidRequest
from ..model import DEFAULT_TENANT
from ..secrets import KeyRing, generate_master_key
from .common import DEFAULT_DB, DbOpt, JsonOpt, is_remote, session, target_options
from .output import dumps, short_time

__all__ = ["register"]

token_app = typer.Typer(
    name="token", no_args_is_help=True, rich_markup_mode="rich",
    help="Create, list and revoke bearer tokens.\n\n"
         "[b]Examples[/b]\n\n  $ confhub token create --superadmin --db config.db\n"
         "  $ confhub token create --tenant acme --role editor --expires 30d\n"
         "  $ confhub token list --tenant acme")
keys_app = typer.Typer(
    name="keys", no_args_is_help=True, rich_markup_mode="rich",
    help="Master keys for secrets: generate, rotate.\n\n"
         "[b]Examples[/b]\n\n  $ confhub keys generate > master.key\n"
         "  $ CONFHUB_MASTER_KEY=\"$NEW,$OLD\" confhub keys rotate --db config.db")


def register(app: typer.Typer) -> None:
    app.add_typer(token_app)
    app.add_typer(keys_app)
    app.command("audit")(audit)


@token_app.command("create")
@target_options
def token_create(
    cmd: typer.Context,
    tenant: Annotated[str | None, typer.Option(
        "--tenant", "-t", metavar="TENANT", help="Tenant the token works in.")] = None,
    role: Annotated[str, typer.Option(
        "--role", metavar="viewer|editor|admin", help="What the token may do.")] = "viewer",
    superadmin: Annotated[bool, typer.Option(
        "--superadmin", help="A global token: every tenant, every operation.")] = False,
    namespaces: Annotated[str | None, typer.Option(
        "--namespaces", metavar="NS,NS", help="Limit the token to these namespaces.")] = None,
    expires: Annotated[str | None, typer.Option(
        "--expires", metavar="DURATION", help="Expiry, like 30d, 12h, 90m.")] = None,
    name: Annotated[str | None, typer.Option(
        "--name", metavar="NAME", help="A name for audit records \\[default: token-<id>].")
    ] = None,
) -> None:
    """Create a token and print it once (only its hash is stored).

    [b]Examples[/b]

      $ confhub token create --superadmin --db /var/lib/confhub/config.db
      $ confhub token create --tenant acme --role editor --namespaces features,models --expires 30d
    """
    if superadmin:
        if tenant is not None or namespaces is not None:
            raise typer.BadParameter("a superadmin token has no --tenant or --namespaces")
        role = "superadmin"
    elif tenant is None:
        raise typer.BadParameter("name the --tenant (or pass --superadmin)")
    with session(cmd) as ctx:
        secret, info = ctx.hub.create_token(tenant=tenant, role=role, namespaces=namespaces,
                                            expires_in=expires, name=name)
        data = {**info.to_dict(), "token": secret}

        def human() -> None:
            sys.stdout.write(secret + "\n")
            scope = info.tenant or "every tenant"
            ctx.out.note(f"token {info.name} ({info.id}): {info.role} on {scope}"
                         + (f", namespaces {', '.join(info.namespaces)}" if info.namespaces
                            else "")
                         + (f", expires {short_time(info.expires_at)}" if info.expires_at
                            else "")
                         + ". It is shown this once; store it now.")

        ctx.out.result(data, human)


@token_app.command("list")
@target_options
def token_list(
    cmd: typer.Context,
    tenant: Annotated[str | None, typer.Option(
        "--tenant", "-t", metavar="TENANT", help="Only this tenant's tokens.")] = None,
    include_revoked: Annotated[bool, typer.Option(
        "--all", help="Include revoked tokens.")] = False,
) -> None:
    """List tokens (never the tokens themselves).

    [b]Examples[/b]

      $ confhub token list --tenant acme
      $ confhub token list --all --url http://127.0.0.1:8011 --token "$ADMIN_TOKEN"
    """
    with session(cmd) as ctx:
        items = ctx.hub.tokens(tenant, include_revoked=include_revoked)
        ctx.out.result([t.to_dict() for t in items], lambda: ctx.out.table(
            "tokens", ["id", "name", "tenant", "role", "namespaces", "expires", "revoked"],
            [(t.id, t.name, t.tenant or "*", t.role, ",".join(t.namespaces or ()) or "*",
              short_time(t.expires_at) if t.expires_at else "",
              short_time(t.revoked_at) if t.revoked_at else "") for t in items]))


@token_app.command("revoke")
@target_options(tenant=False)
def token_revoke(
    cmd: typer.Context,
    token_id: Annotated[str, typer.Argument(metavar="ID", help="The token's id.")],
) -> None:
    """Revoke a token (at once on this server, within about a second on others).

    [b]Examples[/b]

      $ confhub token revoke 3f2a9c1b7d4e
    """
    with session(cmd) as ctx:
        info = ctx.hub.revoke_token(token_id)
        ctx.out.result(info.to_dict(), lambda: ctx.out.success(f"revoked {info.name}"))


@target_options
def audit(
    cmd: typer.Context,
    tenant: Annotated[str | None, typer.Option(
        "--tenant", "-t", metavar="TENANT",
        help="Only this tenant \\[default: every tenant; over --url, where the log is read "
             "per tenant: CONFHUB_TENANT or default].")] = None,
    action: Annotated[str | None, typer.Option(
        "--action", metavar="ACTION", help="config.put, secret.reveal, token.create, ...")
    ] = None,
    actor: Annotated[str | None, typer.Option("--actor", metavar="NAME")] = None,
    target: Annotated[str | None, typer.Option(
        "--target", metavar="PREFIX", help="Target prefix, like models/ or models/opus.")
    ] = None,
    since: Annotated[datetime | None, typer.Option("--since", metavar="TIME")] = None,
    until: Annotated[datetime | None, typer.Option("--until", metavar="TIME")] = None,
    after: Annotated[int, typer.Option("--after", metavar="ID", min=0,
                                       help="Records after this id.")] = 0,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=10_000)] = 100,
    jsonl: Annotated[bool, typer.Option("--jsonl", help="JSON lines, one record each.")
                     ] = False,
) -> None:
    """Show the audit log: changes, secret reveals, token management, failed logins.

    [b]Examples[/b]

      $ confhub audit --tenant acme --action secret.reveal
      $ confhub audit --tenant acme --since 2026-01-01 --jsonl > audit.jsonl
    """
    with session(cmd) as ctx:
        if tenant is None and is_remote(ctx.hub):  # a server reads the log per tenant
            tenant = os.environ.get("CONFHUB_TENANT") or DEFAULT_TENANT
        events = ctx.hub.audit(tenant, after=after, limit=limit, action=action, actor=actor,
                               target=target, since=_utc(since), until=_utc(until))
        if jsonl:
            for event in events:
                sys.stdout.write(dumps(event.to_dict(), indent=None) + "\n")
            return
        ctx.out.result([e.to_dict() for e in events], lambda: ctx.out.table(
            "audit", ["id", "time", "action", "actor", "tenant", "target", "client", "reason"],
            [(str(e.id), short_time(e.at), e.action, e.actor or "", e.tenant or "",
              e.target or "", e.client or "", e.reason or "") for e in events]))


def _utc(moment: datetime | None) -> datetime | None:
    from datetime import UTC

    return moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None \
        else moment


@keys_app.command("generate")
def keys_generate(json: JsonOpt = False) -> None:
    """Print a new master key (32 random bytes, base64url) for CONFHUB_MASTER_KEY.

    [b]Examples[/b]

      $ confhub keys generate > /etc/confhub/master.key && chmod 600 /etc/confhub/master.key
      $ confhub keys generate --json
    """
    key = generate_master_key()
    if json:
        sys.stdout.write(dumps({"key": key}, indent=None) + "\n")
    else:
        sys.stdout.write(key + "\n")


@keys_app.command("rotate")
def keys_rotate(
    cmd: typer.Context,
    key_file: Annotated[str | None, typer.Option(
        "--key-file", envvar="CONFHUB_KEY_FILE", metavar="PATH",
        help="Key ring: the new key first, then the old one(s).")] = None,
    json: JsonOpt = False,
    db: DbOpt = DEFAULT_DB,
) -> None:
    """Re-wrap every data key under the first master key of the ring; values are untouched.

    Without downtime: (1) give servers the ring "NEW,OLD" (either order works for reading),
    (2) run this with the same ring, NEW first, (3) drop OLD from the ring.

    [b]Examples[/b]

      $ CONFHUB_MASTER_KEY="$NEW,$OLD" confhub keys rotate --db config.db
    """
    import confhub

    from .output import Output

    out = Output(json=json)
    try:
        ring = KeyRing.from_settings(None, key_file)
        if ring is None:
            raise InvalidRequest("no master key: set CONFHUB_MASTER_KEY=NEW,OLD or --key-file")
        hub: Any = confhub.open(db if "://" in db else db, key_file=key_file)
    except confhub.ConfhubError as error:
        out.error(error)
        raise typer.Exit(error.exit_code) from None
    try:
        counts = hub.rotate_keys()
    except confhub.ConfhubError as error:
        out.error(error)
        raise typer.Exit(error.exit_code) from None
    finally:
        hub.close()
    out.result({**counts, "primary": ring.primary_id}, lambda: out.success(
        f"re-wrapped {counts['rewrapped']} of {counts['data_keys']} data key(s) under "
        f"master key {ring.primary_id}"))
