"""``bench``: load-test a server or an embedded store (engine: ``confhub.loadtest``).

It never touches data it did not make: by default it creates a tenant of its own
(``bench-<random>``) and hard-deletes it afterwards; with ``--tenant`` it refuses a namespace
that holds keys and deletes the keys it wrote when done.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer

import confhub

from ..errors import InvalidRequest
from ..loadtest import PROFILES, Report, run_fanout, run_load, verdict
from .common import session, target, target_options

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    app.command("bench")(bench)


@target_options
def bench(
    cmd: typer.Context,
    readers: Annotated[int, typer.Option("--readers", min=0, metavar="N",
                                         help="Concurrent reader threads.")] = 100,
    writers: Annotated[int, typer.Option("--writers", min=0, metavar="N",
                                         help="Concurrent writer threads.")] = 10,
    duration: Annotated[float, typer.Option("--duration", min=0.5, metavar="SECONDS",
                                            help="How long the load runs.")] = 60.0,
    keys: Annotated[int, typer.Option("--keys", min=1, metavar="N",
                                      help="Keys read (written before the run).")] = 100,
    fanout: Annotated[int, typer.Option(
        "--fanout", min=0, metavar="N",
        help="Then publish --events writes to N watchers and time until all have each.")] = 0,
    events: Annotated[int, typer.Option("--events", min=1, metavar="N",
                                        help="Writes published in the fan-out.")] = 100,
    check: Annotated[str | None, typer.Option(
        "--check", metavar="small|medium|large",
        help="PASS/FAIL against a profile's load and thresholds (like etcdctl check perf); "
             "exit 1 on FAIL.")] = None,
    tenant: Annotated[str | None, typer.Option(
        "--tenant", "-t", metavar="TENANT",
        help="Run in this tenant (else a temporary one, deleted afterwards).")] = None,
    namespace: Annotated[str, typer.Option("--namespace", metavar="NS",
                                           help="Namespace written; must be empty.")
                         ] = "confhub-bench",
) -> None:
    """Load-test: readers and writers for a duration; QPS, p50/p95/p99/max latency, errors.

    [b]Examples[/b]

      $ confhub bench --url http://127.0.0.1:8011 --readers 100 --writers 10 --duration 60
      $ confhub bench --db /tmp/bench.db --duration 10 --json
      $ confhub bench --url http://127.0.0.1:8011 --fanout 50 --events 200
      $ confhub bench --url http://127.0.0.1:8011 --check small
    """
    profile = None
    if check is not None:
        if check not in PROFILES:
            raise typer.BadParameter(f"must be one of {', '.join(PROFILES)}",
                                     param_hint="--check")
        profile = PROFILES[check]
        readers, writers = profile.readers, profile.writers
        if not _typed(cmd, "duration"):
            duration = profile.duration
    with session(cmd) as ctx:
        where, secret = target(cmd)
        remote = where.startswith(("http://", "https://"))
        with _bench_space(ctx.hub, tenant, namespace, keys) as cfg:
            hubs = _Hubs(ctx.hub, where, secret, remote)
            try:
                with ctx.out.progress("starting the load…") as update:
                    def shown(elapsed: float, reads: int, writes: int) -> None:
                        update(f"{elapsed:4.0f}/{duration:g} s  reads {reads:,}  "
                               f"writes {writes:,}")

                    reads, writes, problems = run_load(
                        _reader(hubs, cfg.name, namespace, keys),
                        _writer(hubs, cfg.name, namespace, keys),
                        readers=readers, writers=writers, duration=duration,
                        write_rate=profile.write_rate if profile else None, progress=shown)
                    fan = None
                    if fanout:
                        update(f"fan-out to {fanout} watchers…")
                        fan = _fanout(hubs, cfg.name, namespace, fanout, events)
            finally:
                hubs.close()
        report = Report(target=where, backend=ctx.hub.backend, readers=readers,
                        writers=writers, duration_s=duration, keys=keys, reads=reads,
                        writes=writes, errors=int(reads["errors"] + writes["errors"]),
                        fanout=fan)
        if profile is not None and check is not None:
            report.check = verdict(check, profile, reads, writes)
        ctx.out.result(report.to_dict(), lambda: _show(ctx.out, report, problems))
    if report.check is not None and report.check["verdict"] != "PASS":
        raise typer.Exit(1)


def _typed(cmd: typer.Context, name: str) -> bool:
    source = cmd.get_parameter_source(name)
    return source is not None and source.name == "COMMANDLINE"


@contextmanager
def _bench_space(hub: Any, tenant: str | None, namespace: str, keys: int) -> Iterator[Any]:
    """The tenant to load, with ``keys`` keys written; cleaned up afterwards."""
    own = tenant is None
    name = tenant or f"bench-{uuid.uuid4().hex[:8]}"
    if own:
        hub.create_tenant(name)
    else:
        existing = hub.tenant(name).list(namespace)
        if existing:
            raise InvalidRequest(
                f"namespace {namespace!r} of tenant {name!r} holds {len(existing)} keys; "
                "bench only runs on an empty namespace (pick one with --namespace)")
    cfg = hub.tenant(name)
    try:
        with cfg.transaction(reason="confhub bench: keys to read") as tx:
            for i in range(keys):
                tx.set(namespace, f"k{i}", {"i": i, "payload": "x" * 100})
        yield cfg
    finally:
        if own:
            hub.delete_tenant(name, hard=True)
        else:  # only the keys bench writes (k<i>, w<writer>-<i>, fanout)
            written = [e.key for e in cfg.list(namespace) if _OURS.fullmatch(e.key)]
            if written:
                with cfg.transaction(reason="confhub bench: clean up") as tx:
                    for key in written:
                        tx.delete(namespace, key)


_OURS = re.compile(r"k\d+|w\d+-\d+|fanout")


class _Hubs:
    """One client per thread over HTTP (each its own connection); the shared hub embedded."""

    def __init__(self, hub: Any, where: str, token: str | None, remote: bool) -> None:
        self.hub, self.where, self.token, self.remote = hub, where, token, remote
        self.opened: list[Any] = []

    def one(self) -> Any:
        if not self.remote:
            return self.hub
        hub = confhub.open(self.where, token=self.token)
        self.opened.append(hub)
        return hub

    def close(self) -> None:
        for hub in self.opened:
            hub.close()


def _reader(hubs: _Hubs, tenant: str, namespace: str, keys: int
            ) -> Callable[[int], Callable[[int], object]]:
    def make(n: int) -> Callable[[int], object]:
        cfg = hubs.one().tenant(tenant)
        return lambda i: cfg.get(namespace, f"k{(i + n) % keys}")
    return make


def _writer(hubs: _Hubs, tenant: str, namespace: str, keys: int
            ) -> Callable[[int], Callable[[int], object]]:
    def make(n: int) -> Callable[[int], object]:
        cfg = hubs.one().tenant(tenant)
        return lambda i: cfg.set(namespace, f"w{n}-{i % keys}", {"i": i, "payload": "y" * 100},
                                 reason="confhub bench")
    return make


def _fanout(hubs: _Hubs, tenant: str, namespace: str, watchers: int, events: int
            ) -> dict[str, float]:
    publisher = hubs.hub.tenant(tenant)

    def publish(i: int) -> None:
        publisher.set(namespace, "fanout", {"i": i})

    def subscribe(on_event: Callable[[int], None]) -> Callable[[], None]:
        cfg = hubs.one().tenant(tenant)

        def changed(change: Any) -> None:
            if change.key == "fanout" and isinstance(change.value, dict):
                on_event(int(change.value["i"]))

        handle = cfg.watch(changed, namespace=namespace, key="fanout",
                           since=cfg.revision)
        return handle.stop  # type: ignore[no-any-return]

    return run_fanout(publish, subscribe, watchers=watchers, events=events)


def _show(out: Any, report: Report, problems: list[str]) -> None:
    rows = [[name, f"{fig['count']:,}", f"{fig['qps']:,}", fig["p50_ms"], fig["p95_ms"],
             fig["p99_ms"], fig["max_ms"], f"{fig['errors']:,}"]
            for name, fig in (("read", report.reads), ("write", report.writes))]
    if report.fanout is not None:
        fan = report.fanout
        rows.append([f"fan-out ×{fan['watchers']}", f"{fan['events']:,}", "", fan["p50_ms"],
                     fan["p95_ms"], fan["p99_ms"], fan["max_ms"], f"{fan['missed']} missed"])
    out.table(f"confhub bench: {report.readers} readers, {report.writers} writers, "
              f"{report.duration_s:g} s on {report.target}",
              ["", "ops", "ops/s", "p50 ms", "p95 ms", "p99 ms", "max ms", "errors"], rows)
    for problem in problems:
        out.note(f"first error: {problem}")
    if report.check is not None:
        check = report.check
        for failure in check["failures"]:
            out.note(f"FAIL: {failure}")
        out.print(f"[bold]{check['verdict']}[/bold] (profile {check['profile']})")
