"""The health gate's clock: automatic rollout transitions, on one server at a time.

A thread per hub. Each round it takes the database-wide ``rollouts`` lock without waiting
(``store.leading``; PostgreSQL: an advisory lock, so with several servers on one database one
of them drives the rollouts and another takes over within a round if it dies), lists the
running and paused rollouts from the store's index, measures each one's cohort
(``Rollouts.health``), asks :func:`confhub.rollout.decide` and applies the decision as a
compare-and-set transition on the version it looked at. Nothing is kept in memory that a
restart would lose: state, reports and consumers are all in the store.

Rounds run every ``ACTIVE_ROUND`` seconds while a rollout is active (a report also wakes the
thread at once), and every ``IDLE_ROUND`` seconds otherwise. The same thread flushes the
consumer registry.

May import: ``confhub.rollout``, ``confhub.errors``, ``confhub.model`` (the tenants'
``cfg.rollouts`` it drives are handed in by the Hub).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx

from ..errors import ConfhubError, NotFound, Unavailable
from ..model import now_micros
from ..rollout import ACTIVE, decide

__all__ = ["Gatekeeper", "prometheus_fired"]

logger = logging.getLogger("confhub.rollouts")

ACTIVE_ROUND = 0.1
IDLE_ROUND = 1.0
PROMETHEUS_EVERY = 1.0


class Gatekeeper:
    """Runs rollout transitions for a hub; ``wake()`` makes the next round start now."""

    def __init__(self, store: Any, consumers: Any, clock: Callable[[], None]) -> None:
        self._store = store
        self._consumers = consumers
        self._clock = clock  # ticked every round (readers pace their registry notes by it)
        self._rollouts_of: Callable[[str], Any] | None = None
        self._wake = threading.Event()
        self._closed = threading.Event()
        self._prometheus: dict[tuple[str, str], tuple[float, str | None, str | None]] = {}
        self._thread: threading.Thread | None = None

    def start(self, rollouts_of: Callable[[str], Any]) -> None:
        """Start the rounds; ``rollouts_of(tenant)`` is that tenant's ``cfg.rollouts``."""
        self._rollouts_of = rollouts_of
        self._thread = threading.Thread(target=self._run, name="confhub-rollout-gate",
                                        daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def close(self) -> None:
        self._closed.set()
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        busy = True
        while not self._closed.is_set():
            self._wake.wait(ACTIVE_ROUND if busy else IDLE_ROUND)
            self._wake.clear()
            if self._closed.is_set():
                return
            self._clock()
            try:
                self._consumers.flush()
                busy = self.round()
            except Unavailable as exc:  # the follower and every request say so already
                logger.debug("rollout gate round skipped, storage unavailable: %s", exc)
            except ConfhubError as exc:
                logger.warning("rollout gate round failed (will retry): %s", exc)
            except Exception:  # pragma: no cover - never let the gate die silently
                logger.exception("rollout gate round failed; retrying")

    def round(self) -> bool:
        """One pass over the active rollouts (if this process leads); True if any is
        active."""
        active = self._store.rollout_index(list(ACTIVE))
        if not active:
            return False
        with self._store.leading("rollouts") as leader:
            if not leader:
                return True
            for tenant, rollout_id, _ in active:
                try:
                    self._check(tenant, rollout_id)
                except NotFound:
                    continue  # a soft-deleted tenant: its rollouts wait for its restore
                except ConfhubError as exc:
                    logger.warning("rollout %s of %s: %s", rollout_id, tenant, exc)
        return True

    def _check(self, tenant: str, rollout_id: str) -> None:
        assert self._rollouts_of is not None
        rollouts = self._rollouts_of(tenant)
        rollout = rollouts.get(rollout_id, health=False)
        if not rollout.active:
            return  # the index lags a transition made a moment ago
        fired, hold = self._prometheus_reading(rollout)
        health = rollouts.health(rollout, fired, fresh=False)
        reading = health.reading()
        if hold is not None:
            reading = type(reading)(**{**_fields(reading), "hold": hold})
        decision = decide(rollout, reading, now_micros())
        if decision is None:
            return
        action = {"advance": "advance", "complete": "advance",
                  "rollback": "rollback"}[decision.action]
        moved = rollouts.decide_and_move(rollout, action, decision.reason)
        if moved is not None:
            logger.info("rollout %s of %s: %s (%s)", rollout_id, tenant, moved.state,
                        decision.reason)

    def _prometheus_reading(self, rollout: Any) -> tuple[str | None, str | None]:
        """(why the gate fired, why it cannot tell) — queried at most once a second."""
        if rollout.gate_prometheus is None:
            return None, None
        key = (rollout.tenant, rollout.id)
        now = time.monotonic()
        cached = self._prometheus.get(key)
        if cached is not None and now - cached[0] < PROMETHEUS_EVERY:
            return cached[1], cached[2]
        url, query = rollout.gate_prometheus
        try:
            fired, hold = prometheus_fired(url, query), None
        except (httpx.HTTPError, ValueError) as exc:
            fired, hold = None, f"Prometheus at {url} cannot be read: {exc}"
        self._prometheus[key] = (now, fired, hold)
        return fired, hold


def prometheus_fired(url: str, query: str, timeout: float = 2.0) -> str | None:
    """Run ``query`` on Prometheus; a description of the result if it returned any sample
    (an alert-style expression like ``rate(errors[1m]) > 0.1`` returns nothing while
    healthy), else None. Raises httpx.HTTPError or ValueError when it cannot tell."""
    response = httpx.get(f"{url}/api/v1/query", params={"query": query}, timeout=timeout)
    response.raise_for_status()
    body = response.json()
    if body.get("status") != "success":
        raise ValueError(f"query failed: {body.get('error', body)}")
    data = body["data"]
    result = data.get("result")
    if data.get("resultType") in ("scalar", "string"):
        return f"{query} = {result[1]}" if result and float(result[1] or 0) else None
    if not result:
        return None
    first = result[0]
    labels = ",".join(f"{k}={v}" for k, v in sorted(first.get("metric", {}).items()))
    value = first.get("value", [None, "?"])[1]
    more = f" (and {len(result) - 1} more)" if len(result) > 1 else ""
    return f"{query} returned {{{labels}}} {value}{more}"


def _fields(reading: Any) -> dict[str, Any]:
    return {name: getattr(reading, name) for name in reading.__dataclass_fields__}
