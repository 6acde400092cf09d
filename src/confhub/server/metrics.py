"""Prometheus metrics of a confhub server, correct across several worker processes.

``confhub serve`` runs N worker processes; a scrape reaches one of them. So that the figures
are the server's and not one worker's, ``serve`` gives every worker one directory
(``PROMETHEUS_MULTIPROC_DIR``) and prometheus-client's multiprocess mode: each worker writes
its counters and histograms to memory-mapped files there and the scraped worker sums them all
(a worker that exits keeps its counts; gauges of live streams sum live workers only). Without
that directory (tests, an app built by hand) the metrics live in the process, per app.

What is counted, and where it is counted (once per request, by the worker that answers it —
never from the change feed, which every worker sees)::

    confhub_http_requests_total{method,route,status}     every answer, route = its template
    confhub_http_request_seconds{method,route}           latency histogram
    config_latency_seconds{operation}                    read | write | watch | other
    confhub_commits_total{tenant}                        writes that committed (one revision)
    config_changes_total{tenant,operation}               the same, by put|patch|delete|...
    config_rollbacks_total{tenant}                       rollbacks that committed
    config_errors_total{code}                            every error answer, by error code
    confhub_conflicts_total, confhub_validation_failures_total, confhub_storage_errors_total
    confhub_watch_streams, confhub_watch_events_total, confhub_watch_slow_streams_total
    confhub_store_*                                      read from storage at scrape time

The store gauges (configs, versions, tenants, revisions, database size, cache entries) are read
when scraped, from the hub's public ``stats()`` and ``tenants()``, so they are the store's whole
truth whichever worker answers; they are cached for a few seconds to keep scrapes cheap.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, values
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from .loops import running_loop

__all__ = ["MULTIPROC_ENV", "Metrics", "change_operation", "latency_operation"]

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
LATENCY_BUCKETS = (.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5)
STORE_CACHE_SECONDS = 2.0

_T = "/v1/tenants/{tenant}"
_KEY = _T + "/configs/{namespace}/{key}"
# (method, route template) -> the operation a 2xx answer committed
_CHANGES: dict[tuple[str, str], str] = {
    ("PUT", _KEY): "put", ("PATCH", _KEY): "patch", ("DELETE", _KEY): "delete",
    ("PUT", "/config/{namespace}/{key}"): "put",
    ("DELETE", "/config/{namespace}/{key}"): "delete",
    ("POST", _KEY + "/rollback"): "rollback", ("POST", _T + "/txn"): "txn",
    ("POST", _T + "/restore-revision"): "restore", ("POST", _T + "/import"): "import",
}
_READ_METHODS = frozenset(("GET", "HEAD"))


MAX_SERIES = 10_000  # (method, route, status) children kept at hand by ``Metrics.observe``
_Series = tuple[Any, Any, Any, "str | None"]  # request count, latency, config latency, change


def change_operation(method: str, route: str) -> str | None:
    """The change a successful ``method route`` commits (None: it commits nothing)."""
    return _CHANGES.get((method, route))


def latency_operation(method: str, route: str) -> str:
    """The ``operation`` label of ``config_latency_seconds``."""
    if route.endswith("/watch"):
        return "watch"
    if "/configs" in route or route.startswith("/config/") or route.endswith("/txn"):
        return "read" if method in _READ_METHODS else "write"
    return "other"


def multiprocess_dir() -> str | None:
    path = os.environ.get(MULTIPROC_ENV)
    return path if path and os.path.isdir(path) else None


class Metrics:
    """The metrics of one app. In multiprocess mode the values go to the shared directory
    (the registry here is then only a holder); :meth:`exposition` reads them all back."""

    def __init__(self, hub: Any = None) -> None:
        self.multiprocess = multiprocess_dir()
        if self.multiprocess and not getattr(values.ValueClass, "_multiprocess", False):
            # prometheus-client picks its value class at import; a worker forked from a parent
            # that imported it before the directory was set must pick again.
            values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]
        self.registry = CollectorRegistry()
        self._store = _StoreCollector(hub) if hub is not None else None
        if self._store is not None and not self.multiprocess:
            self.registry.register(self._store)
        r = self.registry
        self.requests = Counter("confhub_http_requests", "HTTP requests answered",
                                ["method", "route", "status"], registry=r)
        self.latency = Histogram("confhub_http_request_seconds", "HTTP request latency",
                                 ["method", "route"], registry=r, buckets=LATENCY_BUCKETS)
        self.config_latency = Histogram(
            "config_latency_seconds", "Latency of configuration reads and writes",
            ["operation"], registry=r, buckets=LATENCY_BUCKETS)
        self.commits = Counter("confhub_commits", "Write requests that committed a revision",
                               ["tenant"], registry=r)
        self.changes = Counter("config_changes", "Configuration changes committed, by kind",
                               ["tenant", "operation"], registry=r)
        self.rollbacks = Counter("config_rollbacks", "Rollbacks committed", ["tenant"],
                                 registry=r)
        self.errors = Counter("config_errors", "Error answers, by error code", ["code"],
                              registry=r)
        self.conflicts = Counter("confhub_conflicts",
                                 "Writes refused as conflicting (409, 412)", registry=r)
        self.validation_failures = Counter("confhub_validation_failures",
                                           "Writes refused by validation (422)", registry=r)
        self.storage_errors = Counter("confhub_storage_errors",
                                      "Requests failed because storage was unavailable (503)",
                                      registry=r)
        self.fast_hits = Counter("confhub_http_cached_reads",
                                 "GETs answered by the cached lean path", registry=r)
        self.fast_writes = Counter("confhub_http_lean_writes",
                                   "PUTs answered by the lean path", registry=r)
        self.watch_streams = Gauge("confhub_watch_streams", "Open watch (SSE) streams",
                                   registry=r, multiprocess_mode="livesum")
        self.watch_events = Counter("confhub_watch_events", "Revisions sent to watch streams",
                                    registry=r)
        self.slow_watchers = Counter(
            "confhub_watch_slow_streams",
            "Times a watch stream found more than 100 revisions waiting (it fell behind)",
            registry=r)
        self._series: dict[tuple[str, str, int], _Series] = {}
        self._committed: dict[tuple[str, str], tuple[Any, ...]] = {}
        self._watch_events_due = 0

    def count_watch_events(self, count: int) -> None:
        """Add ``count`` to ``confhub_watch_events`` at the end of this turn of the event
        loop, together with the rest of the turn's: a revision written to a thousand streams
        is one ``inc`` (and one lock) instead of a thousand, a tenth of the loop's time per
        delivered event. A scrape, answered in a later turn, never misses any."""
        if not self._watch_events_due:
            running_loop().call_soon(self._add_watch_events)
        self._watch_events_due += count

    def _add_watch_events(self) -> None:
        due, self._watch_events_due = self._watch_events_due, 0
        self.watch_events.inc(due)

    def _series_of(self, method: str, route: str, status: int) -> _Series:
        """The children of one (method, route template, status): looking a labelled child
        up through ``labels()`` costs more than the rest of a cached GET's metrics. Route
        templates and methods are few, so the table stays small (reset if it ever is not)."""
        if len(self._series) > MAX_SERIES:
            self._series.clear()
        series = self._series[(method, route, status)] = (
            self.requests.labels(method, route, str(status)),
            self.latency.labels(method, route),
            self.config_latency.labels(latency_operation(method, route)),
            change_operation(method, route))
        return series

    def _committed_of(self, tenant: str, operation: str) -> tuple[Any, ...]:
        """The counters a committed ``operation`` of ``tenant`` adds one to (kept at hand
        like ``_series_of``'s; tenants are few next to requests)."""
        if len(self._committed) > MAX_SERIES:
            self._committed.clear()
        counters: tuple[Any, ...] = (self.commits.labels(tenant),
                                     self.changes.labels(tenant, operation))
        if operation == "rollback":
            counters += (self.rollbacks.labels(tenant),)
        self._committed[(tenant, operation)] = counters
        return counters

    def exposition(self) -> bytes:
        """The Prometheus text of the whole server (every worker in multiprocess mode)."""
        from prometheus_client import generate_latest

        if not self.multiprocess:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=self.multiprocess)  # type: ignore[no-untyped-call]
        if self._store is not None:
            registry.register(self._store)
        return generate_latest(registry)

    def observe(self, method: str, route: str, status: int, seconds: float,
                tenant: str | None, error_code: str | None, dry_run: bool) -> None:
        """Count one answered request (called once per request by the request layer)."""
        key = (method, route, status)
        series = self._series.get(key)
        if series is None:
            series = self._series_of(method, route, status)
        count, latency, config_latency, operation = series
        count.inc()
        latency.observe(seconds)
        config_latency.observe(seconds)
        if status < 300:
            if operation is not None and not dry_run:
                who = tenant or "default"
                committed = self._committed.get((who, operation))
                if committed is None:
                    committed = self._committed_of(who, operation)
                for counter in committed:
                    counter.inc()
            return
        if status < 400:
            return
        code = error_code or f"http_{status}"
        self.errors.labels(code).inc()
        if status in (409, 412):  # CAS mismatch, exists already, key under a rollout
            self.conflicts.inc()
        elif code == "validation_failed":
            self.validation_failures.inc()
        elif status == 503:
            self.storage_errors.inc()


class _StoreCollector(Collector):
    """Store gauges read at scrape time through the hub's public methods (cached briefly)."""

    def __init__(self, hub: Any) -> None:
        self._hub = hub
        self._lock = threading.Lock()
        self._at = 0.0
        self._families: list[GaugeMetricFamily] = []

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self._lock:
            if time.monotonic() - self._at > STORE_CACHE_SECONDS:
                self._families = self._read()
                self._at = time.monotonic()
            families = list(self._families)
        yield from families

    def _read(self) -> list[GaugeMetricFamily]:
        try:
            stats = dict(self._hub.stats())
            tenants = list(self._hub.tenants())
        except Exception:  # noqa: BLE001 - storage down: the scrape still answers
            up = GaugeMetricFamily("confhub_store_up", "Storage answered the last scrape")
            up.add_metric([], 0)
            return [up]
        families: list[GaugeMetricFamily] = []

        def gauge(name: str, doc: str, value: float) -> None:
            family = GaugeMetricFamily(name, doc)
            family.add_metric([], value)
            families.append(family)

        gauge("confhub_store_up", "Storage answered the last scrape", 1)
        gauge("confhub_store_configs", "Live configuration keys (all tenants, all envs)",
              stats.get("total_configs", 0))
        gauge("confhub_store_versions", "Versions kept in history (all tenants)",
              stats.get("total_versions", 0))
        gauge("confhub_store_tenants", "Tenants (not deleted)", stats.get("total_tenants", 0))
        gauge("confhub_store_size_bytes", "Database size on disk",
              float(stats.get("storage_size_mb", 0)) * 1024 * 1024)
        revision = GaugeMetricFamily("confhub_store_revision", "Current revision per tenant",
                                     labels=["tenant"])
        compacted = GaugeMetricFamily("confhub_store_compacted_revision",
                                      "Oldest revision a watcher can resume from, per tenant",
                                      labels=["tenant"])
        for info in tenants:
            revision.add_metric([info.id], info.revision)
            compacted.add_metric([info.id], getattr(info, "compacted_revision", 0))
        families += [revision, compacted]
        rollout_stats = self._hub.rollout_stats()
        by_state = GaugeMetricFamily("confhub_rollouts", "Rollouts by state (all tenants)",
                                     labels=["state"])
        for state, count in rollout_stats["rollouts"].items():
            by_state.add_metric([state], count)
        families.append(by_state)
        gauge("confhub_consumers", "Consumers seen in the last five minutes (all tenants)",
              rollout_stats["consumers"])
        cache_size: Callable[[], int] | None = getattr(self._hub, "cache_size", None)
        if cache_size is not None:
            gauge("confhub_cache_entries", "Entries in the answering worker's cache",
                  cache_size())
        return families


def error_code_of(body: bytes) -> str | None:
    """The ``error.code`` of an error answer's body (None if it is not one)."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    error = data.get("error") if isinstance(data, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    return code if isinstance(code, str) else None
