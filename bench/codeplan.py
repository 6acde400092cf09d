"""Benchmark of config as code (issue 12): it prints figures, it asserts nothing.

Run from the repository root (figures and machine in docs/benchmarks.md)::

    .venv/bin/python bench/codeplan.py                  # 1,000 keys in 20 namespaces
    .venv/bin/python bench/codeplan.py --keys 1000 --namespaces 20 --rounds 3

A directory of ``--keys`` YAML files (a 12-field document each, with an env overlay for one
key in ten) is planned and applied, embedded (SQLite) and against a real ``confhub serve``
(``python -m confhub.server``) on SQLite on this machine, through the library calls the CLI
makes (``load_directory`` + ``make_plan``; ``apply_plan``). Figures, best of ``--rounds``:

* plan, fresh store (everything to create) and apply of that plan (one transaction);
* plan when nothing changed (the steady state of a CI check);
* plan and apply after editing one field in 1% of the files.

The anchor is the issue's target on this machine: plan <= 2 s, apply <= 3 s for 1,000 keys.
Plus one wall-clock ``confhub plan DIR`` subprocess (interpreter start and imports included).
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import confhub
from confhub.codeplan import apply_plan, load_directory, make_plan
from confhub.server.testing import live_server


def write_directory(root: Path, keys: int, namespaces: int) -> None:
    for i in range(keys):
        namespace = f"ns{i % namespaces:02d}"
        path = root / namespace / f"key{i:04d}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        fields = "".join(f"field_{f}: {i * 10 + f}\n" for f in range(8))
        path.write_text(f"# key {i}\nname: key{i}\nenabled: true\nratio: 0.5\n{fields}"
                        f"nested:\n  tries: 3\n  backoff: 0.25\n")
        if i % 10 == 0:
            overlay = root / "env" / "production" / namespace / f"key{i:04d}.yaml"
            overlay.parent.mkdir(parents=True, exist_ok=True)
            overlay.write_text("nested:\n  tries: 5\n")


def edit(root: Path, share: float) -> int:
    files = sorted(p for p in root.glob("ns*/*.yaml"))
    step = max(1, int(1 / share))
    for path in files[::step]:
        path.write_text(path.read_text().replace("enabled: true", "enabled: false"))
    return len(files[::step])


def timed(action: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = action()
    return time.perf_counter() - start, result


def run(hub: Any, label: str, args: argparse.Namespace, cli_target: list[str]) -> None:
    best: dict[str, float] = {}

    def keep(name: str, seconds: float) -> None:
        best[name] = min(best.get(name, seconds), seconds)

    for round_ in range(args.rounds):
        one_round(hub, round_, args, cli_target, keep)
    print(f"\n{label}: {args.keys} keys in {args.namespaces} namespaces "
          f"(+{args.keys // 10} production overlays), best of {args.rounds}")
    for name, seconds in best.items():
        print(f"  {name:<44} {seconds * 1000:8.0f} ms")


def one_round(hub: Any, round_: int, args: argparse.Namespace, cli_target: list[str],
              keep: Any) -> None:
    """Plan and apply a fresh directory, then an edit of 1 % of its files (one round)."""
    tenant = f"bench{round_}{int(time.time() * 1000) % 100000}"
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "config"
        write_directory(root, args.keys, args.namespaces)
        seconds, plan = timed(lambda: make_plan(hub, tenant, load_directory(root)))
        keep("plan (fresh: all creates)", seconds)
        seconds, _ = timed(lambda: apply_plan(hub, plan, reason="bench"))
        keep(f"apply ({len(plan.changes)} creates, one transaction)", seconds)
        seconds, plan = timed(lambda: make_plan(hub, tenant, load_directory(root)))
        assert not plan.changes
        keep("plan (no changes)", seconds)
        edited = edit(root, 0.01)
        seconds, plan = timed(lambda: make_plan(hub, tenant, load_directory(root)))
        keep(f"plan ({edited} files edited)", seconds)
        seconds, _ = timed(lambda: apply_plan(hub, plan, reason="bench"))
        keep(f"apply ({edited} updates)", seconds)
        if round_ == 0:
            seconds, _ = timed(lambda: subprocess.run(
                [sys.executable, "-m", "confhub.cli", "plan", str(root), "--tenant",
                 tenant, *cli_target], capture_output=True, check=False))
            keep("`confhub plan DIR` subprocess, wall", seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=1000)
    parser.add_argument("--namespaces", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, {platform.system()} {platform.release()}")
    print("anchor (issue 12 target): plan <= 2000 ms, apply <= 3000 ms for 1,000 keys")
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "embedded.db"
        hub = confhub.open(f"sqlite:///{db}")
        try:
            run(hub, "embedded (SQLite)", args, ["--db", str(db)])
        finally:
            hub.close()
        with live_server(Path(tmp) / "served.db") as url:
            hub = confhub.open(url)
            try:
                run(hub, f"server ({url}, SQLite)", args, ["--url", url])
            finally:
                hub.close()


if __name__ == "__main__":
    main()
