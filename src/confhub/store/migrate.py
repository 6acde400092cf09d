"""Versioned schema migrations: numbered SQL files per backend, applied once, in order.

A database records the highest migration applied in ``confhub_schema``. Opening a database runs
the missing files inside the backend's write lock, so two processes starting at once migrate it
exactly once. A database made by a newer confhub is refused rather than misread.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

from ..errors import ConfhubError


def migration_files(backend: str) -> list[tuple[int, str]]:
    folder = resources.files("confhub.store") / "migrations" / backend
    found = []
    for item in folder.iterdir():
        if item.name.endswith(".sql"):
            found.append((int(item.name.split("_", 1)[0]), item.read_text("utf-8")))
    return sorted(found)


def statements(script: str) -> list[str]:
    """Split a migration into statements (our migrations hold no ';' inside literals)."""
    lines = [line for line in script.splitlines() if not line.strip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


def migrate(conn: Any, backend: str, *, placeholder: str = "?") -> int:
    """Apply pending migrations on ``conn`` (already inside a locked transaction)."""
    conn.execute("CREATE TABLE IF NOT EXISTS confhub_schema (version INTEGER NOT NULL)")
    applied = {row[0] for row in conn.execute("SELECT version FROM confhub_schema").fetchall()}
    current = max(applied, default=0)
    files = migration_files(backend)
    latest = files[-1][0] if files else 0
    if current > latest:
        raise ConfhubError(
            f"this database has confhub schema version {current}, newer than this confhub "
            f"understands ({latest}); upgrade confhub to open it",
            schema_version=current, supported=latest,
        )
    for number, script in files:
        # By number, not "above the highest": migrations are independent of each other, so
        # one numbered below a newer one that is already applied still runs.
        if number not in applied:
            for statement in statements(script):
                conn.execute(statement)
            conn.execute(f"INSERT INTO confhub_schema (version) VALUES ({placeholder})", (number,))
    return latest
