"""``confhub.open(url)``: the one place that picks an embedded hub or a remote one.

An interface that may talk to either (the CLI, a program, config-as-code) calls this, so the
service layer never needs to import the remote client. Both answer with the same surface
(DESIGN.md section 2), so code moves between them unchanged.
"""

from __future__ import annotations

from .hub import Hub, open_embedded
from .remote import RemoteHub
from .values import MAX_VALUE_BYTES

__all__ = ["open"]


def open(url: str | None = None, *, token: str | None = None,
         max_value_bytes: int = MAX_VALUE_BYTES, master_key: str | None = None,
         key_file: str | None = None) -> Hub | RemoteHub:
    """Open a confhub: embedded SQLite (default ``./confhub.db``), PostgreSQL, or a server.

    ``url`` forms: ``None`` or a file path; ``sqlite:///relative/path.db`` and
    ``sqlite:////absolute/path.db`` (SQLAlchemy's convention); ``postgresql://...``;
    ``http(s)://host:port`` for a confhub server (``token`` is its bearer token), which
    returns a :class:`~confhub.remote.RemoteHub`.

    An embedded hub encrypts and reveals secrets with the master key(s) given by
    ``master_key`` / ``key_file``, else ``CONFHUB_MASTER_KEY`` / ``CONFHUB_KEY_FILE``
    (see :mod:`confhub.secrets`); without one, writing or revealing a secret is refused.
    """
    if url is not None and url.startswith(("http://", "https://")):
        return RemoteHub(url, token=token)
    return open_embedded(url, max_value_bytes=max_value_bytes, master_key=master_key,
                         key_file=key_file)
