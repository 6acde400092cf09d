"""Feature-flag evaluation figures (issue 16): in process and over OFREP, with anchors.

In process — one flag with a targeting rule (``if`` on ``ends_with`` of an attribute, a
``fractional`` split otherwise), timed per call, median and p99 over ``--calls`` calls after a
warm-up, at three depths:

* ``FlagSet.evaluate``: confhub's evaluation alone;
* ``ConfhubProvider.resolve_boolean_details``: what the OpenFeature SDK calls;
* ``client.get_boolean_value``: the application's call through the OpenFeature SDK (hooks,
  context merging, status checks);
* anchor, in the same run: ``FlagdCore.resolve_boolean_value`` of ``openfeature-flagd-core``
  (flagd's own Python in-process evaluator) on the same flag.

Over HTTP — a real ``python -m confhub.server`` (granian, 1 worker) on SQLite, driven by ``wrk``
(``apt-get install -y wrk``) at ``--connections`` connections for ``--duration`` seconds:

* OFREP single: ``POST /ofrep/v1/evaluate/flags/{key}`` with a context;
* OFREP bulk: ``POST /ofrep/v1/evaluate/flags`` over ``--flags`` flags;
* anchors, in the same run: ``GET /config/bench/key`` (confhub's lean cached read path) and
  the same key through the full FastAPI route (``/v1/tenants/default/configs/bench/key?env=base``).

Usage::

    python bench/flags.py                      # everything
    python bench/flags.py --only inprocess --calls 200000
    python bench/flags.py --only http --duration 5 --json

Nothing is asserted; the script prints a table (``--json`` for the raw numbers).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

import confhub  # noqa: E402
from confhub.flags import FlagSet  # noqa: E402
from confhub.openfeature import ConfhubProvider  # noqa: E402
from confhub.server.testing import live_server  # noqa: E402

FLAG = {"state": "ENABLED", "variants": {"on": True, "off": False}, "defaultVariant": "off",
        "targeting": {"if": [{"ends_with": [{"var": "email"}, "@acme.com"]}, "on",
                             {"fractional": [["on", 10], ["off", 90]]}]}}
CONTEXT = {"email": "kim@acme.com", "plan": "pro"}


def timed(fn: Callable[[], object], calls: int) -> dict[str, float]:
    """Median and p99 in microseconds of ``calls`` timed calls (after calls // 10 warm-up)."""
    for _ in range(max(calls // 10, 100)):
        fn()
    samples = []
    clock = time.perf_counter_ns
    for _ in range(calls):
        start = clock()
        fn()
        samples.append(clock() - start)
    samples.sort()
    return {"median_us": statistics.median(samples) / 1000,
            "p99_us": samples[int(len(samples) * 0.99)] / 1000}


def in_process(calls: int) -> dict[str, dict[str, float]]:
    from openfeature import api
    from openfeature.contrib.tools.flagd.core import FlagdCore
    from openfeature.evaluation_context import EvaluationContext

    flags = FlagSet({"new-checkout": FLAG}, {"new-checkout": 1})
    ctx = EvaluationContext("user-1", CONTEXT)
    with tempfile.TemporaryDirectory() as tmp:
        hub = confhub.open(f"sqlite:///{tmp}/bench.db")
        hub.tenant().set("flags", "new-checkout", FLAG)
        provider = ConfhubProvider(hub)
        api.set_provider_and_wait(provider, "bench")
        client = api.get_client("bench")
        assert client.get_boolean_value("new-checkout", False, ctx) is True
        flagd = FlagdCore()
        flagd.set_flags(json.dumps({"flags": {"new-checkout": FLAG}}))  # it edits dicts
        assert flagd.resolve_boolean_value("new-checkout", False, ctx).value is True
        out = {
            "FlagSet.evaluate": timed(
                lambda: flags.evaluate("new-checkout", CONTEXT, "user-1"), calls),
            "ConfhubProvider.resolve_boolean_details": timed(
                lambda: provider.resolve_boolean_details("new-checkout", False, ctx), calls),
            "OpenFeature client.get_boolean_value": timed(
                lambda: client.get_boolean_value("new-checkout", False, ctx), calls),
            "anchor: flagd-core FlagdCore.resolve_boolean_value": timed(
                lambda: flagd.resolve_boolean_value("new-checkout", False, ctx), calls),
        }
        api.shutdown()
        hub.close()
    return out


LUA = """
wrk.method = "POST"
wrk.body = '%s'
wrk.headers["Content-Type"] = "application/json"
"""


def wrk(url: str, duration: int, connections: int, script: str | None = None
        ) -> dict[str, float]:
    cmd = ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency", url]
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        if script:
            handle.write(script)
            cmd[1:1] = ["-s", handle.name]
    text = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    p50 = re.search(r"50%\s+([\d.]+)(us|ms|s)", text)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", text)

    def ms(found: re.Match[str] | None) -> float:
        assert found is not None
        return float(found.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[found.group(2)]

    return {"rps": rps, "p50_ms": ms(p50), "p99_ms": ms(p99),
            "non_2xx": float(errors.group(1)) if errors else 0.0}


def over_http(duration: int, connections: int, n_flags: int) -> dict[str, dict[str, float]]:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install -y wrk")
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.db"
        with confhub.open(f"sqlite:///{db}") as hub:
            cfg = hub.tenant()
            with cfg.transaction() as tx:
                for i in range(n_flags):
                    tx.set("flags", f"flag-{i:03d}", FLAG)
            cfg.set("bench", "key", {"max_tokens": 8192})
        with live_server(db) as url:
            body = json.dumps({"context": {"targetingKey": "user-1", **CONTEXT}})
            return {
                "anchor: GET /config/bench/key": wrk(f"{url}/config/bench/key", duration,
                                                     connections),
                "anchor: GET …/configs/bench/key?env=base": wrk(
                    f"{url}/v1/tenants/default/configs/bench/key?env=base", duration,
                    connections),
                "OFREP single": wrk(f"{url}/ofrep/v1/evaluate/flags/flag-000", duration,
                                    connections, LUA % body),
                f"OFREP bulk ({n_flags} flags)": wrk(f"{url}/ofrep/v1/evaluate/flags",
                                                     duration, connections, LUA % body),
            }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", choices=["inprocess", "http"])
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--flags", type=int, default=100)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results: dict[str, Any] = {}
    if args.only in (None, "inprocess"):
        results["in_process"] = in_process(args.calls)
    if args.only in (None, "http"):
        results["http"] = over_http(args.duration, args.connections, args.flags)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    for name, figures in results.get("in_process", {}).items():
        print(f"{name:55} median {figures['median_us']:7.2f} µs   p99 "
              f"{figures['p99_us']:7.2f} µs")
    for name, figures in results.get("http", {}).items():
        print(f"{name:55} {figures['rps']:9.0f} req/s   p50 {figures['p50_ms']:6.2f} ms   "
              f"p99 {figures['p99_ms']:6.2f} ms   non-2xx {figures['non_2xx']:.0f}")


if __name__ == "__main__":
    main()
