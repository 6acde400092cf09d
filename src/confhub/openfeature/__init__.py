"""OpenFeature for confhub's flags: an in-process provider on a live copy of the flags.

``ConfhubProvider`` (provider.py) is the OpenFeature provider; ``LiveFlags`` (source.py) keeps
a tenant's flags namespace current in memory from the watch stream, for the provider or any
other in-process reader. OFREP, the HTTP side, is ``confhub.server.routes.ofrep``.
"""

from .provider import ConfhubProvider
from .source import FlagTenant, LiveFlags

__all__ = ["ConfhubProvider", "FlagTenant", "LiveFlags"]
