"""The leak test: write known secret strings, then search everything confhub writes or answers
— database files, a PostgreSQL dump, server logs, HTTP answers (entries, lists, history,
diffs, changes, dry runs, errors), exports, the audit log, watch output — for them."""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

import confhub
from confhub.secrets import generate_master_key
from confhub.server.testing import live_server

PG_DSN = os.environ.get("CONFHUB_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")


def _canaries() -> tuple[str, str, str]:
    tag = uuid.uuid4().hex
    return f"CANARY-WHOLE-{tag}", f"CANARY-FIELD-{tag}", f"CANARY-PATCHED-{tag}"


def _assert_clean(text: str | bytes, canaries: tuple[str, ...], where: str) -> None:
    for canary in canaries:
        needle: Any = canary.encode() if isinstance(text, bytes) else canary
        assert needle not in text, f"{canary} found in {where}"


def test_no_plaintext_anywhere_sqlite_and_http(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONFHUB_MASTER_KEY", generate_master_key())
    whole, field, patched = canaries = _canaries()
    db = tmp_path / "leak.db"
    outputs: dict[str, str] = {}
    seen_by_watch: list[str] = []
    with confhub.open(str(db)) as hub:
        hub.create_tenant("acme")
        admin, _ = hub.create_token(tenant="acme", role="admin")
        hub.tenant("acme").set("db", "main", {"user": "app", "password": field},
                               secret=["/password"])
        handle = hub.tenant("acme").watch(lambda c: seen_by_watch.append(repr(c)))
        with live_server(db) as url:
            auth = {"authorization": f"Bearer {admin}"}
            c = httpx.Client(base_url=url + "/v1/tenants/acme", headers=auth, timeout=10)
            key = "/configs/db/password"
            assert c.put(key + "?secret=true", json=whole).status_code == 201
            assert c.patch("/configs/db/main", json={"password": patched},
                           headers={"content-type": "application/merge-patch+json"}
                           ).status_code == 200
            assert c.put(key, json=whole + "-2").status_code == 200
            assert c.post(key + "/rollback", json={"to_version": 1}).status_code == 200
            outputs["reveal works"] = c.get(key + "?reveal=true").text
            assert whole in outputs.pop("reveal works")
            for name, path in [("entry", key), ("entry slow", key + "?env=base"),
                               ("old version", key + "?version=1"), ("list", "/configs/db"),
                               ("resolved", key + "?resolved=true"),
                               ("history", key + "/history"),
                               ("diff", key + "/diff?from=1&to=2"),
                               ("changes", "/changes"), ("export", "/export?history=true"),
                               ("audit", "/audit?format=jsonl"), ("fields", "/configs/db/main")]:
                answer = c.get(path)
                assert answer.status_code == 200, (name, answer.text)
                outputs[name] = answer.text
            outputs["dry run"] = c.put(key + "?dry_run=true", json="x").text
            outputs["bad patch"] = c.patch(
                "/configs/db/main", json=[{"op": "test", "path": "/password", "value": "no"}],
                headers={"content-type": "application/json-patch+json"}).text
            outputs["txn"] = c.post("/txn", json={"ops": [
                {"op": "patch", "namespace": "db", "key": "main", "value": {"user": "x"}}]}).text
            outputs["simple"] = httpx.get(url + "/v1/tokens?tenant=acme", headers=auth).text
            c.close()
        handle.stop()
        outputs["embedded export"] = str(hub.export("acme", include_history=True))
        outputs["embedded history"] = str(hub.tenant("acme").history("db", "main"))
        outputs["audit"] = str([e.to_dict() for e in hub.audit()])
    outputs["watch"] = "\n".join(seen_by_watch)
    assert seen_by_watch, "the watch saw nothing"
    for name, text in outputs.items():
        _assert_clean(text, canaries, name)
    for log in tmp_path.glob("leak.db.*.log"):
        _assert_clean(log.read_bytes(), canaries, log.name)
    files = [p for p in tmp_path.iterdir() if p.name.startswith("leak.db")]
    assert any(p.name == "leak.db" for p in files)
    for path in files:
        _assert_clean(path.read_bytes(), canaries, path.name)


def test_no_plaintext_in_a_postgres_dump(pg_url: str, master_key: str) -> None:
    whole, field, _ = canaries = _canaries()
    with confhub.open(pg_url, master_key=master_key) as hub:
        cfg = hub.tenant()
        cfg.set("db", "password", whole, secret=True)
        cfg.set("db", "main", {"password": field}, secret=["/password"])
        cfg.get("db", "password", reveal=True)
        hub.export(include_secrets=True)
        schema = pg_url.rsplit("search_path%3D", 1)[1]
    dump = subprocess.run(["pg_dump", "--schema", schema, "--data-only", PG_DSN],
                          capture_output=True, timeout=60, check=True).stdout
    assert b"confhub_versions" in dump and b"confhub_audit" in dump
    _assert_clean(dump, canaries, "pg_dump")
