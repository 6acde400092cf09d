"""The remote client: the Hub / Tenant surface of DESIGN.md section 2 over HTTP.

``confhub.open("http://127.0.0.1:8011")`` returns a :class:`RemoteHub`; its methods take the
same arguments, return the same frozen values (``Entry``, ``Version``...) and raise the same
exceptions as the embedded hub, so code moves between the two unchanged. The server's JSON error
body is turned back into the matching exception (``VersionConflict.current_version`` and all).

Every method is written once, as a *plan* (``_Call``: method, path, query, body, how to decode
the answer); :class:`RemoteHub` runs plans with ``httpx.Client`` and :class:`AsyncRemoteHub`
with ``httpx.AsyncClient``. Both keep connections alive and reuse them.

Retries, and why only these:

* any call is retried when the connection could not be made (the request never left);
* reads (GET) are also retried after a broken connection, a timeout or a 502/503/504;
* writes are not retried once sent: a write that timed out may have committed, and sending it
  again would add a version (or fail a compare-and-set it had in fact passed). The caller gets
  ``Unavailable`` saying so and decides.
"""

from __future__ import annotations

from .aio import AsyncRemoteHub, AsyncRemoteTenant, AsyncRemoteTransaction
from .sync import RemoteHub, RemoteTenant, RemoteTransaction
from .wire import error_from_response

__all__ = [
    "AsyncRemoteHub",
    "AsyncRemoteTenant",
    "AsyncRemoteTransaction",
    "RemoteHub",
    "RemoteTenant",
    "RemoteTransaction",
    "error_from_response",
]
