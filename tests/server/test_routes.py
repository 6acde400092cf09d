"""Route by route, against a real ``python -m confhub.server`` process (DESIGN.md section 3)."""

from __future__ import annotations

import httpx

KEY = "/v1/tenants/{t}/configs/models/opus"


def key(t: str, suffix: str = "") -> str:
    return KEY.format(t=t) + suffix


class TestTenants:
    def test_create_answers_201_with_the_tenant(self, http: httpx.Client) -> None:
        r = http.post("/v1/tenants", json={"id": "acme-create"})
        assert r.status_code == 201
        assert r.json()["id"] == "acme-create" and r.json()["deleted"] is False
        assert r.headers["location"] == "/v1/tenants/acme-create"

    def test_creating_an_existing_tenant_is_409(self, http: httpx.Client, tenant: str) -> None:
        r = http.post("/v1/tenants", json={"id": tenant})
        assert r.status_code == 409 and r.json()["error"]["code"] == "tenant_exists"

    def test_list_and_show(self, http: httpx.Client, tenant: str) -> None:
        assert tenant in [t["id"] for t in http.get("/v1/tenants").json()["items"]]
        assert http.get(f"/v1/tenants/{tenant}").json()["revision"] == 0

    def test_soft_delete_hides_and_restore_brings_back(self, http: httpx.Client,
                                                       tenant: str) -> None:
        http.put(key(tenant), json=1)
        assert http.delete(f"/v1/tenants/{tenant}").json() == {
            "id": tenant, "deleted": True, "hard": False}
        assert http.get(key(tenant)).status_code == 404
        assert tenant not in [t["id"] for t in http.get("/v1/tenants").json()["items"]]
        assert http.post(f"/v1/tenants/{tenant}/restore").json()["deleted"] is False
        assert http.get(key(tenant)).json()["value"] == 1

    def test_hard_delete_purges(self, http: httpx.Client, tenant: str) -> None:
        assert http.delete(f"/v1/tenants/{tenant}", params={"hard": "true"}).status_code == 200
        assert http.get(f"/v1/tenants/{tenant}").status_code == 404

    def test_clone_copies_current_values(self, http: httpx.Client, tenant: str) -> None:
        http.put(key(tenant), json={"a": 1})
        r = http.post(f"/v1/tenants/{tenant}/clone", json={"target": tenant + "-copy"})
        assert r.status_code == 201
        assert http.get(key(tenant + "-copy")).json()["value"] == {"a": 1}

    def test_template_with_overrides(self, http: httpx.Client, tenant: str) -> None:
        http.put(key(tenant), json={"a": 1, "b": 2})
        r = http.post("/v1/tenants", json={"id": tenant + "-t", "template": tenant,
                                           "overrides": {"models": {"opus": {"b": 3}}}})
        assert r.status_code == 201
        assert http.get(key(tenant + "-t")).json()["value"] == {"a": 1, "b": 3}

    def test_missing_tenant_is_404(self, http: httpx.Client) -> None:
        r = http.get("/v1/tenants/nobody-here/configs/models/opus")
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


class TestReadWrite:
    def test_put_creates_201_then_updates_200(self, http: httpx.Client, tenant: str) -> None:
        first = http.put(key(tenant), json={"max_tokens": 8192})
        assert first.status_code == 201 and first.json()["version"] == 1
        assert first.headers["etag"] == '"1"'
        second = http.put(key(tenant), json={"max_tokens": 4096})
        assert second.status_code == 200 and second.json()["version"] == 2

    def test_get_has_version_etag_and_304(self, http: httpx.Client, tenant: str) -> None:
        http.put(key(tenant), json=[1, 2])
        r = http.get(key(tenant))
        assert r.json()["value"] == [1, 2] and r.headers["etag"] == '"1"'
        assert http.get(key(tenant), headers={"if-none-match": '"1"'}).status_code == 304
        assert http.get(key(tenant), headers={"if-none-match": '"9"'}).status_code == 200

    def test_entry_json_has_every_field(self, http: httpx.Client, tenant: str) -> None:
        http.put(key(tenant), json=1, headers={"x-confhub-author": "ops"})
        body = http.get(key(tenant)).json()
        assert set(body) == {"tenant", "env", "namespace", "key", "value", "version",
                             "revision", "created_at", "updated_at", "updated_by", "secret"}
        assert body["updated_by"] == "ops" and body["created_at"].endswith("+00:00")

    def test_old_version(self, http: httpx.Client, tenant: str) -> None:
        http.put(key(tenant), json="one")
        http.put(key(tenant), json="two")
        r = http.get(key(tenant), params={"version": 1})
        assert r.json()["value"] == "one" and r.headers["etag"] == '"1"'
        assert http.get(key(tenant), params={"version": 7}).status_code == 404

    def test_env_layers_and_resolved(self, http: httpx.Client, tenant: str) -> None:
        http.put(key(tenant), json={"a": 1, "b": 2})
        http.put(key(tenant), params={"env": "production"}, json={"b": 3, "a": None})
        assert http.get(key(tenant), params={"env": "production"}).json()["value"] == {
            "b": 3, "a": None}
        r = http.get(key(tenant), params={"env": "production", "resolved": "true"})
        assert r.json()["value"] == {"b": 3}
        assert r.json()["sources"] == {"b": "production"}
        assert "etag" in r.headers

    def test_if_match_compare_and_set(self, http: httpx.Client, tenant: str) -> None:
        http.put(key(tenant), json=1)
        r = http.put(key(tenant), json=2, headers={"if-match": '"5"'})
        assert r.status_code == 412
        assert r.json()["error"]["details"]["current_version"] == 1
        assert http.put(key(tenant), json=2, headers={"if-match": '"1"'}).status_code == 200
        assert http.put(key(tenant), json=3, headers={"if-match": "*"}).status_code == 200
        assert http.put(key(tenant, "x"), json=3, headers={"if-match": "*"}).status_code == 412

    def test_if_none_match_star_means_must_not_exist(self, http: httpx.Client,
                                                     tenant: str) -> None:
        assert http.put(key(tenant), json=1, headers={"if-none-match": "*"}).status_code == 201
        r = http.put(key(tenant), json=2, headers={"if-none-match": "*"})
        assert r.status_code == 412 and r.json()["error"]["code"] == "version_conflict"

    def test_reason_author_and_metadata_headers_reach_history(self, http: httpx.Client,
                                                              tenant: str) -> None:
        http.put(key(tenant), json=1, headers={
            "x-confhub-reason": "raise limit", "x-confhub-author": "ops",
            "x-confhub-metadata": '{"ticket": "X-1"}', "x-request-id": "req-1"})
        (v,) = http.get(key(tenant, "/history")).json()["items"]
        assert (v["reason"], v["author"], v["metadata"], v["request_id"]) == (
            "raise limit", "ops", {"ticket": "X-1"}, "req-1")

    def test_utf8_reason_header(self, http: httpx.Client, tenant: str) -> None:
        http.put(key(tenant), json=1, headers={"x-confhub-reason": "café".encode()})
        assert http.get(key(tenant, "/history")).json()["items"][0]["reason"] == "café"

    def test_dry_run_writes_nothing(self, http: httpx.Client, tenant: str) -> None:
        http.put(key(tenant), json={"a": 1})
        r = http.put(key(tenant), params={"dry_run": "true"}, json={"a": 2})
        assert r.status_code == 200 and r.json()["dry_run"] is True
        assert r.json()["version"] == 2
        assert r.json()["diff"] == [{"op": "replace", "path": "/a", "value": 2}]
        assert http.get(key(tenant)).json()["value"] == {"a": 1}

    def test_merge_patch(self, http: httpx.Client, tenant: str) -> None:
        http.put(key(tenant), json={"a": 1, "b": 2})
        r = http.patch(key(tenant), content=b'{"b": null, "c": 3}',
                       headers={"content-type": "application/merge-patch+json"})
        assert r.status_code == 200 and r.json()["value"] == {"a": 1, "c": 3}

    def test_json_patch(self, http: httpx.Client, tenant: str) -> None:
        http.put(key(tenant), json={"a": 1})
        r = http.patch(key(tenant), content=b'[{"op": "add", "path": "/b", "value": 2}]',
                       headers={"content-type": "application/json-patch+json"})
        assert r.json()["value"] == {"a": 1, "b": 2} and r.json()["version"] == 2
        bad = http.patch(key(tenant), content=b'[{"op": "remove", "path": "/zz"}]',
                         headers={"content-type": "application/json-patch+json"})
        assert bad.status_code == 400

    def test_patch_of_missing_key_is_404(self, http: httpx.Client, tenant: str) -> None:
        r = http.patch(key(tenant), content=b"{}",
                       headers={"content-type": "application/merge-patch+json"})
        assert r.status_code == 404

    def test_delete_writes_tombstone_and_404s_after(self, http: httpx.Client,
                                                    tenant: str) -> None:
        http.put(key(tenant), json=1)
        r = http.delete(key(tenant))
        assert r.status_code == 200 and r.json()["deleted"] is True
        assert r.json()["version"] == 2 and r.json()["op"] == "delete"
        assert http.get(key(tenant)).status_code == 404
        assert http.delete(key(tenant)).status_code == 404
        assert http.put(key(tenant), json=2).json()["version"] == 3

    def test_delete_with_if_match(self, http: httpx.Client, tenant: str) -> None:
        http.put(key(tenant), json=1)
        assert http.delete(key(tenant), headers={"if-match": '"4"'}).status_code == 412

    def test_head_has_headers_and_no_body(self, http: httpx.Client, tenant: str) -> None:
        http.put(key(tenant), json={"a": 1})
        r = http.head(key(tenant))
        assert r.status_code == 200 and r.headers["etag"] == '"1"' and r.content == b""


class TestListing:
    def test_namespaces_with_counts(self, http: httpx.Client, tenant: str) -> None:
        for k in ("a", "b"):
            http.put(f"/v1/tenants/{tenant}/configs/models/{k}", json=1)
        http.put(f"/v1/tenants/{tenant}/configs/routing/x", json=1)
        assert http.get(f"/v1/tenants/{tenant}/configs").json()["items"] == [
            {"namespace": "models", "keys": 2}, {"namespace": "routing", "keys": 1}]

    def test_namespace_entries_paged_by_cursor(self, http: httpx.Client, tenant: str) -> None:
        for k in ("a", "b", "c"):
            http.put(f"/v1/tenants/{tenant}/configs/models/{k}", json=k)
        url = f"/v1/tenants/{tenant}/configs/models"
        page = http.get(url, params={"limit": 2}).json()
        assert [e["key"] for e in page["items"]] == ["a", "b"] and page["next_cursor"] == "b"
        rest = http.get(url, params={"limit": 2, "cursor": "b"}).json()
        assert [e["key"] for e in rest["items"]] == ["c"] and rest["next_cursor"] is None

    def test_prefix_and_resolved(self, http: httpx.Client, tenant: str) -> None:
        http.put(f"/v1/tenants/{tenant}/configs/models/gpt-a", json={"x": 1})
        http.put(f"/v1/tenants/{tenant}/configs/models/opus", json={"x": 1})
        http.put(f"/v1/tenants/{tenant}/configs/models/gpt-a", params={"env": "prod"},
                 json={"x": 2})
        url = f"/v1/tenants/{tenant}/configs/models"
        assert [e["key"] for e in http.get(url, params={"prefix": "gpt"}).json()["items"]] == [
            "gpt-a"]
        items = http.get(url, params={"env": "prod", "resolved": "true"}).json()["items"]
        assert {i["key"]: i["value"] for i in items} == {"gpt-a": {"x": 2}, "opus": {"x": 1}}


class TestHistory:
    def test_history_newest_first_with_limit_and_before(self, http: httpx.Client,
                                                        tenant: str) -> None:
        for i in range(4):
            http.put(key(tenant), json=i)
        items = http.get(key(tenant, "/history")).json()["items"]
        assert [v["version"] for v in items] == [4, 3, 2, 1]
        page = http.get(key(tenant, "/history"), params={"limit": 2, "before": 3}).json()
        assert [v["version"] for v in page["items"]] == [2, 1]

    def test_diff(self, http: httpx.Client, tenant: str) -> None:
        http.put(key(tenant), json={"a": 1})
        http.put(key(tenant), json={"a": 2})
        r = http.get(key(tenant, "/diff"), params={"from": 1, "to": 2})
        assert r.json() == {"from_version": 1, "to_version": 2,
                            "patch": [{"op": "replace", "path": "/a", "value": 2}]}

    def test_rollback_writes_a_new_version(self, http: httpx.Client, tenant: str) -> None:
        http.put(key(tenant), json="good")
        http.put(key(tenant), json="bad")
        r = http.post(key(tenant, "/rollback"), json={"to_version": 1, "reason": "oops"})
        assert r.status_code == 200 and r.json()["version"] == 3
        (latest, *_) = http.get(key(tenant, "/history")).json()["items"]
        assert (latest["op"], latest["rollback_of"], latest["reason"]) == ("rollback", 1, "oops")


class TestTransactionsAndFeed:
    def test_txn_commits_all_with_one_revision(self, http: httpx.Client, tenant: str) -> None:
        http.put(key(tenant), json=1)
        r = http.post(f"/v1/tenants/{tenant}/txn", json={"reason": "tune", "ops": [
            {"op": "put", "namespace": "routing", "key": "tiers", "value": {"t": 1}},
            {"op": "patch", "namespace": "models", "key": "opus", "value": {"x": 1},
             "expected_version": 1},
            {"op": "put", "namespace": "routing", "key": "p", "value": 1, "env": "prod"},
        ]})
        assert r.status_code == 200
        body = r.json()
        assert body["revision"] == 2 and {c["revision"] for c in body["changes"]} == {2}
        assert len(body["changes"]) == 3

    def test_txn_is_all_or_nothing(self, http: httpx.Client, tenant: str) -> None:
        r = http.post(f"/v1/tenants/{tenant}/txn", json={"ops": [
            {"op": "put", "namespace": "a", "key": "b", "value": 1},
            {"op": "delete", "namespace": "a", "key": "missing"},
        ]})
        assert r.status_code == 404
        assert http.get(f"/v1/tenants/{tenant}/configs/a/b").status_code == 404

    def test_txn_conflict_is_412(self, http: httpx.Client, tenant: str) -> None:
        r = http.post(f"/v1/tenants/{tenant}/txn", json={"ops": [
            {"op": "put", "namespace": "a", "key": "b", "value": 1, "expected_version": 3}]})
        assert r.status_code == 412

    def test_txn_dry_run(self, http: httpx.Client, tenant: str) -> None:
        r = http.post(f"/v1/tenants/{tenant}/txn", json={"dry_run": True, "ops": [
            {"op": "put", "namespace": "a", "key": "b", "value": 1}]})
        assert r.status_code == 200 and r.json()["dry_run"] is True
        assert http.get(f"/v1/tenants/{tenant}/configs/a/b").status_code == 404

    def test_changes_since(self, http: httpx.Client, tenant: str) -> None:
        for i in range(3):
            http.put(key(tenant), json=i)
        page = http.get(f"/v1/tenants/{tenant}/changes", params={"since": 1}).json()
        assert [c["revision"] for c in page["items"]] == [2, 3] and page["revision"] == 3
        empty = http.get(f"/v1/tenants/{tenant}/changes", params={"since": 3}).json()
        assert empty == {"items": [], "revision": 3}


class TestSnapshotsAndBackup:
    def test_snapshot_and_restore(self, http: httpx.Client, tenant: str) -> None:
        http.put(key(tenant), json="before")
        r = http.post(f"/v1/tenants/{tenant}/snapshots", json={"label": "s1"})
        assert r.status_code == 201 and r.json()["revision"] == 1
        assert http.post(f"/v1/tenants/{tenant}/snapshots",
                         json={"label": "s1"}).status_code == 409
        http.put(key(tenant), json="after")
        assert [s["label"] for s in http.get(f"/v1/tenants/{tenant}/snapshots").json()[
            "items"]] == ["s1"]
        r = http.post(f"/v1/tenants/{tenant}/restore-revision", json={"snapshot": "s1"})
        assert r.status_code == 200 and r.json()["revision"] == 3
        assert http.get(key(tenant)).json()["value"] == "before"

    def test_restore_by_revision_and_bad_bodies(self, http: httpx.Client, tenant: str) -> None:
        http.put(key(tenant), json=1)
        http.put(key(tenant), json=2)
        url = f"/v1/tenants/{tenant}/restore-revision"
        assert http.post(url, json={"revision": 1}).json()["changes"][0]["value"] == 1
        assert http.post(url, json={}).status_code == 400
        assert http.post(url, json={"revision": 1, "snapshot": "x"}).status_code == 400
        assert http.post(url, json={"snapshot": "nope"}).status_code == 404

    def test_export_import_round_trip(self, http: httpx.Client, tenant: str) -> None:
        http.put(key(tenant), json={"a": 1})
        assert http.post(f"/v1/tenants/{tenant}/snapshots", json={"label": "one"}).is_success
        http.put(key(tenant), json={"a": 2})
        doc = http.get(f"/v1/tenants/{tenant}/export", params={"history": "true"}).json()
        assert doc["format"] == "confhub-export" and len(doc["history"]) == 2
        r = http.post(f"/v1/tenants/{tenant}-imp/import", json=doc)
        assert r.status_code == 200 and r.json()["created"] == 1
        assert r.json()["snapshots"] == 1
        assert http.get(key(tenant + "-imp")).json()["version"] == 2
        restored = http.post(f"/v1/tenants/{tenant}-imp/restore-revision",
                             json={"snapshot": "one"})
        assert restored.status_code == 200
        assert http.get(key(tenant + "-imp")).json()["value"] == {"a": 1}

    def test_import_of_garbage_is_400(self, http: httpx.Client, tenant: str) -> None:
        r = http.post(f"/v1/tenants/{tenant}/import", json={"format": "nope"})
        assert r.status_code == 400
        assert http.post(f"/v1/tenants/{tenant}/import", json=[1]).status_code == 400


class TestOperations:
    def test_healthz_readyz_stats_metrics(self, http: httpx.Client) -> None:
        assert http.get("/healthz").json() == {"ok": True}
        ready = http.get("/readyz").json()
        assert ready["ok"] is True and ready["backend"] == "sqlite"
        assert "total_configs" in http.get("/v1/stats").json()
        metrics = http.get("/metrics")
        assert metrics.status_code == 200 and "confhub_http_requests" in metrics.text

    def test_openapi_and_docs(self, http: httpx.Client) -> None:
        doc = http.get("/openapi.json").json()
        for path in ("/config/{namespace}/{key}", "/v1/tenants/{tenant}/txn",
                     "/v1/tenants/{tenant}/configs/{namespace}/{key}/history",
                     "/v1/tenants/{tenant}/watch", "/healthz", "/v1/stats"):
            assert path in doc["paths"], path
        assert http.get("/docs").status_code == 200
