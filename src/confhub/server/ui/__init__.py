"""The web UI at ``/ui``: server-rendered pages over the hub's public methods (docs/ui.md)."""

from .app import create_ui

__all__ = ["create_ui"]
