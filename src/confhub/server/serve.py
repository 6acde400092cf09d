"""Running the server: ``run()`` (called by ``confhub serve``) and ``python -m confhub.server``.

Workers are separate processes (granian or uvicorn), so each opens its own hub from settings
passed through the environment (``CONFHUB_SERVE_*``) and builds its app in ``app_factory``;
nothing is read at import time. Several workers on one SQLite file are correct because the
store keeps every process's cache exact from the change feed.

granian is the default: on this machine it served the same app faster than uvicorn (figures in
docs/benchmarks.md); ``server="uvicorn"`` is kept as the pure-Python alternative.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import sys
from typing import Any, Literal

__all__ = ["DEFAULT_DB", "DEFAULT_HOST", "DEFAULT_PORT", "app_factory", "is_loopback", "run"]

DEFAULT_DB = "confhub.db"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8011

_ENV_URL = "CONFHUB_SERVE_URL"
_ENV_HEARTBEAT = "CONFHUB_SERVE_HEARTBEAT"
DEFAULT_HEARTBEAT = 15.0

log = logging.getLogger("confhub.server")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _storage_url(db: str) -> str:
    """``--db`` takes a path or a URL (sqlite:///…, postgresql://…)."""
    if "://" in db:
        return db
    return "sqlite:///" + os.path.abspath(db)  # absolute path -> sqlite:////abs/path


def app_factory() -> Any:
    """Build one worker's app: open the hub named by the environment, close it at shutdown."""
    from ..hub import open as open_hub
    from .app import create_app

    url = os.environ.get(_ENV_URL) or _storage_url(DEFAULT_DB)
    heartbeat = float(os.environ.get(_ENV_HEARTBEAT) or DEFAULT_HEARTBEAT)
    hub = open_hub(url)
    return create_app(hub, close_hub=True, heartbeat=heartbeat)


def run(db: str = DEFAULT_DB, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
        workers: int = 1, server: Literal["granian", "uvicorn"] = "granian", *,
        insecure: bool = False, log_level: str = "info", loop: str = "auto",
        heartbeat: float = DEFAULT_HEARTBEAT) -> None:
    """Serve ``db`` on ``host:port`` until interrupted.

    Auth tokens do not exist yet (a later issue), so per DESIGN.md section 7 the server only
    binds to loopback unless ``insecure=True``, and says loudly that auth is off.
    ``loop`` is the event loop ("auto" takes uvloop when it is installed, "asyncio" forces
    the standard one).
    """
    if not is_loopback(host) and not insecure:
        raise SystemExit(
            f"confhub: refusing to serve on {host} without auth tokens; bind to 127.0.0.1 or "
            "pass --insecure to expose an unauthenticated server"
        )
    if workers < 1:
        raise SystemExit("confhub: --workers must be at least 1")
    if not 0.05 <= heartbeat <= 3600:
        raise SystemExit("confhub: --heartbeat must be between 0.05 and 3600 seconds")
    url = _storage_url(db)
    os.environ[_ENV_URL] = url
    os.environ[_ENV_HEARTBEAT] = str(heartbeat)
    print(f"confhub: serving {url} on http://{host}:{port} with {workers} {server} worker(s)",
          file=sys.stderr)
    print("confhub: WARNING: authentication is OFF (no tokens configured); anyone who can reach "
          f"{host}:{port} can read and change every config", file=sys.stderr)
    _check_storage(url)
    if server == "granian":
        _run_granian(host, port, workers, log_level, loop)
    elif server == "uvicorn":
        _run_uvicorn(host, port, workers, log_level, loop)
    else:
        raise SystemExit(f"confhub: unknown server {server!r}; use granian or uvicorn")


def _check_storage(url: str) -> None:
    """Open the store once in the parent so a bad --db fails fast with a clear message."""
    from ..hub import open as open_hub

    try:
        open_hub(url).close()
    except Exception as exc:
        raise SystemExit(f"confhub: cannot open {url}: {exc}") from None


def _run_granian(host: str, port: int, workers: int, log_level: str, loop: str) -> None:
    from granian import Granian
    from granian.constants import Interfaces, Loops
    from granian.log import LogLevels

    Granian(
        "confhub.server.serve:app_factory", factory=True, address=host, port=port,
        workers=workers, interface=Interfaces.ASGI, log_level=LogLevels(log_level),
        respawn_failed_workers=True, loop=Loops(loop),
    ).serve()


def _run_uvicorn(host: str, port: int, workers: int, log_level: str, loop: str) -> None:
    import uvicorn

    uvicorn.run("confhub.server.serve:app_factory", factory=True, host=host, port=port,
                workers=workers, log_level=log_level, access_log=False,
                loop="auto" if loop == "auto" else loop)
