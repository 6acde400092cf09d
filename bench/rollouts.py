"""Staged rollout figures (issue 14), against the plain paths they build on, in one run.

What it measures (docs/benchmarks.md reports these figures):

* ``reads``   the cost of identity-aware resolution on a cached read: ``get`` as an
              anonymous reader (today's cached get, the anchor), as a consumer when no rollout
              runs, when one runs on another key, and when it reads the staged key itself;
* ``calls``   the same reads counted in Python calls per get (cProfile): a cost figure a
              loaded machine cannot disturb, as ``bench/calls.py`` does for the core;
* ``fleet``   N consumers (remote live values with identities, one thread each, in this
              process) on a real ``confhub serve`` (granian, 1 worker, SQLite):
              - anchor: an ordinary write of the watched key, until every consumer applied it;
              - step:   each step of a 10,20,...,100 rollout, from the advance request until
                        the last new cohort member applied the staged value (and per consumer);
              - revert: from the first ``failed`` report until every cohort consumer is back
                        on the committed value (the automatic rollback, end to end).

Usage::

    python bench/rollouts.py                       # both, 200 consumers
    python bench/rollouts.py --only reads
    python bench/rollouts.py --consumers 50 --reverts 3

Nothing is asserted; the script prints a table (``--json`` for the raw numbers).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
import timeit
from pathlib import Path
from typing import Any

import httpx

import confhub
from confhub.cohort import bucket
from confhub.remote import RemoteHub
from confhub.server.testing import live_server


def reads(calls: int = 100_000, repeats: int = 15) -> dict[str, float]:
    """ns per cached get: the fastest of ``repeats`` runs (timeit's advice: the minimum is
    the figure the machine's other load disturbs least), the variants interleaved so a burst
    of load elsewhere hits all of them alike."""
    with tempfile.TemporaryDirectory() as tmp:
        hub = confhub.open(str(Path(tmp) / "r.db"))
        cfg = hub.tenant()
        cfg.set("models", "a", {"tokens": 1})
        cfg.set("models", "b", {"tokens": 1})
        cfg.set("models", "c", {"tokens": 1})
        member = hub.tenant(client_id="bench-1", labels={"region": "eu"})
        plain = hub.tenant(client_id="bench-2")
        cfg.rollouts.start([{"op": "put", "namespace": "models", "key": "b",
                             "value": {"tokens": 2}}], strategy="all-at-once", bake="1h",
                           selector="region=eu")
        variants = {
            "anonymous get (anchor)": lambda: cfg.get("models", "a"),
            "consumer get, not in the cohort": lambda: plain.get("models", "a"),
            "consumer get, rollout on another key": lambda: member.get("models", "a"),
            "consumer get of the staged key": lambda: member.get("models", "b"),
        }
        best = dict.fromkeys(variants, float("inf"))
        for _ in range(repeats):
            for name, fn in variants.items():
                fn()
                best[name] = min(best[name], timeit.timeit(fn, number=calls) / calls * 1e9)
        hub.close()
    return best


def calls(n: int = 200) -> dict[str, float]:
    """Python calls per cached get, anonymous and as a consumer (a rollout running)."""
    import cProfile
    import pstats

    def per_op(fn: Any) -> float:
        profile = cProfile.Profile()
        profile.enable()
        for i in range(n):
            fn(i)
        profile.disable()
        return float(pstats.Stats(profile).total_calls) / n  # type: ignore[attr-defined]

    with tempfile.TemporaryDirectory() as tmp:
        hub = confhub.open(str(Path(tmp) / "c.db"))
        cfg = hub.tenant()
        for i in range(100):
            cfg.set("models", f"k{i}", {"max_tokens": i})
        member = hub.tenant(client_id="bench-1", labels={"region": "eu"})
        cfg.rollouts.start([{"op": "put", "namespace": "models", "key": "k1",
                             "value": {"max_tokens": 5}}], strategy="all-at-once", bake="1h")
        cfg.get("models", "k1")
        member.get("models", "k1")
        figures = {
            "anonymous get (anchor)": per_op(lambda i: cfg.get("models", f"k{i % 100}")),
            "consumer get, 1 of 100 keys staged": per_op(
                lambda i: member.get("models", f"k{i % 100}")),
        }
        hub.close()
    return figures


class Consumers:
    """N remote live values; records when each one last took a given value."""

    def __init__(self, url: str, count: int) -> None:
        self.hub = RemoteHub(url, timeout=30)
        self.ids = [f"b{i:03d}" for i in range(count)]
        self.applied: dict[tuple[str, int], float] = {}
        self._lock = threading.Condition()
        self.lives = []
        for client in self.ids:
            live = self.hub.tenant("bench", client_id=client).live(
                "models", "a", cache_file=False)
            live.on_change(self._recorder(client))
            self.lives.append(live)

    def _recorder(self, client: str) -> Any:
        def record(old: Any, new: Any) -> None:
            with self._lock:
                self.applied[(client, new["tokens"])] = time.perf_counter()
                self._lock.notify_all()
        return record

    def wait(self, clients: list[str], tokens: int, timeout: float = 60) -> list[float]:
        with self._lock:
            ok = self._lock.wait_for(
                lambda: all((c, tokens) in self.applied for c in clients), timeout)
            assert ok, f"only {sum((c, tokens) in self.applied for c in clients)} applied"
            return [self.applied[(c, tokens)] for c in clients]

    def close(self) -> None:
        for live in self.lives:
            live.close()
        self.hub.close()


def fleet(count: int, reverts: int) -> dict[str, Any]:
    out: dict[str, Any] = {"consumers": count}
    with tempfile.TemporaryDirectory() as tmp, live_server(Path(tmp) / "f.db") as url:
        http = httpx.Client(base_url=url, timeout=30)
        http.post("/v1/tenants", json={"id": "bench"}).raise_for_status()
        key = "/v1/tenants/bench/configs/models/a"
        http.put(key, json={"tokens": 0}).raise_for_status()
        fleet = Consumers(url, count)
        try:
            # anchor: an ordinary write reaching everyone
            anchor = []
            for tokens in range(1, 6):
                t0 = time.perf_counter()
                http.put(key, json={"tokens": tokens}).raise_for_status()
                anchor.append(max(fleet.wait(fleet.ids, tokens)) - t0)
            out["anchor_write_to_last_ms"] = [round(x * 1000, 1) for x in anchor]
            # steps of one rollout, advanced by hand
            steps = list(range(10, 101, 10))
            answer = http.post("/v1/tenants/bench/rollouts", json={
                "ops": [{"op": "put", "namespace": "models", "key": "a",
                         "value": {"tokens": 100}}],
                "steps": steps, "bake": "1h"}).json()
            rid, salt = answer["id"], f"bench/{answer['id']}"
            seen: set[str] = set()
            last, per_consumer = [], []
            for index, percent in enumerate(steps):
                cohort = [c for c in fleet.ids if bucket(salt, c) < percent * 100]
                new = [c for c in cohort if c not in seen]
                t0 = time.perf_counter()
                if index:  # (step 0 began with the start request)
                    http.post(f"/v1/tenants/bench/rollouts/{rid}/advance").raise_for_status()
                if new:
                    times = fleet.wait(new, 100)
                    if index:
                        per_consumer += [t - t0 for t in times]
                        last.append(max(times) - t0)
                seen.update(cohort)
            http.post(f"/v1/tenants/bench/rollouts/{rid}/advance").raise_for_status()
            out["step_to_last_ms"] = [round(x * 1000, 1) for x in last]
            out["step_per_consumer_ms"] = _quantiles(per_consumer)
            # automatic rollback from the first failure report
            reverted = []
            for attempt in range(reverts):
                bad = 1000 + attempt
                answer = http.post("/v1/tenants/bench/rollouts", json={
                    "ops": [{"op": "put", "namespace": "models", "key": "a",
                             "value": {"tokens": bad}}],
                    "strategy": "all-at-once", "bake": "1h"}).json()
                fleet.wait(fleet.ids, bad)
                for client in fleet.ids:  # forget when they last took the committed value
                    fleet.applied.pop((client, 100), None)
                t0 = time.perf_counter()
                http.post(f"/v1/tenants/bench/consumers/{fleet.ids[0]}/reports", json={
                    "rollout": answer["id"], "status": "failed", "reason": "bench"})
                reverted.append(max(fleet.wait(fleet.ids, 100)) - t0)
            out["failure_to_all_back_ms"] = [round(x * 1000, 1) for x in reverted]
        finally:
            fleet.close()
    return out


def _quantiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return {"n": len(ordered), "p50": round(pick(0.5) * 1000, 1),
            "p99": round(pick(0.99) * 1000, 1), "max": round(ordered[-1] * 1000, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", default="reads,calls,fleet")
    parser.add_argument("--consumers", type=int, default=200)
    parser.add_argument("--reverts", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results: dict[str, Any] = {}
    wanted = set(args.only.split(","))
    if "reads" in wanted:
        results["reads_ns"] = reads()
    if "calls" in wanted:
        results["calls_per_get"] = calls()
    if "fleet" in wanted:
        results["fleet"] = fleet(args.consumers, args.reverts)
    if args.json:
        json.dump(results, sys.stdout, indent=2)
        print()
        return
    for name, value in results.get("reads_ns", {}).items():
        print(f"{name:40s} {value:8.0f} ns")
    for name, value in results.get("calls_per_get", {}).items():
        print(f"{name:40s} {value:8.2f} Python calls")
    for name, value in results.get("fleet", {}).items():
        print(f"{name:40s} {value}")


if __name__ == "__main__":
    main()
