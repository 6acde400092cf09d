"""The isolation matrix: every route × every kind of caller gets exactly the expected status.

Against a real ``python -m confhub.server`` on a database holding tokens. Callers: no token, a
viewer / editor / admin of tenant ``acme``, an admin of another tenant, an expired, a revoked
and a malformed token, and a superadmin.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import confhub
from confhub.secrets import generate_master_key
from confhub.server.testing import live_server

RANK = {"viewer": 0, "editor": 1, "admin": 2}
INVALID = ("none", "expired", "revoked", "malformed")
CALLERS = ("none", "viewer", "editor", "admin", "foreign", "expired", "revoked", "malformed",
           "superadmin")

K = "/v1/tenants/acme/configs"
EXPORT_DOC = {"format": "confhub-export", "format_version": 1, "tenant": "acme",
              "entries": [{"namespace": "imported", "key": "k", "value": 1}]}

# (method, path, body, who may: public|authenticated|viewer|editor|admin|superadmin|default,
#  status for those who may)
ROUTES: list[tuple[str, str, Any, str, int]] = [
    ("GET", "/healthz", None, "public", 200),
    ("GET", "/openapi.json", None, "public", 200),
    ("GET", "/v1/tenants", None, "authenticated", 200),
    ("GET", "/v1/tenants/acme", None, "viewer", 200),
    ("GET", K, None, "viewer", 200),
    ("GET", f"{K}/features", None, "viewer", 200),
    ("GET", f"{K}/features/flag", None, "viewer", 200),  # the cached fast path
    ("HEAD", f"{K}/features/flag", None, "viewer", 200),
    ("GET", f"{K}/features/flag?env=base", None, "viewer", 200),  # the FastAPI route
    ("GET", f"{K}/features/flag/history", None, "viewer", 200),
    ("GET", f"{K}/features/flag/diff?from=1&to=1", None, "viewer", 200),
    ("GET", "/v1/tenants/acme/changes", None, "viewer", 200),
    ("GET", "/v1/tenants/acme/snapshots", None, "viewer", 200),
    ("GET", "/v1/tenants/acme/export", None, "viewer", 200),
    ("GET", f"{K}/db/password?reveal=true", None, "editor", 200),
    ("PUT", f"{K}/features/flag", {"on": True}, "editor", 200),  # the lean write path
    ("PUT", f"{K}/features/flag?env=base", {"on": False}, "editor", 200),
    ("PATCH", f"{K}/features/flag", {"extra": 1}, "editor", 200),
    ("POST", f"{K}/features/flag/rollback", {"to_version": 1}, "editor", 200),
    ("POST", "/v1/tenants/acme/txn",
     {"ops": [{"op": "put", "namespace": "features", "key": "t", "value": 1}]}, "editor", 200),
    ("DELETE", f"{K}/features/victim", None, "editor", 200),
    ("POST", "/v1/tenants/acme/snapshots", "label", "admin", 201),
    ("POST", "/v1/tenants/acme/restore-revision", {"snapshot": "s1", "namespace": "other"},
     "admin", 200),
    ("GET", "/v1/tenants/acme/export?include_secrets=true", None, "admin", 200),
    ("POST", "/v1/tenants/acme/import", EXPORT_DOC, "admin", 200),
    ("GET", "/v1/tenants/acme/audit", None, "admin", 200),
    ("GET", "/v1/tokens?tenant=acme", None, "admin", 200),
    ("POST", "/v1/tenants", "tenant", "superadmin", 201),
    ("GET", "/v1/stats", None, "superadmin", 200),
    ("DELETE", "/v1/tenants/ghost", None, "superadmin", 404),
    ("GET", "/config/features/flag", None, "default", 200),
    ("PUT", "/config/features/flag", 1, "default", 200),
]


def expected(who: str, needs: str, ok: int) -> int:
    if needs == "public":
        return ok
    if who in INVALID:
        return 401
    if who == "superadmin" or needs == "authenticated":
        return ok
    if needs == "superadmin":
        return 403
    if needs == "default" or who == "foreign":
        return 404  # a tenant the token does not see looks missing
    return ok if RANK[who] >= RANK[needs] else 403


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A served database with tenants acme and other, data, and a token of every kind."""
    db: Path = tmp_path_factory.mktemp("isolation") / "confhub.db"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CONFHUB_MASTER_KEY", generate_master_key())
        hub = confhub.open(str(db))
        for name in ("acme", "other"):
            hub.create_tenant(name)
        acme = hub.tenant("acme")
        acme.set("features", "flag", {"on": True})
        acme.set("db", "password", "s3cret-isolation", secret=True)
        hub.tenant().set("features", "flag", 1)
        acme.snapshot("s1")
        tokens = {
            "viewer": hub.create_token(tenant="acme", role="viewer")[0],
            "editor": hub.create_token(tenant="acme", role="editor")[0],
            "admin": hub.create_token(tenant="acme", role="admin")[0],
            "foreign": hub.create_token(tenant="other", role="admin")[0],
            "superadmin": hub.create_token(role="superadmin")[0],
            "expired": hub.create_token(tenant="acme", role="admin", expires_in=1)[0],
            "limited": hub.create_token(tenant="acme", role="editor",
                                        namespaces=["features"])[0],
        }
        revoked, info = hub.create_token(tenant="acme", role="admin")
        hub.revoke_token(info.id)
        tokens["revoked"] = revoked
        tokens["malformed"] = "chub_not-a-token"
        time.sleep(1.1)  # the expired token expires
        with live_server(db) as url:
            yield {"url": url, "tokens": tokens, "hub": hub}
        hub.close()


def _call(world: dict[str, Any], who: str, method: str, path: str, body: Any
          ) -> httpx.Response:
    headers = {} if who == "none" else {"authorization": f"Bearer {world['tokens'][who]}"}
    if body == "label":
        body = {"label": "l-" + uuid.uuid4().hex[:8]}
    elif body == "tenant":
        body = {"id": "t-" + uuid.uuid4().hex[:8]}
    if path.endswith("/victim"):
        world["hub"].tenant("acme").set("features", "victim", 1)
    return httpx.request(method, world["url"] + path, headers=headers, timeout=10,
                         **({"json": body} if body is not None else {}))


@pytest.mark.parametrize("who", CALLERS)
def test_every_route_answers_each_caller_as_the_policy_says(world: dict[str, Any],
                                                            who: str) -> None:
    """One caller against every route: the table of expected statuses, exactly."""
    got = {}
    for method, path, body, needs, ok in ROUTES:
        got[f"{method} {path}"] = (_call(world, who, method, path, body).status_code,
                                   expected(who, needs, ok))
    wrong = {route: pair for route, pair in got.items() if pair[0] != pair[1]}
    assert not wrong, f"(got, expected) for {who}: {wrong}"


def test_a_foreign_tenant_answers_exactly_like_a_missing_one(world: dict[str, Any]) -> None:
    foreign = _call(world, "foreign", "GET", f"{K}/features/flag", None)
    missing = _call(world, "foreign", "GET", "/v1/tenants/nosuch/configs/features/flag", None)
    assert foreign.status_code == missing.status_code == 404
    assert foreign.json() == {"error": {**missing.json()["error"],
                                        "message": "tenant 'acme' does not exist",
                                        "details": {"tenant": "acme"}}}


def test_401_says_bearer_and_is_audited(world: dict[str, Any]) -> None:
    answer = _call(world, "revoked", "GET", f"{K}/features/flag", None)
    assert answer.status_code == 401 and answer.headers["www-authenticate"].startswith("Bearer")
    failures = world["hub"].audit("acme", action="auth.failure")
    assert any(e.reason == "revoked" and e.target == f"GET {K}/features/flag"
               for e in failures)


def test_a_token_lists_only_its_own_tenants(world: dict[str, Any]) -> None:
    items = _call(world, "viewer", "GET", "/v1/tenants", None).json()["items"]
    assert [t["id"] for t in items] == ["acme"]


class TestNamespaceLimitedToken:
    @pytest.mark.parametrize(("method", "path", "body", "status"), [
        ("GET", f"{K}/features/flag", None, 200),
        ("GET", f"{K}/features/flag?env=base", None, 200),
        ("PUT", f"{K}/features/limited", 1, 201),
        ("GET", f"{K}/db/password", None, 403),
        ("PUT", f"{K}/db/password", 1, 403),
        ("GET", f"{K}/db", None, 403),
        ("GET", K, None, 403),  # spans the tenant
        ("GET", "/v1/tenants/acme/changes", None, 403),
        ("GET", "/v1/tenants/acme/export", None, 403),
        ("POST", "/v1/tenants/acme/txn",
         {"ops": [{"op": "put", "namespace": "db", "key": "x", "value": 1}]}, 403),
        ("POST", "/v1/tenants/acme/txn",
         {"ops": [{"op": "put", "namespace": "features", "key": "x", "value": 1}]}, 200),
    ])
    def test_sees_only_its_namespaces(self, world: dict[str, Any], method: str, path: str,
                                      body: Any, status: int) -> None:
        assert _call(world, "limited", method, path, body).status_code == status


def test_the_actor_of_a_change_is_the_token_name(world: dict[str, Any]) -> None:
    token, info = world["hub"].create_token(tenant="acme", role="editor", name="deploy-bot")
    r = httpx.put(f"{world['url']}{K}/features/by-bot", json=1,
                  headers={"authorization": f"Bearer {token}", "x-request-id": "req-42"},
                  timeout=10)
    assert r.status_code == 201, r.text
    events = world["hub"].audit("acme", target="features/by-bot")
    assert [(e.action, e.actor, e.request_id) for e in events] == [
        ("config.put", "deploy-bot", "req-42")]
    assert events[0].client == "127.0.0.1"
