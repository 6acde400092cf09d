"""What a web UI page costs the server, next to the JSON API read of the same key.

Requests go straight into the ASGI app (no sockets, no browser), so the figures are the
server's own work per page: hub reads, diffs, template rendering::

    .venv/bin/python bench/ui.py [--keys 200] [--n 200]

The store holds ``--keys`` keys in 4 namespaces, each with a ``production`` overlay on every
other key and three versions. Prints median and p95 per page, and the JSON API GET of one key as
the anchor (the cheapest thing the server does for a reader).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

import confhub
from confhub.server.app import create_app


def seed(hub: confhub.Hub, keys: int) -> None:
    cfg = hub.tenant()
    for version in range(3):
        with cfg.transaction(reason="seed") as tx:
            for index in range(keys):
                tx.set(f"ns{index % 4}", f"key{index}", {
                    "limit": index + version, "name": f"k{index}", "tags": ["a", "b"],
                    "nested": {"x": version}})
    with cfg.transaction(reason="production overlay") as tx:
        for index in range(0, keys, 2):
            tx.set(f"ns{index % 4}", f"key{index}", {"limit": 0}, env="production")


async def measure(app: Any, paths: dict[str, str], n: int) -> None:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        for name, path in paths.items():
            samples = []
            for _ in range(max(3, n // 10)):  # warm-up
                await client.get(path)
            for _ in range(n):
                start = time.perf_counter()
                response = await client.get(path)
                samples.append(time.perf_counter() - start)
                assert response.status_code == 200, (path, response.status_code)
            samples.sort()
            p95 = samples[int(len(samples) * 0.95)]
            print(f"{name:34s} median {statistics.median(samples) * 1e3:7.2f} ms   "
                  f"p95 {p95 * 1e3:7.2f} ms   ({len(response.content) / 1024:.0f} KiB)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--keys", type=int, default=200)
    parser.add_argument("--n", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        hub = confhub.open(f"sqlite:///{Path(tmp) / 'bench.db'}")
        seed(hub, args.keys)
        app = create_app(hub)
        key = "/ui/t/default/k/ns0/key0"
        paths = {
            "anchor: API GET of one key": "/v1/tenants/default/configs/ns0/key0",
            "UI key page": key,
            "UI key page, production (resolved)": key + "?env=production",
            "UI history with a diff": key + "/history?from=1&to=3",
            "UI edit page": key + "/edit",
            "UI tenant page (recent changes)": "/ui/t/default",
            f"UI namespace ({args.keys // 4} keys)": "/ui/t/default/ns/ns0",
            f"UI search by value ({args.keys} keys)": "/ui/t/default/search?q=k1&in=value",
            f"UI compare base/production ({args.keys} keys)": "/ui/t/default/compare",
        }
        asyncio.run(_run(app, paths, args.n))
        hub.close()


async def _run(app: Any, paths: dict[str, str], n: int) -> None:
    async with app.fastapi.router.lifespan_context(app.fastapi):
        await measure(app, paths, n)


if __name__ == "__main__":
    main()
