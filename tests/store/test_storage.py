"""Backend-specific promises: durability settings, migrations, URLs, outages."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

import confhub
from confhub.errors import ConfhubError
from confhub.hub import Hub
from confhub.hub.service import open_store
from confhub.store.migrate import migration_files
from confhub.store.sqlite import SqliteStore


class TestSqliteDurability:
    def test_database_is_in_wal_mode_with_full_sync(self, tmp_path: Path) -> None:
        """Acknowledged writes survive power loss only with WAL + synchronous=FULL."""
        path = tmp_path / "c.db"
        store = SqliteStore(str(path))
        with Hub(store) as hub:
            hub.tenant().set("ns", "k", 1)
            assert store._writer.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        conn = sqlite3.connect(path)
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"

    @pytest.mark.parametrize("refusals", [
        [sqlite3.OperationalError("database is locked")] * 3,  # the racing first opens
        ["delete", "delete"],  # the switch did not take yet
    ])
    def test_a_first_open_that_loses_the_race_to_wal_waits_and_opens(
            self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, refusals: list[Any]) -> None:
        """Processes opening a new file at once race to switch it to WAL, and SQLite can tell
        the loser "database is locked" at once, without waiting (found by
        ``test_concurrent_first_opens_migrate_once`` on a loaded machine). The store waits
        and tries again, as for any other lock."""
        answers = list(refusals)
        real_connect = SqliteStore._connect

        class Racing:
            def __init__(self, conn: sqlite3.Connection) -> None:
                self._conn = conn

            def execute(self, sql: str, *args: Any) -> Any:
                if sql == "PRAGMA journal_mode=WAL" and answers:
                    answer = answers.pop(0)
                    if isinstance(answer, Exception):
                        raise answer
                    return self._conn.execute(f"SELECT '{answer}'")
                return self._conn.execute(sql, *args)

            def __getattr__(self, name: str) -> Any:
                return getattr(self._conn, name)

        def connect(store: SqliteStore) -> Any:
            return Racing(real_connect(store))

        monkeypatch.setattr(SqliteStore, "_connect", connect)
        with Hub(SqliteStore(str(tmp_path / "c.db"))) as hub:
            hub.tenant().set("ns", "k", 1)
        assert answers == []
        conn = sqlite3.connect(tmp_path / "c.db")
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"

    def test_missing_directory_is_unavailable_not_a_crash(self, tmp_path: Path) -> None:
        with pytest.raises(confhub.Unavailable, match="does not exist"):
            confhub.open(str(tmp_path / "no" / "such" / "dir.db"))

    def test_locked_database_answers_unavailable_and_writes_nothing(
            self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        import confhub.store.sqlite as backend

        path = tmp_path / "c.db"
        store = SqliteStore(str(path))
        with Hub(store) as hub:
            cfg = hub.tenant()
            cfg.set("ns", "k", 1)
            blocker = sqlite3.connect(path, isolation_level=None)
            blocker.execute("BEGIN IMMEDIATE")  # another process holds the write lock
            store._writer.execute("PRAGMA busy_timeout=50")
            with pytest.raises(confhub.Unavailable):
                cfg.set("ns", "k", 2)
            blocker.execute("ROLLBACK")
            assert cfg.set("ns", "k", 3).version == 2  # recovers by itself
            assert backend.BUSY_TIMEOUT_MS >= 1000


class TestUrls:
    @pytest.mark.parametrize("url", ["sqlite://", "sqlite:///", ":memory:", "sqlite:///:memory:",
                                     "mysql://x/y", "ftp://host"])
    def test_unsupported_urls_are_refused_clearly(self, url: str) -> None:
        with pytest.raises(confhub.InvalidRequest):
            confhub.open(url)

    def test_sqlite_url_with_relative_path(self, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.chdir(tmp_path)
        with confhub.open("sqlite:///rel.db") as hub:
            hub.tenant().set("ns", "k", 1)
        assert (tmp_path / "rel.db").exists()

    def test_sqlite_url_with_absolute_path(self, tmp_path: Path) -> None:
        with confhub.open(f"sqlite:///{tmp_path}/abs.db") as hub:
            assert hub.backend == "sqlite"
        assert (tmp_path / "abs.db").exists()

    def test_default_is_confhub_db_in_working_directory(
            self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.chdir(tmp_path)
        with confhub.open() as hub:
            hub.tenant().set("ns", "k", 1)
        assert (tmp_path / "confhub.db").exists()


EMBEDDED = ["sqlite", "postgres"]


@pytest.fixture(params=EMBEDDED)
def db_url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue(f"{'sqlite' if request.param == 'sqlite' else 'pg'}_url"))


class TestMigrations:
    def test_schema_version_is_recorded(self, db_url: str) -> None:
        store = open_store(db_url)
        with Hub(store) as hub, store._reading() as conn:
            versions = [r[0] for r in conn.execute("SELECT version FROM confhub_schema")]
        assert versions == [n for n, _ in migration_files(hub.backend)]

    def test_reopening_does_not_migrate_twice(self, db_url: str) -> None:
        for _ in range(3):
            with confhub.open(db_url) as hub:
                hub.tenant().set("ns", "k", 1)
        store = open_store(db_url)
        with Hub(store) as hub, store._reading() as conn:
            count = conn.execute("SELECT COUNT(*) FROM confhub_schema").fetchone()[0]
            assert hub.tenant().get("ns", "k").version == 3
        assert count == len(migration_files(hub.backend))

    def test_database_from_a_newer_confhub_is_refused(self, db_url: str) -> None:
        store = open_store(db_url)
        with Hub(store), store._writing() as conn:
            conn.execute("INSERT INTO confhub_schema (version) VALUES (999)")
        with pytest.raises(ConfhubError, match="newer than this confhub"):
            confhub.open(db_url)

    def test_concurrent_first_opens_migrate_once(self, db_url: str) -> None:
        import threading

        hubs: list[confhub.Hub] = []
        stores: list[Any] = []
        errors: list[BaseException] = []

        def opener() -> None:
            try:
                store = open_store(db_url)
                stores.append(store)
                hubs.append(Hub(store))
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)

        threads = [threading.Thread(target=opener) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        try:
            assert errors == []
            with stores[0]._reading() as conn:
                count = conn.execute("SELECT COUNT(*) FROM confhub_schema").fetchone()[0]
            assert count == len(migration_files(hubs[0].backend))
            assert [t.id for t in hubs[0].tenants()] == ["default"]
        finally:
            for hub in hubs:
                hub.close()


class TestPostgresOutage:
    def test_unreachable_postgres_is_unavailable(self) -> None:
        with pytest.raises(confhub.Unavailable, match="PostgreSQL"):
            confhub.open("postgresql://postgres@127.0.0.1:1/none?connect_timeout=1")

    def test_health_reports_not_ok_instead_of_raising(self, tmp_path: Path) -> None:
        store = UnreachableStore(str(tmp_path / "c.db"))
        with Hub(store) as hub:
            assert hub.health()["ok"] is True
            store.down = True
            health = hub.health()
        assert health["ok"] is False and "down" in health["error"]


class UnreachableStore(SqliteStore):
    """A real SQLite store that stops answering ``ping`` while ``down`` is set."""

    down = False

    def ping(self) -> float:
        if self.down:
            raise confhub.Unavailable("storage is down")
        return super().ping()
