"""Whole-store backup and restore (``confhub backup FILE`` / ``confhub restore FILE``).

Owns ``Backup`` (part of ``Hub``). The file format, the consistent snapshot it is read in and
the checks made before a restore writes anything are ``confhub.store.dump``'s; this part adds
what the service must do around them: audit both, refuse a store that is not empty unless
forced, and after a restore drop everything held in memory (cached views, the token cache),
end every watch (the history they follow was replaced) and check the result with
:meth:`~confhub.hub.integrity.Integrity.doctor`.

May import: ``confhub.store.dump``, ``confhub.errors`` and the hub's ``core``,
``integrity``.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from typing import Any

from ..errors import InvalidRequest, Unavailable
from ..store import dump
from .integrity import Integrity

Progress = Callable[[int, int], None]


class Backup(Integrity):
    """Whole-store backup and restore (part of :class:`confhub.Hub`)."""

    def backup(self, path: str | os.PathLike[str], *, progress: Progress | None = None
               ) -> dict[str, Any]:
        """Write every tenant, its history, schemas, snapshots, retention policies, tokens
        (hashed), data keys (wrapped: secrets stay encrypted) and the audit log to ``path``,
        read in one consistent snapshot while writers carry on. Written to a temporary file
        renamed at the end, so ``path`` is never half a backup. Returns
        ``{"file", "bytes", "rows", "tables", "sha256"}``."""
        target = os.fspath(path)
        folder = os.path.dirname(os.path.abspath(target))
        try:
            fd, tmp = tempfile.mkstemp(prefix=".confhub-backup.", dir=folder)
        except OSError as exc:
            raise InvalidRequest(f"cannot write {target}: {exc.strerror}", path=target) from None
        try:
            with os.fdopen(fd, "wb") as out:
                figures = dump.dump(self._core.store, out, progress)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, target)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        self._core.audit("store.backup", None, target=target,
                         details={"rows": figures["rows"], "sha256": figures["sha256"]})
        return {"file": target, "bytes": os.path.getsize(target), **figures}

    def verify_backup(self, path: str | os.PathLike[str], *,
                      progress: Progress | None = None) -> dict[str, Any]:
        """Check a backup file (format, checksum, row counts) without restoring it."""
        return dump.verify(os.fspath(path), progress)

    def restore_backup(self, path: str | os.PathLike[str], *, force: bool = False,
                       progress: Progress | None = None) -> dict[str, Any]:
        """Replace this store's whole content with a backup, all or nothing, after checking
        the file. Refuses (AlreadyExists) a store holding anything but an empty ``default``
        tenant unless ``force``. A server serving this store must be restarted afterwards
        (its caches hold the old state); this hub drops its own. Returns the backup's figures
        and the doctor's report of the restored store."""
        source = os.fspath(path)
        if not os.path.exists(source):
            raise InvalidRequest(f"backup file {source} does not exist", path=source)
        figures = dump.load(self._core.store, source, force=force, progress=progress)
        core = self._core
        for tenant in list(core.cache.views):
            core.cache.evict(tenant)
        core.tokens.reload()
        core.watchers.end(None, Unavailable("the store was restored from a backup; "
                                            "re-list and watch again"))
        core.audit("store.restore", None, target=source,
                   details={"rows": figures["rows"], "forced": force})
        report = self.doctor()
        return {**figures, "doctor": report}
