"""What security costs on a read: auth on a GET, and decrypting a secret on a GET.

Requests go straight into the ASGI app (no sockets), so the figures are the server's own CPU
per request, not network or client time::

    .venv/bin/python bench/security.py [--n 20000]

Prints median and p99 in microseconds for:

* GET of a cached key on an open server (no tokens) and with a bearer token (the auth layer:
  policy match, SHA-256, constant-time compare, rate bucket) — the difference is auth;
* ``hub.authenticate(token)`` alone;
* opening one sealed value (AES-GCM, data key cached) — the pure decrypt;
* GET ``?reveal=true`` of a secret over ASGI (storage read + decrypt + audit record, on SQLite
  with a durable sync per audit write) next to GET of the same key redacted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import confhub
from confhub.secrets import generate_master_key
from confhub.server.app import create_app
from confhub.server.auth import Limits


def figures(samples: list[float]) -> str:
    samples = sorted(samples)
    p99 = samples[min(len(samples) - 1, int(len(samples) * 0.99))]
    return f"median {statistics.median(samples) * 1e6:8.1f} µs   p99 {p99 * 1e6:8.1f} µs"


async def asgi_get(app: Any, path: str, query: bytes = b"",
                   token: str | None = None) -> int:
    headers = [(b"host", b"bench")]
    if token:
        headers.append((b"authorization", f"Bearer {token}".encode()))
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "GET", "scheme": "http", "path": path, "raw_path": path.encode(),
             "query_string": query, "root_path": "", "headers": headers,
             "client": ("127.0.0.1", 1), "server": ("bench", 80)}
    status = 0

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


async def time_asgi(app: Any, n: int, path: str, query: bytes = b"",
                    token: str | None = None) -> list[float]:
    assert await asgi_get(app, path, query, token) == 200
    out = []
    for _ in range(n):
        start = time.perf_counter()
        await asgi_get(app, path, query, token)
        out.append(time.perf_counter() - start)
    return out


def time_call(fn: Callable[[], object], n: int) -> list[float]:
    fn()
    out = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


async def main(n: int) -> None:
    folder = Path(tempfile.mkdtemp(prefix="confhub-bench-"))
    key = generate_master_key()
    path = "/v1/tenants/acme/configs/models/opus"
    secret_path = "/v1/tenants/acme/configs/db/password"

    open_hub = confhub.open(str(folder / "open.db"), master_key=key)
    open_hub.create_tenant("acme")
    open_hub.tenant("acme").set("models", "opus", {"max_tokens": 8192})
    open_app = create_app(open_hub)
    no_auth = await time_asgi(open_app, n, path)

    hub = confhub.open(str(folder / "auth.db"), master_key=key)
    hub.create_tenant("acme")
    cfg = hub.tenant("acme")
    cfg.set("models", "opus", {"max_tokens": 8192})
    cfg.set("db", "password", {"user": "app", "password": "hunter2"}, secret=["/password"])
    token, _ = hub.create_token(tenant="acme", role="editor")
    app = create_app(hub, limits=Limits(rate=0))  # measure auth, not the rate limiter
    with_auth = await time_asgi(app, n, path, token=token)
    authenticate = time_call(lambda: hub.authenticate(token), n)
    row = hub._core.store.version("acme", "base", "db", "password", 1)
    assert row is not None and row.value is not None
    sealed = json.loads(row.value)
    decrypt = time_call(lambda: hub._core.vault.open(sealed), n)
    reveal_n = max(200, n // 20)
    redacted = await time_asgi(app, reveal_n, secret_path, token=token)
    revealed = await time_asgi(app, reveal_n, secret_path, b"reveal=true", token)

    print(f"confhub security costs, n={n} (reveal: n={reveal_n}), in-process ASGI")
    print(f"GET cached key, open server        {figures(no_auth)}")
    print(f"GET cached key, bearer token       {figures(with_auth)}")
    print(f"  auth cost (median difference)    "
          f"{(statistics.median(with_auth) - statistics.median(no_auth)) * 1e6:8.1f} µs")
    print(f"hub.authenticate(token)            {figures(authenticate)}")
    print(f"open one sealed field (AES-GCM)    {figures(decrypt)}")
    print(f"GET secret key, redacted           {figures(redacted)}")
    print(f"GET secret key, ?reveal=true       {figures(revealed)}")
    open_hub.close()
    hub.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000)
    asyncio.run(main(parser.parse_args().n))
