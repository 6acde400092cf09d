"""A tenant's flags, kept current in memory: what in-process evaluation reads.

:class:`LiveFlags` lists the flags namespace at revision R, then follows the namespace's watch
stream from R (the same never-miss-a-change order as ``live.py``), replacing its
:class:`FlagSet` whole on every committed revision, so an evaluation reads one attribute and
never sees half a transaction. It works on any tenant, embedded or remote:

    start()                 list at R, FlagSet ready           -> on_connection(True)
    revision R+1 commits    FlagSet replaced                   -> on_change(["new-checkout"], R+1)
    server goes away        (remote) stream drops              -> on_connection(False)
    server back             stream resumes after the last revision seen -> on_connection(True),
                            then the changes missed meanwhile, in order -> on_change(...)
    history removed (410)   re-list, as at start               -> on_change(whatever differs)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, Protocol

from ..errors import ConfhubError, Forbidden, Gone, Unavailable
from ..flags import FLAGS_NAMESPACE, FlagSet
from ..layering import resolve_layers
from ..model import BASE_ENV, Change, Entry, WatchEvent, check_name

__all__ = ["FlagTenant", "LiveFlags"]

logger = logging.getLogger("confhub.flags")

MAX_BACKOFF = 2.0
CONNECT_TIMEOUT = 10.0


class FlagTenant(Protocol):
    """What live flags need of a tenant (embedded and remote tenants both have it)."""

    name: str

    @property
    def revision(self) -> int: ...

    def list(self, namespace: str, *, env: str = BASE_ENV, prefix: str | None = None
             ) -> list[Entry]: ...

    def watch_events(self, namespace: str | None = None, key: str | None = None,
                     env: str | None = None, since: int | None = None) -> Any: ...


class LiveFlags:
    """The flags of ``namespace`` in ``env`` of a tenant, current while the process runs."""

    def __init__(self, tenant: FlagTenant, namespace: str = FLAGS_NAMESPACE,
                 env: str = BASE_ENV) -> None:
        self.tenant = tenant
        self.namespace = check_name("namespace", namespace)
        self.env = check_name("env", env)
        self.flags = FlagSet({})
        self.revision = 0
        self.connected = False
        self._reported = False  # what on_connection listeners were last told
        self.error: ConfhubError | None = None  # the last failure, None once loaded again
        self._layers: dict[tuple[str, str], tuple[Any, int]] = {}  # (env, key) -> (value, v)
        self._on_change: list[Callable[[list[str], int], object]] = []
        self._on_connection: list[Callable[[bool], object]] = []
        self._loaded = threading.Event()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False  # a session closes its stream: a cancel would cut it short

    # ------------------------------------------------------------------ listeners

    def on_change(self, callback: Callable[[list[str], int], object]) -> None:
        """``callback(changed_flag_keys, revision)`` after each revision that changed flags."""
        self._on_change.append(callback)

    def on_connection(self, callback: Callable[[bool], object]) -> None:
        """``callback(False)`` when the source becomes unreachable, ``(True)`` when back."""
        self._on_connection.append(callback)

    # ------------------------------------------------------------------ lifecycle

    def start(self, timeout: float | None = 10.0) -> bool:
        """Start following; wait up to ``timeout`` for the first load. True when loaded; a
        source that cannot be reached yet keeps trying in the background."""
        if self._thread is None or not self._thread.is_alive():  # first start, or again
            self._stopped.clear()
            self._thread = threading.Thread(target=self._run, daemon=True,
                                            name=f"confhub-flags-{self.tenant.name}")
            self._thread.start()
        return self._loaded.wait(timeout)

    @property
    def loaded(self) -> bool:
        return self._loaded.is_set()

    def stop(self, timeout: float = 5.0) -> None:
        self._stopped.set()
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop already ended
                loop.call_soon_threadsafe(self._interrupt)
        if self._thread is not None and threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def _interrupt(self) -> None:
        """On the source's own loop: cancel the task unless a session is closing its stream
        (the close then runs to its end, and the loop sees ``_stopped`` right after)."""
        if self._task is not None and not self._closing:
            self._task.cancel()

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        delay = 0.05
        while not self._stopped.is_set():
            try:
                await self._session()
            except asyncio.CancelledError:
                return
            except Gone:
                logger.info("flags of %s: history removed; re-listing", self.tenant.name)
                continue
            except ConfhubError as exc:
                self.error = exc
                if isinstance(exc, Unavailable):
                    self._connection(False)
                logger.warning("flags of tenant %r: %s; retrying in %.2fs", self.tenant.name,
                               exc, delay)
            except Exception as exc:  # noqa: BLE001 - a transport failure of any client
                self.error = Unavailable(f"cannot reach the flags of {self.tenant.name!r}: "
                                         f"{type(exc).__name__}: {exc}")
                self._connection(False)
                logger.warning("flags of tenant %r: %s; retrying", self.tenant.name, exc)
            else:
                delay = 0.05
            if self._stopped.is_set():
                return
            try:
                await asyncio.sleep(delay)
            except asyncio.CancelledError:
                return
            delay = min(delay * 2, MAX_BACKOFF)

    async def _session(self) -> None:
        """Load, then follow until the stream ends for good (or raises).

        Usually: read the tenant's revision R, list, watch from R. A token limited to the flags
        namespace may not read the tenant's revision (403): then the watch is opened first,
        from "now", and the list is read once the stream has reported its position, so a
        change lands in the list, the stream, or both (applying it twice changes nothing).
        """
        tenant = self.tenant
        try:
            revision: int | None = await asyncio.to_thread(lambda: tenant.revision)
        except Forbidden:
            revision = None
        watch = tenant.watch_events(namespace=self.namespace, since=revision)
        register = getattr(watch, "on_connection", None)  # remote streams report outages
        if register is not None:
            register(self._connection)
        events: AsyncIterator[WatchEvent] = watch.__aiter__()
        pending: asyncio.Future[WatchEvent] | None = None
        try:
            if revision is None:
                pending = asyncio.ensure_future(events.__anext__())
                opened = getattr(watch, "connected", None)  # threading.Event (remote watch)
                if opened is not None and not await asyncio.to_thread(opened.wait,
                                                                      CONNECT_TIMEOUT):
                    if pending.done():
                        pending.result()  # the stream's own error
                    raise Unavailable("the flags watch did not open within "
                                      f"{CONNECT_TIMEOUT:g}s")
                revision = int(getattr(watch, "revision", None) or 0)
            await self._load(revision)
            if pending is not None:
                self._take(await pending)
            async for event in events:
                self._take(event)
        finally:
            self._closing = True
            try:
                await self._close(events, pending)
            finally:
                self._closing = False

    @staticmethod
    async def _close(events: AsyncIterator[WatchEvent],
                     pending: asyncio.Future[WatchEvent] | None) -> None:
        """End a session's stream: first the read still waiting for the stream's first
        event, to its end (closing the generator while that read runs it would fail, and
        leave its connection to be closed after the loop ended), then the generator."""
        if pending is not None:
            if not pending.done():
                pending.cancel()
                await asyncio.wait([pending])
            if not pending.cancelled():
                pending.exception()  # retrieved, so never reported as "never retrieved"
        close = getattr(events, "aclose", None)
        if close is not None:
            with contextlib.suppress(Exception):
                await close()

    async def _load(self, revision: int) -> None:
        """List the namespace (a state at ``revision`` or later) and publish it."""
        layers: dict[tuple[str, str], tuple[Any, int]] = {}
        for env in dict.fromkeys((BASE_ENV, self.env)):
            entries = await asyncio.to_thread(self.tenant.list, self.namespace, env=env)
            layers.update(((env, e.key), (e.value, e.version)) for e in entries)
        self._layers = layers
        self.error = None
        self._publish(revision)
        self._loaded.set()
        self._connection(True)

    def _take(self, event: WatchEvent) -> None:
        self._apply(event.changes)
        self._publish(event.revision)

    # ------------------------------------------------------------------ state

    def _apply(self, changes: Sequence[Change]) -> None:
        for change in changes:
            if change.env not in (BASE_ENV, self.env):
                continue
            if change.op == "delete" or change.value is None:
                self._layers.pop((change.env, change.key), None)
            else:
                self._layers[(change.env, change.key)] = (change.value, change.version)

    def _publish(self, revision: int) -> None:
        values: dict[str, Any] = {}
        versions: dict[str, int] = {}
        for (env, key), (value, version) in sorted(self._layers.items(),
                                                    key=lambda item: item[0][0] != BASE_ENV):
            if env == BASE_ENV or key not in values:
                values[key], versions[key] = value, version
            else:
                values[key] = resolve_layers([(BASE_ENV, values[key]), (env, value)])[0]
                versions[key] = version
        old, new = self.flags, FlagSet(values, versions)
        self.flags, self.revision = new, revision
        changed = new.changed_keys(old)
        if old.evaluators != new.evaluators or old.metadata != new.metadata:
            changed = sorted(set(changed) | set(new.flag_keys()))
        if changed and self._loaded.is_set():
            for callback in self._on_change:
                try:
                    callback(changed, revision)
                except Exception:  # noqa: BLE001 - a listener never stops the source
                    logger.exception("flags change listener failed")

    def _connection(self, connected: bool) -> None:
        """Record the source's reachability; listeners hear of changes once loaded."""
        self.connected = connected
        if not self._loaded.is_set() or connected == self._reported:
            return
        self._reported = connected
        for callback in self._on_connection:
            try:
                callback(connected)
            except Exception:  # noqa: BLE001
                logger.exception("flags connection listener failed")
