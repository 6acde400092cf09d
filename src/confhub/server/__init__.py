"""confhub's HTTP server: ``create_app(hub)`` builds the ASGI app, ``serve.run`` serves it."""

from __future__ import annotations

from .app import create_app

__all__ = ["create_app"]
