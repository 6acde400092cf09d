"""A deadline for request headers under uvicorn (granian has its own).

uvicorn times out an idle keep-alive connection, but nothing else: a client that connects and
sends nothing, or half a request line, and then stalls holds its connection — and a slot of
``--max-connections`` — for as long as it likes. :class:`HeaderDeadlineProtocol` is uvicorn's
h11 protocol with one addition: whenever the connection waits for a request's headers (from
the moment it opens, and from the first byte of each next request), they must be complete
within ``--client-timeout`` seconds, else the connection is closed without an answer, as
granian's ``header_read_timeout`` does (docs/decisions.md says why there is no 408). The
body's deadline is ``timeouts.BodyDeadline``'s, for both servers.

Only ``serve`` imports this module, and only to run uvicorn.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from .serve import _ENV_CLIENT_TIMEOUT, DEFAULT_CLIENT_TIMEOUT

__all__ = ["HeaderDeadlineProtocol"]


class HeaderDeadlineProtocol(H11Protocol):
    """uvicorn's h11 protocol, closing a connection whose request headers are late."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # serve.run sets it for its workers (uvicorn's workers are processes of their own)
        self._header_timeout = float(os.environ.get(_ENV_CLIENT_TIMEOUT) or DEFAULT_CLIENT_TIMEOUT)
        self._header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()  # the first request's headers are due from the moment it connects

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is h11.IDLE:
            self._arm()  # bytes of a request whose headers are not complete yet
        else:
            self._disarm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        if self._header_timer is None and self._header_timeout > 0:
            self._header_timer = self.loop.call_later(self._header_timeout, self._expired)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _expired(self) -> None:
        self._header_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.close()
