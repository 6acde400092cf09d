"""Watching a confhub server: its server-sent event stream, resumed by revision.

:class:`RemoteWatch` holds the last revision it has handed out and reconnects with
``Last-Event-ID`` set to it, backing off while the server is away, so across any number of
disconnects every change arrives once and in order. The server marks its position with
``ready``/``progress`` events, so even a filtered watch that has seen nothing yet resumes
from the right place. Errors that reconnecting cannot fix (the tenant is gone, history was
removed, a bad filter, no permission) end the watch with the matching exception.

:class:`RemoteWatchHandle` runs a watch in a thread of its own for callback-style ``watch``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Any
from urllib.parse import quote

import httpx
from httpx_sse import ServerSentEvent, SSEError, aconnect_sse

from ..errors import ConfhubError, InvalidRequest, Unavailable
from ..model import Change, WatchEvent
from ..watch import WatchFilter, deliver
from .wire import change_from_json, error_from_body, error_from_response

__all__ = ["RemoteWatch", "RemoteWatchHandle"]

logger = logging.getLogger("confhub.remote")

MAX_BACKOFF = 2.0


class RemoteWatch:
    """``async for event in RemoteWatch(...)``: one WatchEvent per revision, forever."""

    def __init__(self, url: str, headers: dict[str, str], tenant: str,
                 namespace: str | None = None, key: str | None = None, env: str | None = None,
                 since: int | None = None, *, idle_timeout: float = 60.0) -> None:
        WatchFilter.of(namespace, key, env)  # same checks and errors as the embedded hub
        if since is not None and (isinstance(since, bool) or not isinstance(since, int)
                                  or since < 0):
            raise InvalidRequest(f"since must be an integer revision >= 0, not {since!r}")
        self.url = url
        self.tenant = tenant
        self.revision = since
        self._headers = headers
        self._params = {k: v for k, v in (("namespace", namespace), ("key", key),
                                          ("env", env)) if v is not None}
        # The server pings every 15 s by default; silence for this long means a dead link.
        self._timeout = httpx.Timeout(10.0, read=idle_timeout)
        self.connected = threading.Event()  # the stream is open now
        self.attempted = threading.Event()  # the first connection has succeeded or failed
        self.error: ConfhubError | None = None  # why the watch ended, if it did
        self._on_connection: list[Callable[[bool], object]] = []

    def on_connection(self, callback: Callable[[bool], object]) -> None:
        """Call ``callback(True)`` each time the stream opens and ``callback(False)`` each
        time it drops (the watch then reconnects by itself): how a consumer knows its view
        may be stale while the server is away."""
        self._on_connection.append(callback)

    def _connection(self, connected: bool) -> None:
        if connected == self.connected.is_set():
            return
        if connected:
            self.connected.set()
        else:
            self.connected.clear()
        for callback in self._on_connection:
            try:
                callback(connected)
            except Exception:  # noqa: BLE001 - a listener never stops the watch
                logger.exception("watch connection listener failed")

    def __aiter__(self) -> AsyncIterator[WatchEvent]:
        return self.events()

    async def events(self) -> AsyncGenerator[WatchEvent, None]:
        delay = 0.05
        path = f"/v1/tenants/{quote(self.tenant, safe='')}/watch"
        async with httpx.AsyncClient(base_url=self.url, headers=self._headers,
                                     timeout=self._timeout) as client:
            while True:
                headers = {"accept": "text/event-stream"}
                if self.revision is not None:
                    headers["last-event-id"] = str(self.revision)
                try:
                    async with aconnect_sse(client, "GET", path, params=self._params,
                                            headers=headers) as source:
                        if source.response.status_code >= 400:
                            await source.response.aread()
                            raise error_from_response(source.response)  # 503: retried
                        else:
                            delay = 0.05
                            async for sse in source.aiter_sse():
                                if sse.event == "message" and not sse.data:
                                    continue  # a keep-alive comment (SSE dispatches no event)
                                if sse.event == "message":
                                    event = self._event(sse)
                                    yield event
                                    self.revision = event.revision  # handed out in full
                                elif sse.event in ("ready", "progress"):
                                    self.revision = int(sse.id)
                                    self._connection(True)
                                    self.attempted.set()
                                elif sse.event == "error":
                                    raise _stream_error(sse.data)
                except (httpx.TransportError, SSEError, Unavailable) as exc:
                    self._connection(False)
                    self.attempted.set()
                    logger.info("watch of %s on %s interrupted (%s); reconnecting in %.2fs",
                                self.tenant, self.url, exc, delay)
                except ConfhubError as exc:
                    # 404, 410, 400, 401, 403: reconnecting cannot fix these.
                    self.error = exc
                    self.attempted.set()
                    raise
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_BACKOFF)

    def _event(self, sse: ServerSentEvent) -> WatchEvent:
        try:
            body = json.loads(sse.data)
            return WatchEvent(self.tenant, int(body["revision"]),
                              tuple(change_from_json(c) for c in body["changes"]))
        except (ValueError, KeyError, TypeError) as exc:
            # A cut-off stream can end in a torn event; reconnecting re-sends it whole.
            raise SSEError(f"unreadable watch event (id {sse.id!r}): {exc}") from None


def _stream_error(data: str) -> ConfhubError:
    """The error an ``event: error`` carries; one this client cannot read is worth a retry
    (503 makes an unknown or unreadable code Unavailable)."""
    try:
        body = json.loads(data)
    except ValueError:
        body = None
    return error_from_body(body, 503, data)


class RemoteWatchHandle:
    """A remote watch in its own thread calling ``callback(change)``; ``stop()`` ends it.

    Same contract as the embedded ``WatchHandle``: changes in revision order, exactly once,
    a raising callback is logged and the watch carries on.
    """

    def __init__(self, watch: RemoteWatch, callback: Callable[[Change], object], *,
                 connect_timeout: float = 10.0) -> None:
        self._watch = watch
        self._callback = callback
        self._stopped = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False  # the task is closing its stream: a cancel would cut it short
        self._started = threading.Event()
        # Called with the error when the watch ends by itself (history gone, tenant
        # deleted); live values re-list on Gone. Set it right after creating the handle.
        self.on_end: Callable[[ConfhubError], object] | None = None
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name=f"confhub-remote-watch-{watch.tenant}")
        self._thread.start()
        self._started.wait()
        # Like the embedded watch, a missing tenant or removed history raises here; an
        # unreachable server does not (the watch keeps trying in the background).
        watch.attempted.wait(connect_timeout)
        if watch.error is not None:
            self.stop()
            raise watch.error

    @property
    def revision(self) -> int | None:
        """The last revision handed to the callback (or passed over by the filter)."""
        return self._watch.revision

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    @property
    def error(self) -> ConfhubError | None:
        """Why the watch ended (tenant deleted, history removed...), None while it runs."""
        return self._watch.error

    def wait_connected(self, timeout: float | None = None) -> bool:
        """Block until the stream is open (after an outage, say)."""
        return self._watch.connected.wait(timeout)

    def stop(self, timeout: float | None = 5.0) -> None:
        self._stopped.set()
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop already ended
                loop.call_soon_threadsafe(self._interrupt)
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def _interrupt(self) -> None:
        """On the watch's own loop (so ``_closing`` cannot change meanwhile): cancel the
        task, unless it already closes its stream. A cancel landing in that close would cut
        httpx's response close short and leave it to be collected after the loop ended."""
        if self._task is not None and not self._closing:
            self._task.cancel()

    def __enter__(self) -> RemoteWatchHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        self._started.set()
        if self._stopped.is_set():
            return
        events = self._watch.events()
        try:
            async for event in events:
                if not deliver(self._callback, event, self._stopped):
                    return
        except asyncio.CancelledError:
            pass
        except ConfhubError as exc:
            logger.warning("watch of tenant %r on %s ended: %s", self._watch.tenant,
                           self._watch.url, exc)
            if self.on_end is not None and not self._stopped.is_set():
                self.on_end(exc)
        finally:
            # Close the stream in this task: left to the loop's shutdown, httpx would close
            # it from another task, which anyio refuses. From here on stop() no longer
            # cancels us (``_interrupt``), so the close runs to its end.
            self._closing = True
            with contextlib.suppress(asyncio.CancelledError, RuntimeError):
                await events.aclose()


def watch_headers(client: Any) -> dict[str, str]:
    """The auth and identity headers of a hub's client, for the watch's own connection."""
    return {k: v for k, v in client.headers.items() if k in ("authorization", "user-agent")}


class _Watching:
    """``watch_events`` / ``watch_async`` for both remote tenants (they share the stream)."""

    def _stream_source(self) -> tuple[str, dict[str, str], str]:
        """(server URL, auth headers, tenant name)."""
        raise NotImplementedError

    def watch_events(self, namespace: str | None = None, key: str | None = None,
                     env: str | None = None, since: int | None = None) -> RemoteWatch:
        """``async for event in tenant.watch_events(...)``: one WatchEvent per revision."""
        url, headers, tenant = self._stream_source()
        return RemoteWatch(url, headers, tenant, namespace, key, env, since)

    async def watch_async(self, namespace: str | None = None, key: str | None = None,
                          env: str | None = None, since: int | None = None
                          ) -> AsyncIterator[Change]:
        """``async for change in tenant.watch_async(...)``, reconnecting by itself.

        The stream is closed by this generator's own close: a consumer that leaves the loop
        early leaves this generator to the event loop's finalizer, and the stream inside it
        would otherwise be closed from yet another task, or be cut off when the loop ends
        (an httpx ``Response.aclose`` collected half done)."""
        events = self.watch_events(namespace, key, env, since).events()
        try:
            async for event in events:
                for change in event.changes:
                    yield change
        finally:
            await events.aclose()
