"""The server's own Python per cached GET, without a server: the app built by ``create_app``
is called in-process with a no-op ``send``, so what is timed is our request path alone (the
lean path, request id, auth, metrics and the access log), not granian, the kernel or wrk.

Under wrk, a cached GET also costs the HTTP server and the socket, and on a shared 2-core
machine those make throughput figures move by ±7 % from run to run: too much to see a 2 µs
change. This isolates it.

Usage::

    python bench/lean_get.py                       # the access log off
    python bench/lean_get.py --log                 # on, as at serve's default level (to /dev/null)
    python bench/lean_get.py --path '/v1/tenants/default/configs/models/claude-opus?env=base'
    PYTHONPATH=/work/wt/base/src python bench/lean_get.py --log     # another tree, same run

Nothing is asserted; it prints the best of five runs' µs per request.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from typing import Any

import confhub
from confhub.server.app import create_app
from confhub.server.requestlog import AccessLog


def _scope(path: str) -> dict[str, Any]:
    route, _, query = path.partition("?")
    return {"type": "http", "method": "GET", "path": route, "raw_path": route.encode(),
            "query_string": query.encode(), "headers": [(b"host", b"127.0.0.1:8011")],
            "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8011), "scheme": "http",
            "http_version": "1.1", "root_path": "", "asgi": {"version": "3.0"}}


async def _receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _run(app: Any, path: str, n: int) -> float:
    answers: list[int] = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            answers.append(message["status"])

    for _ in range(2000):  # warm: the key is cached, the route's metrics exist
        await app(_scope(path), _receive, send)
    if set(answers) != {200}:
        raise SystemExit(f"GET {path} answered {sorted(set(answers))}, not 200")
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(n):
            await app(_scope(path), _receive, send)
        best = min(best, (time.perf_counter() - started) / n)
    return best * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--path", default="/config/models/claude-opus")
    parser.add_argument("--log", action="store_true", help="write the access log (to /dev/null)")
    parser.add_argument("--n", type=int, default=50_000, help="requests per run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, open(os.devnull, "w") as devnull:
        hub = confhub.open(os.path.join(tmp, "bench.db"))
        hub.tenant().set("models", "claude-opus", {"model": "claude-opus", "max_tokens": 8192})
        app = create_app(hub, close_hub=True,
                         access_log=AccessLog("text", devnull) if args.log else None)
        micros = asyncio.run(_run(app, args.path, args.n))
        hub.close()
    print(f"GET {args.path}: {micros:.2f} µs of the server's Python per request "
          f"(best of 5 x {args.n:,}; access log {'on' if args.log else 'off'}; "
          f"{confhub.__file__.rsplit('/src/', 1)[0]})")


if __name__ == "__main__":
    main()
