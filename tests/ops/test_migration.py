"""A database made before schema 4 is migrated on open: every version gets its checksum."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import confhub


def test_an_older_database_is_migrated_and_back_filled(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    with confhub.open(f"sqlite:///{db}") as hub:
        for i in range(5):
            hub.tenant().set("m", f"k{i}", {"i": i})
    with sqlite3.connect(db) as conn:  # make it what schema 3 left behind
        conn.execute("ALTER TABLE confhub_versions DROP COLUMN checksum")
        conn.execute("DROP TABLE confhub_retention")
        conn.execute("DELETE FROM confhub_schema WHERE version = 4")
    with confhub.open(f"sqlite:///{db}") as hub:
        report = hub.doctor()
        assert report["ok"], report["findings"]
        assert report["checked"]["versions"] == 5
        assert hub.tenant().get("m", "k3").value == {"i": 3}
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM confhub_versions "
                            "WHERE checksum IS NULL").fetchone() == (0,)
        assert conn.execute("SELECT MAX(version) FROM confhub_schema").fetchone() == (4,)
