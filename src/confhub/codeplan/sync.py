"""``sync --watch``: apply the directory on every saved change, never half of it.

Each round reads the whole directory, plans and applies it as one transaction (apply.py). A
round that cannot apply - a file that does not parse, a value a schema refuses, a plan above
``max_risk``, a conflict - is reported and changes nothing; the watcher carries on, and the next
save that makes the directory whole again applies everything. Saves arriving together (an
editor writing a temp file and renaming it, a ``git checkout``) are debounced into one round by
watchfiles.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import watchfiles

from ..errors import ConfhubError
from .apply import ApplyResult, apply_plan
from .layout import load_directory
from .plan import make_plan
from .risk import Level, parse_level

__all__ = ["SyncRound", "sync_once", "watch_and_sync"]


@dataclass(frozen=True)
class SyncRound:
    """One round's outcome: ``result`` when it applied (or had nothing to do), else
    ``error``."""

    result: ApplyResult | None = None
    error: ConfhubError | None = None

    def to_dict(self) -> dict[str, Any]:
        if self.error is not None:
            return {"applied": False, **self.error.to_dict()}
        assert self.result is not None
        plan = self.result.plan
        return {"applied": self.result.revision is not None, "revision": self.result.revision,
                "summary": plan.summary(), "risk": plan.risk.name}


def sync_once(hub: Any, tenant: str | Callable[[Any], str], root: Path, *,
              max_risk: Level | None = None, prune: bool = False, reason: str | None = None,
              author: str | None = None) -> SyncRound:
    """Plan and apply ``root`` once; errors are returned, not raised."""
    try:
        layout = load_directory(root)
        name = tenant(layout) if callable(tenant) else tenant
        if max_risk is None and layout.config.max_risk:
            max_risk = parse_level(layout.config.max_risk, where="confhub.toml: max_risk")
        plan = make_plan(hub, name, layout, prune=prune, max_risk=max_risk)
        return SyncRound(result=apply_plan(hub, plan, reason=reason or "sync", author=author))
    except ConfhubError as error:
        return SyncRound(error=error)


WATCH_TICK_MS = 200  # how long the watcher waits before saying "nothing changed"


def watch_and_sync(hub: Any, tenant: str | Callable[[Any], str], root: Path,
                   report: Callable[[SyncRound], None], *, stop: threading.Event,
                   debounce_ms: int = 300, **options: Any) -> None:
    """Sync now, then after every debounced batch of file changes, until ``stop`` is set.

    The watcher starts before the first sync (its first, possibly empty, batch says it is
    running), so an edit saved while the first sync runs is never lost: it is either in the
    first sync or in a later batch.
    """
    batches = watchfiles.watch(root, debounce=debounce_ms, stop_event=stop,
                               raise_interrupt=False, watch_filter=_relevant,
                               yield_on_timeout=True, rust_timeout=WATCH_TICK_MS)
    if next(batches, None) is None:  # stopped before the watcher started
        return
    report(sync_once(hub, tenant, root, **options))
    for changes in batches:
        if changes:  # an empty batch is a quiet tick
            report(sync_once(hub, tenant, root, **options))


def _relevant(change: watchfiles.Change, path: str) -> bool:
    """Ignore editor swap files and temporaries (hidden names) and git's own folder."""
    return not any(part.startswith(".") for part in Path(path).parts[-4:])
