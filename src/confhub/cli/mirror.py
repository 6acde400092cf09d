"""``push``: a tenant's resolved view for one env into Redis or etcd, once or ``--follow``."""

from __future__ import annotations

import signal
import threading
from typing import Annotated

import typer

from ..codeplan.mirrors import Mirror, open_target
from .common import TenantOpt, session, target_options
from .output import dumps

__all__ = ["push", "register"]


def register(app: typer.Typer) -> None:
    app.command("push")(push)


@target_options
def push(
    cmd: typer.Context,
    to: Annotated[str, typer.Option("--to", metavar="URL", show_default=False,
                                    help="redis://HOST:PORT/DB or etcd://HOST:PORT.")],
    env: Annotated[str, typer.Option("--env", "-e", metavar="ENV",
                                     help="Env whose resolved values are pushed.")] = "base",
    follow: Annotated[bool, typer.Option(
        "--follow", "-f", help="Keep running and push every change; resumes after a restart "
                               "from the last revision pushed (kept in the target).")] = False,
    prefix: Annotated[str | None, typer.Option(
        "--prefix", metavar="PREFIX", help="Key prefix in the target \\[default: "
        "confhub:TENANT:ENV: in Redis, /confhub/TENANT/ENV/ in etcd].")] = None,
    include_secrets: Annotated[bool, typer.Option(
        "--include-secrets", help="Push secret values in plain text (admin; audited). "
                                  "Without it keys holding secrets are left out.")] = False,
    tenant: TenantOpt = "default",
) -> None:
    """Write a tenant's resolved values for an env into Redis or etcd: one key per confhub
    key (JSON), its confhub version beside it (KEY@version), the revision pushed (@revision).

    [b]Examples[/b]

      $ confhub push --to redis://127.0.0.1:6379/0 --env production
      $ confhub push --to etcd://127.0.0.1:2379 --tenant acme --env production --follow
    """
    with session(cmd) as ctx:
        target = open_target(to)
        try:
            mirror = Mirror(ctx.hub, tenant, env, target, prefix=prefix,
                            include_secrets=include_secrets)
            if not follow:
                with ctx.out.progress(f"pushing tenant {tenant} env={env} to {to}…"):
                    pushed = mirror.push_all()
                ctx.out.result(pushed.to_dict(), lambda: ctx.out.success(
                    f"pushed {pushed.written} key(s) of tenant [bold]{tenant}[/bold] env={env} "
                    f"to {to} at revision {pushed.revision}"
                    + (f"; {pushed.skipped_secrets} secret key(s) left out"
                       if pushed.skipped_secrets else "")))
                return
            stop = threading.Event()
            signal.signal(signal.SIGTERM, lambda *_: stop.set())

            def report(message: str) -> None:
                if ctx.out.json:
                    print(dumps({"message": message}, indent=None), flush=True)
                else:
                    ctx.out.print(message)

            mirror.follow(stop, report)
        finally:
            target.close()
