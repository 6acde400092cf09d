"""``doctor`` finds each kind of planted corruption and reports it without repairing it; a
clean store has no findings. SQLite and PostgreSQL; the cache check through a real server."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from typer.testing import CliRunner

import confhub
from confhub.cli import app
from confhub.server.testing import live_server

Sql = Callable[[str], None]


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Sql]]:
    """A database URL with a few writes, and a way to run SQL on it behind confhub's back."""
    if request.param == "sqlite":
        path = tmp_path / "d.db"
        url = f"sqlite:///{path}"

        def run(sql: str) -> None:
            with sqlite3.connect(path) as conn:
                conn.execute(sql)
    else:
        url = request.getfixturevalue("pg_url")

        def run(sql: str) -> None:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(sql)  # type: ignore[arg-type]
    with confhub.open(url) as hub:
        cfg = hub.tenant()
        for i in range(3):
            cfg.set("m", "a", {"i": i})
        cfg.set("m", "b", {"x": 1})
    yield url, run


def doctor(url: str) -> dict[str, Any]:
    with confhub.open(url) as hub:
        return hub.doctor()


def checks(report: dict[str, Any]) -> set[str]:
    return {f["check"] for f in report["findings"]}


def test_a_clean_store_has_no_findings(store: tuple[str, Sql]) -> None:
    report = doctor(store[0])
    assert report["ok"] and report["findings"] == []
    assert report["checked"]["versions"] == 4


def test_a_value_changed_behind_confhubs_back_fails_its_checksum(
        store: tuple[str, Sql]) -> None:
    url, run = store
    run("UPDATE confhub_versions SET value = '{\"i\":42}' WHERE key = 'a' AND version = 2")
    report = doctor(url)
    assert not report["ok"]
    [finding] = report["findings"]
    assert finding["check"] == "checksum" and finding["version"] == 2
    assert "42" not in json.dumps(report)  # a finding never shows a value
    assert doctor(url) == report  # reported again: nothing was repaired


def test_a_missing_revision_is_found(store: tuple[str, Sql]) -> None:
    url, run = store
    run("DELETE FROM confhub_versions WHERE key = 'a' AND version = 1")
    report = doctor(url)
    assert "revisions" in checks(report)
    assert any(f.get("revisions") == [1] for f in report["findings"])


def test_a_current_pointer_to_an_old_version_is_found(store: tuple[str, Sql]) -> None:
    url, run = store
    run("UPDATE confhub_current SET version = 1 WHERE key = 'a'")
    assert checks(doctor(url)) >= {"current"}


def test_the_cli_exits_non_zero_on_a_finding(store: tuple[str, Sql]) -> None:
    url, run = store
    runner = CliRunner()
    clean = runner.invoke(app, ["doctor", "--db", url, "--json"])
    assert clean.exit_code == 0 and json.loads(clean.stdout)["ok"] is True
    run("UPDATE confhub_versions SET reason = 'forged' WHERE key = 'b'")
    found = runner.invoke(app, ["doctor", "--db", url, "--json"])
    assert found.exit_code == 1
    assert json.loads(found.stdout)["findings"][0]["check"] == "checksum"


def test_a_server_cache_that_disagrees_with_storage_is_found(tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    with live_server(db) as url:
        remote = confhub.open(url)
        remote.tenant().set("m", "a", {"i": 1})
        assert remote.tenant().get("m", "a").value == {"i": 1}  # cached by the server
        assert remote.doctor()["ok"]
        # Rewrite the stored value and its checksum consistently: only the cache is wrong.
        from confhub.store.base import VersionRow
        from confhub.store.maintenance import version_checksum
        with sqlite3.connect(db) as conn:
            row = conn.execute(
                "SELECT tenant, env, namespace, key, version, revision, op, deleted, value, "
                "created_at, author, reason, metadata, rollback_of, request_id, secret "
                "FROM confhub_versions WHERE key = 'a'").fetchone()
            forged = VersionRow(*row[:8], '{"i":666}', *row[9:])  # type: ignore[misc]
            conn.execute("UPDATE confhub_versions SET value = ?, checksum = ? WHERE key = 'a'",
                         (forged.value, version_checksum(forged)))
        report = remote.doctor()
        assert [f["check"] for f in report["findings"]] == ["cache"]
        assert "differs" in report["findings"][0]["message"]
        result = CliRunner().invoke(app, ["doctor", "--url", url])
        assert result.exit_code == 1
        remote.close()
