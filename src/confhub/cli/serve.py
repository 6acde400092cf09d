"""``serve``: run the HTTP server on a local database.

The server lives in ``confhub.server``; this command only parses options and hands them to
``confhub.server.serve.run``, imported lazily so every other command starts without loading the
web stack.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console

from .common import DEFAULT_DB

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)


def serve(
    db: Annotated[str, typer.Option(
        "--db", envvar="CONFHUB_DB", metavar="PATH|DSN",
        help="Database to serve: a SQLite file path, sqlite:///PATH or postgresql://DSN.")
    ] = DEFAULT_DB,
    host: Annotated[str, typer.Option("--host", envvar="CONFHUB_HOST", metavar="HOST",
                                      help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", "-p", envvar="CONFHUB_PORT", metavar="PORT",
                                      min=0, max=65535, help="TCP port.")] = 8011,
    workers: Annotated[int, typer.Option("--workers", "-w", min=1, metavar="N",
                                         help="Worker processes.")] = 1,
    server: Annotated[str | None, typer.Option(
        "--server", metavar="granian|uvicorn",
        help="ASGI server to run on \\[default: the faster one, see docs/benchmarks.md].")
    ] = None,
    insecure: Annotated[bool, typer.Option(
        "--insecure", help="Allow binding beyond loopback although no auth token exists.")
    ] = False,
    key_file: Annotated[str | None, typer.Option(
        "--key-file", envvar="CONFHUB_KEY_FILE", metavar="PATH",
        help="Master key file for secrets (else CONFHUB_MASTER_KEY).")] = None,
    rate_limit: Annotated[float | None, typer.Option(
        "--rate-limit", metavar="N", min=0,
        help="Requests per second per token (0: no limit) \\[default: 100].")] = None,
    max_watchers: Annotated[int | None, typer.Option(
        "--max-watchers", metavar="N", min=0,
        help="Open watch streams per token \\[default: 10].")] = None,
    cors_origin: Annotated[list[str] | None, typer.Option(
        "--cors-origin", metavar="ORIGIN",
        help="Browser origin allowed to call the API and watch (repeatable; none by "
             "default), e.g. https://app.example.com.")] = None,
    client_timeout: Annotated[float | None, typer.Option(
        "--client-timeout", metavar="SECONDS", min=0.1,
        help="A client slower than this to send its headers, or its body, is cut off (408) "
             "\\[default: 30].")] = None,
    max_connections: Annotated[int | None, typer.Option(
        "--max-connections", metavar="N", min=32,
        help="Open connections per worker, idle watch streams included; watch streams may "
             "take all but a tenth, kept for other requests \\[default: 10000].")] = None,
    log_level: Annotated[str, typer.Option("--log-level", metavar="LEVEL",
                                           help="Server log level.")] = "info",
    log_format: Annotated[str | None, typer.Option(
        "--log-format", metavar="text|json",
        help="One line per request at log level info: text for a terminal, json for a log "
             "pipeline \\[default: text].")] = None,
    compact_interval: Annotated[float | None, typer.Option(
        "--compact-interval", metavar="SECONDS", min=0,
        help="Apply retention policies in the background this often, 0: never "
             "\\[default: 300].")] = None,
    heartbeat: Annotated[float, typer.Option(
        "--heartbeat", metavar="SECONDS", min=0.05, max=3600,
        help="Keep-alive interval of idle watch streams (proxies drop silent ones).")
    ] = 15.0,
) -> None:
    """Serve the configuration store over HTTP (REST API; interactive docs at /docs).

    With no options it serves ./confhub.db on http://127.0.0.1:8011.

    [b]Examples[/b]

      $ confhub serve
      $ confhub serve --db /var/lib/confhub/config.db --port 9000 --workers 2
      $ confhub serve --db postgresql://confhub@db/confhub --server uvicorn
      $ confhub serve --cors-origin http://localhost:3000
    """
    if log_format is not None and log_format not in ("text", "json"):
        raise typer.BadParameter("must be text or json", param_hint="--log-format")
    if server is not None and server not in ("granian", "uvicorn"):
        raise typer.BadParameter("must be granian or uvicorn", param_hint="--server")
    try:
        from ..server.serve import run
    except ImportError as error:
        Console(stderr=True).print(
            f"[bold red]error:[/bold red] the HTTP server is not available in this build "
            f"(confhub.server.serve could not be imported: {error})")
        raise typer.Exit(1) from None
    options: dict[str, Any] = {"insecure": insecure, "log_level": log_level,
                               "heartbeat": heartbeat}
    if cors_origin:
        options["cors_origins"] = cors_origin
    for name, given in (("key_file", key_file), ("rate_limit", rate_limit),
                        ("max_watchers", max_watchers), ("client_timeout", client_timeout),
                        ("max_connections", max_connections), ("log_format", log_format),
                        ("compact_interval", compact_interval)):
        if given is not None:  # otherwise run() keeps its defaults
            options[name] = given
    if server is not None:  # otherwise run() picks its measured default
        options["server"] = server
    run(db=db, host=host, port=port, workers=workers, **options)
