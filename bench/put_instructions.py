"""Instructions per HTTP PUT, counted by valgrind: a before/after figure that noise cannot move.

This shared 2-core machine changes speed by 1.5-2x within an hour, and a 10 % change in the
server's CPU per PUT drowns in that. ``valgrind --tool=callgrind`` counts the instructions a
process executes instead, the same on a busy machine as on a quiet one (it does not count the
kernel's: fsync and socket calls are left out). The workload is the server's own PUT path in
process: ``create_app`` on an embedded SQLite hub, each PUT a real ASGI request of the 316-byte
JSON document of ``http_write.py`` to a distinct key (the lean PUT path, the hub, the group
commit), in waves of 64 concurrent requests on uvloop. No sockets, no granian: what is left is
ours and SQLite's.

A run counts two processes, one doing only the set-up (imports, app, 128 warm-up PUTs) and one
doing the same plus ``--puts`` PUTs; the difference divided by ``--puts`` is one PUT.

Usage (needs ``valgrind``; about a minute per source tree, the two processes side by side)::

    python bench/put_instructions.py                         # this checkout
    python bench/put_instructions.py --src /work/wt/base/src --src src   # before, after

Nothing is asserted; it prints one line per source tree.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from http_write import VALUE  # noqa: E402

WAVE = 64
WARMUP = 128


def serve_puts(count: int) -> None:
    """The workload (run under valgrind): ``count`` PUTs after the warm-up."""
    import uvloop

    import confhub
    from confhub.server.app import create_app
    from confhub.server.testing import app_lifespan

    folder = tempfile.mkdtemp()
    hub = confhub.open(f"sqlite:///{folder}/confhub.db")
    app = create_app(hub)
    body = VALUE.encode()
    headers = [(b"host", b"bench"), (b"content-type", b"application/json"),
               (b"content-length", str(len(body)).encode())]

    async def put(number: int) -> None:
        path = f"/config/bench/k{number:09d}"
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
                 "method": "PUT", "scheme": "http", "path": path, "raw_path": path.encode(),
                 "query_string": b"", "root_path": "", "headers": headers,
                 "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}
        delivered = False
        statuses: list[int] = []

        async def receive() -> dict[str, Any]:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            await asyncio.Event().wait()  # the client stays: no disconnect
            raise AssertionError("unreachable")

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                statuses.append(message["status"])

        await app(scope, receive, send)
        if statuses != [201]:
            raise SystemExit(f"PUT {path} answered {statuses}")

    async def waves(first: int, total: int) -> None:
        for start in range(first, first + total, WAVE):
            await asyncio.gather(*(put(n) for n in range(start, min(start + WAVE,
                                                                     first + total))))

    async def main() -> None:
        async with app_lifespan(app):
            await waves(10**8, WARMUP)
            await waves(0, count)

    uvloop.run(main())
    hub.close()


def instructions(src: str, count: int) -> int:
    """Instructions of one workload process, as callgrind's summary gives them."""
    with tempfile.TemporaryDirectory() as folder:
        env = {**os.environ, "PYTHONPATH": src, "PYTHONHASHSEED": "0"}
        out = subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={folder}/out",
             sys.executable, __file__, "--child", str(count)],
            env=env, capture_output=True, text=True, check=True).stderr
    found = re.search(r"I\s+refs:\s+([\d,]+)", out)
    if found is None:
        raise SystemExit(f"no instruction count in valgrind's output:\n{out[-2000:]}")
    return int(found.group(1).replace(",", ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--puts", type=int, default=1024)
    parser.add_argument("--src", action="append",
                        help="a source tree to measure (repeat to compare); default: src/")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        serve_puts(args.child)
        return
    from concurrent.futures import ThreadPoolExecutor

    trees = args.src or [str(Path(__file__).resolve().parent.parent / "src")]
    print(f"instructions per in-process PUT (callgrind, {args.puts} PUTs in waves of {WAVE}, "
          f"316-byte JSON, SQLite)")
    for tree in trees:
        with ThreadPoolExecutor(2) as pool:
            base, full = pool.map(instructions, (tree, tree), (0, args.puts))
        print(f"{tree:40} {(full - base) / args.puts / 1000:,.0f}k instructions per PUT")


if __name__ == "__main__":
    main()
