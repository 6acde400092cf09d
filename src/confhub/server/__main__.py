"""``python -m confhub.server --db PATH --port N``: the server without the CLI package."""

from __future__ import annotations

import argparse

from .serve import (
    DEFAULT_CLIENT_TIMEOUT,
    DEFAULT_DB,
    DEFAULT_HOST,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_PORT,
    run,
)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m confhub.server",
                                     description="Serve a confhub store over HTTP.")
    parser.add_argument("--db", default=DEFAULT_DB, help="SQLite path or storage URL")
    parser.add_argument("--host", default=DEFAULT_HOST)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--server", choices=["granian", "uvicorn"], default="granian")
    parser.add_argument("--insecure", action="store_true",
                        help="allow a non-loopback bind without auth")
    parser.add_argument("--log-level", default="warning")
    parser.add_argument("--key-file", default=None, help="master key file for secrets")
    parser.add_argument("--rate-limit", type=float, default=None,
                        help="requests per second per token (0: no limit)")
    parser.add_argument("--max-watchers", type=int, default=None,
                        help="open watch streams per token")
    parser.add_argument("--loop", choices=["auto", "asyncio", "uvloop"], default="auto",
                        help="event loop (auto: uvloop when installed)")
    parser.add_argument("--heartbeat", type=float, default=15.0,
                        help="keep-alive interval of idle watch streams, in seconds")
    parser.add_argument("--cors-origin", action="append", default=[], metavar="ORIGIN",
                        help="browser origin allowed cross-origin access (repeatable)")
    parser.add_argument("--client-timeout", type=float, default=DEFAULT_CLIENT_TIMEOUT,
                        help="seconds a client may take to send headers, then body (408)")
    parser.add_argument("--max-connections", type=int, default=DEFAULT_MAX_CONNECTIONS,
                        help="open connections per worker (watch streams included)")
    parser.add_argument("--log-format", choices=["text", "json"], default="text",
                        help="one line per request (at log level info): text or json")
    parser.add_argument("--compact-interval", type=float, default=300.0,
                        help="seconds between background compactions (0: never)")
    args = parser.parse_args(argv)
    run(args.db, args.host, args.port, args.workers, args.server, insecure=args.insecure,
        log_level=args.log_level, loop=args.loop, heartbeat=args.heartbeat,
        key_file=args.key_file, rate_limit=args.rate_limit, max_watchers=args.max_watchers,
        cors_origins=args.cors_origin, client_timeout=args.client_timeout,
        max_connections=args.max_connections, log_format=args.log_format,
        compact_interval=args.compact_interval)


if __name__ == "__main__":
    main()
