"""Whole-store backup and restore: consistent while writers carry on, checked on restore,
refusing to overwrite a store by accident. SQLite and PostgreSQL (restored across backends)."""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import confhub
from confhub.cli import app


@pytest.fixture(params=["sqlite", "postgres"])
def source_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'source.db'}"
    else:
        yield request.getfixturevalue("pg_url")


def history(hub: confhub.Hub, tenant: str, upto: int) -> list[tuple[Any, ...]]:
    return [(c.revision, c.env, c.namespace, c.key, c.version, c.op, c.value)
            for c in hub.tenant(tenant).changes(0, limit=1_000_000) if c.revision <= upto]


def test_a_backup_taken_during_writes_restores_one_revision_of_each_tenant(
        source_url: str, tmp_path: Path) -> None:
    stop = threading.Event()
    with confhub.open(source_url) as hub:
        for name in ("t1", "t2"):
            hub.create_tenant(name)
        hub.tenant("t1").snapshot("empty")
        hub.set_retention("t1", keep_last=100)

        def writer(tenant: str) -> None:
            cfg, i = hub.tenant(tenant), 0
            while not stop.is_set():
                with cfg.transaction(reason=f"w{i}") as tx:  # two keys, one revision
                    tx.set("ns", f"k{i % 7}", {"i": i})
                    tx.set("other", "mirror", {"i": i})
                i += 1

        threads = [threading.Thread(target=writer, args=(t,)) for t in ("t1", "t2")]
        for thread in threads:
            thread.start()
        try:
            while hub.tenant_info("t2").revision < 30:  # writers are well under way
                stop.wait(0.01)
            figures = hub.backup(tmp_path / "store.backup")
            writes_during = hub.tenant_info("t2").revision
        finally:
            stop.set()
            for thread in threads:
                thread.join()
        assert figures["rows"] > 0 and len(figures["sha256"]) == 64
        with confhub.open(f"sqlite:///{tmp_path / 'restored.db'}") as restored:
            result = restored.restore_backup(tmp_path / "store.backup")
            assert result["doctor"]["ok"], result["doctor"]
            for tenant in ("t1", "t2"):
                at = restored.tenant_info(tenant).revision
                assert at > 0
                # Everything up to the restored revision, nothing after it, as in the source.
                assert history(restored, tenant, at) == history(hub, tenant, at)
                assert history(restored, tenant, 1 << 60) == history(hub, tenant, at)
            assert restored.tenant("t1").snapshots()[0].label == "empty"
            assert restored.retention("t1")[0].keep_last == 100
            assert any(a.action == "config.put" for a in restored.audit("t1", limit=5))
        assert writes_during >= 30


def test_a_restore_refuses_a_store_that_is_not_empty_unless_forced(tmp_path: Path) -> None:
    with confhub.open(f"sqlite:///{tmp_path / 'a.db'}") as hub:
        hub.tenant().set("m", "k", {"from": "a"})
        hub.backup(tmp_path / "a.backup")
    with confhub.open(f"sqlite:///{tmp_path / 'b.db'}") as other:
        other.tenant().set("m", "k", {"from": "b"})
        with pytest.raises(confhub.AlreadyExists, match="not empty"):
            other.restore_backup(tmp_path / "a.backup")
        assert other.tenant().get("m", "k").value == {"from": "b"}  # nothing written
        other.restore_backup(tmp_path / "a.backup", force=True)
        assert other.tenant().get("m", "k").value == {"from": "a"}


def test_an_altered_or_cut_backup_is_refused_before_anything_is_written(
        tmp_path: Path) -> None:
    with confhub.open(f"sqlite:///{tmp_path / 'a.db'}") as hub:
        hub.tenant().set("m", "k", {"v": 1})
        hub.backup(tmp_path / "a.backup")
    lines = gzip.decompress((tmp_path / "a.backup").read_bytes()).splitlines(keepends=True)
    altered = [line.replace(b'{\\"v\\":1}', b'{\\"v\\":2}') for line in lines]
    assert altered != lines
    (tmp_path / "altered.backup").write_bytes(gzip.compress(b"".join(altered)))
    (tmp_path / "cut.backup").write_bytes(gzip.compress(b"".join(lines[:-2])))
    with confhub.open(f"sqlite:///{tmp_path / 'b.db'}") as target:
        with pytest.raises(confhub.InvalidRequest, match="checksum"):
            target.restore_backup(tmp_path / "altered.backup")
        with pytest.raises(confhub.InvalidRequest, match="cut short"):
            target.restore_backup(tmp_path / "cut.backup")
        with pytest.raises(confhub.NotFound):
            target.tenant().get("m", "k")


def test_the_cli_backs_up_and_restores(tmp_path: Path) -> None:
    runner = CliRunner()
    source, target = str(tmp_path / "a.db"), str(tmp_path / "b.db")
    assert runner.invoke(app, ["set", "m/k", '{"v": 1}', "--db", source]).exit_code == 0
    made = runner.invoke(app, ["backup", str(tmp_path / "x.backup"), "--db", source, "--json"])
    assert made.exit_code == 0, made.output
    assert json.loads(made.stdout)["tables"]["confhub_versions"] == 1
    back = runner.invoke(app, ["restore", str(tmp_path / "x.backup"), "--db", target,
                               "--json"])
    assert back.exit_code == 0, back.output
    again = runner.invoke(app, ["restore", str(tmp_path / "x.backup"), "--db", target])
    assert again.exit_code == 4 and "--force" in again.output
    got = runner.invoke(app, ["get", "m/k", "--db", target, "--json"])
    assert json.loads(got.stdout)["value"] == {"v": 1}
