"""Running the server: ``run()`` (called by ``confhub serve``) and ``python -m confhub.server``.

Workers are separate processes (granian or uvicorn), so each opens its own hub from settings
passed through the environment (``CONFHUB_SERVE_*``) and builds its app in ``app_factory``;
nothing is read at import time. Several workers on one SQLite file are correct because the
store keeps every process's cache exact from the change feed.

granian is the default: on this machine it served the same app faster than uvicorn (figures in
docs/benchmarks.md); ``server="uvicorn"`` is kept as the pure-Python alternative.
"""

from __future__ import annotations

import contextlib
import errno
import gc
import ipaddress
import json
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
from collections.abc import Iterator, Sequence
from typing import Any, Literal
from urllib.parse import urlsplit

__all__ = ["DEFAULT_DB", "DEFAULT_HOST", "DEFAULT_PORT", "app_factory", "is_loopback", "run"]

DEFAULT_DB = "confhub.db"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8011

_ENV_URL = "CONFHUB_SERVE_URL"
_ENV_HEARTBEAT = "CONFHUB_SERVE_HEARTBEAT"
DEFAULT_HEARTBEAT = 15.0
_ENV_RATE = "CONFHUB_SERVE_RATE_LIMIT"
_ENV_WATCHERS = "CONFHUB_SERVE_MAX_WATCHERS"
_ENV_CORS = "CONFHUB_SERVE_CORS_ORIGINS"  # JSON list
_ENV_CLIENT_TIMEOUT = "CONFHUB_SERVE_CLIENT_TIMEOUT"
_ENV_MAX_CONNECTIONS = "CONFHUB_SERVE_MAX_CONNECTIONS"
DEFAULT_CLIENT_TIMEOUT = 30.0
DEFAULT_MAX_CONNECTIONS = 10_000


def watch_capacity(max_connections: int) -> int:
    """The watch streams one worker holds at most: its connection limit less a reserve
    (a tenth, at least 16) so health checks and ordinary requests still get in when idle
    watchers have taken all they may."""
    return max(1, max_connections - max(16, max_connections // 10))
_ENV_LOG_FORMAT = "CONFHUB_SERVE_LOG_FORMAT"  # text | json | off (issue 13)
_ENV_COMPACT = "CONFHUB_SERVE_COMPACT_INTERVAL"  # seconds between compactions, 0: never
DEFAULT_COMPACT_INTERVAL = 300.0

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
    from ..hub import open_embedded as open_hub
    from .app import create_app
    from .auth import Limits

    url = os.environ.get(_ENV_URL) or _storage_url(DEFAULT_DB)
    _tune_gc()
    heartbeat = float(os.environ.get(_ENV_HEARTBEAT) or DEFAULT_HEARTBEAT)
    hub = open_hub(url)  # reads CONFHUB_MASTER_KEY / CONFHUB_KEY_FILE
    defaults = Limits()
    limits = Limits(rate=float(os.environ.get(_ENV_RATE) or defaults.rate),
                    burst=max(int(2 * float(os.environ.get(_ENV_RATE) or defaults.rate)), 1),
                    watchers=int(os.environ.get(_ENV_WATCHERS) or defaults.watchers))
    connections = int(os.environ.get(_ENV_MAX_CONNECTIONS) or DEFAULT_MAX_CONNECTIONS)
    _raise_file_limit(connections)
    return create_app(hub, close_hub=True, heartbeat=heartbeat, limits=limits,
                      cors_origins=json.loads(os.environ.get(_ENV_CORS) or "[]"),
                      client_timeout=float(os.environ.get(_ENV_CLIENT_TIMEOUT)
                                           or DEFAULT_CLIENT_TIMEOUT),
                      max_watch_streams=watch_capacity(connections),
                      access_log=_access_log(),
                      compact_interval=float(os.environ.get(_ENV_COMPACT)
                                             or DEFAULT_COMPACT_INTERVAL) or None)


def _raise_file_limit(connections: int) -> None:
    """Each connection is a file descriptor: lift the soft limit (often 1,024) towards the
    hard one so the connection limit, not the descriptor limit, is what bounds us."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not on Windows
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = connections + 256
    if soft != resource.RLIM_INFINITY and soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            log.warning("could not raise the open-file limit to %d", target)


def _access_log() -> Any:
    """The request log chosen by ``serve --log-format`` (off below log level info)."""
    from .requestlog import AccessLog

    fmt = os.environ.get(_ENV_LOG_FORMAT, "text")
    return None if fmt == "off" else AccessLog(fmt)


def _tune_gc() -> None:
    """Keep the cyclic collector out of the tail. Objects that exist at start (modules, the
    app) are moved out of its reach, and young collections run less often: with a thousand
    open watch streams a default full collection stalled every stream for ~100 ms
    (docs/benchmarks.md). Reference counting still frees almost everything at once.

    The middle generation is collected after every second young collection, not every
    twentieth: it scans what survived since its last pass, so twenty young passes' worth
    (~200,000 objects while PUTs fill the cache) stalled every request in flight for
    60-70 ms; two passes' worth takes 5-15 ms, the same total work in shorter pauses. The
    oldest generation's threshold grows by the same factor (200), so full collections are
    considered as rarely as before (every 400 young ones): at 20 they came five times as
    often and, each scanning the whole heap, doubled the p99 at 256 connections. For
    example, 20 s of PUTs at 64 connections: 6 pauses of 65-96 ms before, ~35 of at most
    17 ms after, one full collection in both, and the p99 halved (docs/benchmarks.md,
    sixth pass)."""
    gc.freeze()
    gc.set_threshold(10_000, 2, 200)


def run(db: str = DEFAULT_DB, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
        workers: int = 1, server: Literal["granian", "uvicorn"] = "granian", *,
        insecure: bool = False, log_level: str = "info", loop: str = "auto",
        heartbeat: float = DEFAULT_HEARTBEAT, key_file: str | None = None,
        rate_limit: float | None = None, max_watchers: int | None = None,
        cors_origins: Sequence[str] = (), client_timeout: float = DEFAULT_CLIENT_TIMEOUT,
        max_connections: int = DEFAULT_MAX_CONNECTIONS, log_format: str = "text",
        compact_interval: float = DEFAULT_COMPACT_INTERVAL) -> None:
    """Serve ``db`` on ``host:port`` until interrupted.

    Per DESIGN.md section 7: once the database holds a token, every request needs one. A
    database without tokens is served open — only on loopback unless ``insecure=True`` — and
    the server says so loudly. ``key_file`` holds the master key(s) for secrets (else
    ``CONFHUB_MASTER_KEY``). ``rate_limit`` (requests/s per token, 0: off) and
    ``max_watchers`` (watch streams per token) override the defaults of ``auth.Limits``.
    ``loop`` is the event loop ("auto" takes uvloop when it is installed, "asyncio" forces
    the standard one). ``cors_origins`` are the browser origins allowed cross-origin access
    (none by default); ``client_timeout`` cuts off a client slower than that (seconds) to
    send its headers or its body (408); ``max_connections`` is each worker's limit of open
    connections, of which watch streams may take all but a reserve. ``log_format`` (text or
    json) is the form of the one line logged per request at log level info or debug.
    ``compact_interval``: seconds between background compactions applying the retention
    policies (0: never).

    A port already in use is refused (granian would otherwise share it with the other
    process, and requests would alternate between two servers).
    """
    if workers < 1:
        raise SystemExit("confhub: --workers must be at least 1")
    if not 0.05 <= heartbeat <= 3600:
        raise SystemExit("confhub: --heartbeat must be between 0.05 and 3600 seconds")
    if log_format not in ("text", "json"):
        raise SystemExit("confhub: --log-format must be text or json")
    if client_timeout < 0.1:
        raise SystemExit("confhub: --client-timeout must be at least 0.1 seconds")
    if max_connections < 32:
        raise SystemExit("confhub: --max-connections must be at least 32")
    for origin in cors_origins:
        _check_origin(origin)
    _check_port_free(host, port)
    url = _storage_url(db)
    os.environ[_ENV_LOG_FORMAT] = log_format if log_level in ("debug", "info") else "off"
    if compact_interval < 0:
        raise SystemExit("confhub: --compact-interval must be 0 (never) or more seconds")
    os.environ[_ENV_COMPACT] = str(compact_interval)
    if key_file is not None:
        os.environ["CONFHUB_KEY_FILE"] = os.path.abspath(key_file)
    if rate_limit is not None:
        os.environ[_ENV_RATE] = str(rate_limit)
    if max_watchers is not None:
        os.environ[_ENV_WATCHERS] = str(max_watchers)
    has_tokens, keys = _security_state(url) if _exists(url) else (False, None)
    if not is_loopback(host) and not insecure and not has_tokens:
        raise SystemExit(
            f"confhub: refusing to serve on {host} without auth tokens; create one with "
            "`confhub token create --superadmin --db ...`, bind to 127.0.0.1, or pass "
            "--insecure to expose an unauthenticated server"
        )
    os.environ[_ENV_URL] = url
    os.environ[_ENV_HEARTBEAT] = str(heartbeat)
    os.environ[_ENV_CORS] = json.dumps(list(cors_origins))
    os.environ[_ENV_CLIENT_TIMEOUT] = str(client_timeout)
    os.environ[_ENV_MAX_CONNECTIONS] = str(max_connections)
    print(f"confhub: serving {url} on http://{host}:{port} with {workers} {server} worker(s)",
          file=sys.stderr)
    if has_tokens:
        print("confhub: authentication is ON (bearer tokens required)", file=sys.stderr)
    else:
        print("confhub: WARNING: authentication is OFF (no tokens configured); anyone who can "
              f"reach {host}:{port} can read and change every config", file=sys.stderr)
    print(f"confhub: secrets: {keys or 'no master key (writing secrets is refused)'}",
          file=sys.stderr)
    if cors_origins:
        print(f"confhub: cross-origin access allowed for {', '.join(cors_origins)}",
              file=sys.stderr)
    _check_storage(url)
    if server not in ("granian", "uvicorn"):
        raise SystemExit(f"confhub: unknown server {server!r}; use granian or uvicorn")
    with _metrics_dir(workers):
        if server == "granian":
            _run_granian(host, port, workers, log_level, loop, client_timeout, max_connections)
        else:
            _run_uvicorn(host, port, workers, log_level, loop, max_connections)


_METRICS_PREFIX = "confhub-metrics-"


def _remove_stale_metrics_dirs() -> None:
    """Remove the metrics directories of servers that are gone (a server killed outright
    cannot remove its own): each is named after its server's process id."""
    root = tempfile.gettempdir()
    for name in os.listdir(root):
        if not name.startswith(_METRICS_PREFIX):
            continue
        pid = name[len(_METRICS_PREFIX):].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(os.path.join(root, name), ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def _metrics_dir(workers: int) -> Iterator[None]:
    """One directory per run where every worker writes its metrics (prometheus-client's
    multiprocess mode), so /metrics answers for the server, whichever worker is scraped.
    An operator's own PROMETHEUS_MULTIPROC_DIR is used as it is. One worker keeps its
    metrics in memory: multiprocess values cost a file-backed write and a pid check per
    update, about a tenth of a PUT's Python time."""
    from .metrics import MULTIPROC_ENV

    if os.environ.get(MULTIPROC_ENV):
        os.makedirs(os.environ[MULTIPROC_ENV], exist_ok=True)
        yield
        return
    if workers == 1:
        yield
        return
    _remove_stale_metrics_dirs()
    path = tempfile.mkdtemp(prefix=f"{_METRICS_PREFIX}{os.getpid()}-")
    os.environ[MULTIPROC_ENV] = path
    try:
        yield
    finally:
        os.environ.pop(MULTIPROC_ENV, None)
        shutil.rmtree(path, ignore_errors=True)


def _exists(url: str) -> bool:
    """A SQLite file that does not exist yet has no tokens (and is not created here)."""
    if url.startswith("sqlite:///"):
        return os.path.exists(url[len("sqlite:///"):])
    return True


def _security_state(url: str) -> tuple[bool, str | None]:
    """(does the database hold tokens, which master keys are configured)."""
    from ..hub import open_embedded as open_hub

    try:
        hub = open_hub(url)
    except Exception as exc:
        raise SystemExit(f"confhub: cannot open {url}: {exc}") from None
    try:
        ids = hub.master_key_ids
        return hub.auth_enabled, (f"master key(s) {', '.join(ids)}" if ids else None)
    finally:
        hub.close()


def _check_storage(url: str) -> None:
    """Open the store once in the parent so a bad --db fails fast with a clear message."""
    from ..hub import open_embedded as open_hub

    try:
        open_hub(url).close()
    except Exception as exc:
        raise SystemExit(f"confhub: cannot open {url}: {exc}") from None


def _check_origin(origin: str) -> None:
    parts = urlsplit(origin)
    if origin != "*" and (parts.scheme not in ("http", "https") or not parts.netloc
                          or parts.path not in ("", "/") or parts.query):
        raise SystemExit(f"confhub: --cors-origin {origin!r} is not an origin; give scheme, "
                         "host and port, e.g. https://app.example.com or http://localhost:3000")


def _check_port_free(host: str, port: int) -> None:
    """Refuse a port another process listens on. A plain bind (without SO_REUSEPORT, which
    granian sets) fails on Linux whenever any socket listens there; SO_REUSEADDR still lets
    a restarted server take its port back from connections in TIME_WAIT."""
    if port == 0:
        return
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host.strip("[]"), port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise SystemExit(f"confhub: port {port} on {host} is already in use (another "
                                 "confhub serve?); stop that process or pick another --port"
                                 ) from None
            raise SystemExit(f"confhub: cannot listen on {host}:{port}: {exc.strerror}"
                             ) from None


def _run_granian(host: str, port: int, workers: int, log_level: str, loop: str,
                 client_timeout: float, max_connections: int) -> None:
    from granian import Granian
    from granian.constants import Interfaces, Loops
    from granian.http import HTTP1Settings
    from granian.log import LogLevels

    Granian(
        "confhub.server.serve:app_factory", factory=True, address=host, port=port,
        workers=workers, interface=Interfaces.ASGI, log_level=LogLevels(log_level),
        respawn_failed_workers=True, loop=Loops(loop),
        # In-flight requests per worker (granian stops accepting past it): idle watch
        # streams count, so it is sized for thousands; the app keeps a reserve (above).
        backpressure=max_connections, backlog=max(2048, min(max_connections, 65535)),
        http1_settings=HTTP1Settings(header_read_timeout=int(client_timeout * 1000)),
    ).serve()


def _run_uvicorn(host: str, port: int, workers: int, log_level: str, loop: str,
                 max_connections: int) -> None:
    import uvicorn

    from .slow_headers import HeaderDeadlineProtocol

    # uvicorn re-raises the SIGTERM it handled once it has stopped, which would make a clean
    # stop look like a kill (exit status -15): a stop asked for is a success.
    signal.signal(signal.SIGTERM, _exit_cleanly)
    uvicorn.run("confhub.server.serve:app_factory", factory=True, host=host, port=port,
                workers=workers, log_level=log_level, access_log=False,
                loop="auto" if loop == "auto" else loop, limit_concurrency=max_connections,
                backlog=max(2048, min(max_connections, 65535)), timeout_graceful_shutdown=5,
                http=HeaderDeadlineProtocol)  # slow headers: closed, as granian does


def _exit_cleanly(signum: int, frame: Any) -> None:
    raise SystemExit(0)
