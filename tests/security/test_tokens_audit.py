"""Tokens and the audit log on the embedded hub, on SQLite and PostgreSQL."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import Any

import pytest

import confhub
from confhub import InvalidRequest, NotFound, Unauthorized
from confhub.hub.service import open_store
from confhub.store.base import Store
from confhub.store.postgres import PostgresStore
from confhub.store.sqlite import SqliteStore
from confhub.tokens import Principal, parse_duration


class TestTokens:
    def test_create_shows_the_token_once_and_stores_only_a_hash(
            self, shub: confhub.Hub, store_url: str) -> None:
        token, info = shub.create_token(tenant="acme", role="editor", namespaces="models,a")
        assert token.startswith("chub_" + info.id + "_")
        assert info.namespaces == ("a", "models") and info.role == "editor"
        storage = open_store(store_url)  # what the database itself holds
        try:
            stored = storage.token(info.id)
        finally:
            storage.close()
        secret = token[len("chub_" + info.id + "_"):]  # may itself hold "_"
        assert stored is not None and secret not in repr(stored)
        assert token not in str(shub.tokens()) and token not in str(shub.audit())

    def test_authenticate_gives_the_grants(self, shub: confhub.Hub) -> None:
        token, info = shub.create_token(tenant="acme", role="viewer", name="ci")
        assert shub.authenticate(token) == Principal(name="ci", role="viewer", tenant="acme",
                                                     token_id=info.id)

    @pytest.mark.parametrize("bad", ["", "Bearer x", "chub_0123456789ab_short",
                                     "chub_0123456789ab_" + "A" * 43])
    def test_malformed_or_unknown_tokens_are_unauthorized(self, shub: confhub.Hub,
                                                          bad: str) -> None:
        with pytest.raises(Unauthorized):
            shub.authenticate(bad)

    def test_a_right_id_with_a_wrong_secret_is_unauthorized(self, shub: confhub.Hub) -> None:
        token, _ = shub.create_token(tenant="acme")
        forged = token[:-1] + ("A" if token[-1] != "A" else "B")
        with pytest.raises(Unauthorized, match="unknown"):
            shub.authenticate(forged)

    def test_revoked_and_expired_tokens_are_unauthorized(self, shub: confhub.Hub) -> None:
        token, info = shub.create_token(tenant="acme")
        shub.revoke_token(info.id)
        with pytest.raises(Unauthorized, match="revoked"):
            shub.authenticate(token)
        short, _ = shub.create_token(tenant="acme", expires_in=1)
        time.sleep(1.05)
        with pytest.raises(Unauthorized, match="expired"):
            shub.authenticate(short)

    def test_another_process_sees_a_new_token_at_once_and_a_revocation_within_a_second(
            self, open_secure: Callable[..., confhub.Hub], master_key: str) -> None:
        a, b = open_secure(), open_secure()
        token, info = a.create_token(role="superadmin")
        assert b.authenticate(token).superadmin  # a miss reads storage
        a.revoke_token(info.id)
        deadline = time.monotonic() + 3
        while True:
            try:
                b.authenticate(token)
            except Unauthorized:
                break
            assert time.monotonic() < deadline, "revocation not seen within 3 s"
            time.sleep(0.05)

    @pytest.mark.parametrize(("kwargs", "problem"), [
        ({"role": "superadmin", "tenant": "acme"}, "superadmin"),
        ({"role": "admin"}, "needs one"),
        ({"role": "owner", "tenant": "acme"}, "unknown role"),
        ({"tenant": "acme", "expires_in": "soon"}, "duration"),
        ({"tenant": "acme", "namespaces": []}, "namespaces"),
        ({"tenant": "acme", "namespaces": ["bad name"]}, "namespace"),
    ])
    def test_bad_requests_are_refused(self, shub: confhub.Hub, kwargs: dict[str, Any],
                                      problem: str) -> None:
        with pytest.raises(InvalidRequest, match=problem):
            shub.create_token(**kwargs)

    def test_a_token_for_a_missing_tenant_is_refused(self, shub: confhub.Hub) -> None:
        with pytest.raises(NotFound):
            shub.create_token(tenant="nosuch")

    def test_purging_a_tenant_revokes_its_tokens(self, shub: confhub.Hub) -> None:
        token, _ = shub.create_token(tenant="acme")
        shub.delete_tenant("acme", hard=True)
        shub.create_tenant("acme")
        with pytest.raises(Unauthorized, match="revoked"):
            shub.authenticate(token)

    def test_auth_is_enabled_once_any_token_exists(
            self, open_secure: Callable[..., confhub.Hub]) -> None:
        hub = open_secure()
        assert hub.auth_enabled is False
        hub.create_token(role="superadmin")
        assert hub.auth_enabled is True


def test_token_comparison_is_constant_time(shub: confhub.Hub) -> None:
    """The secret is checked with hmac.compare_digest on full-length digests, whether the
    guess is nearly right or entirely wrong (observed with a profiler, nothing replaced)."""
    token, _ = shub.create_token(tenant="acme")
    compared: list[int] = []

    def profile(frame: FrameType, event: str, arg: Any) -> None:
        if event == "c_call" and getattr(arg, "__name__", "") == "compare_digest":
            compared.append(1)

    for guess in (token[:-1] + ("B" if token[-1] == "A" else "A"),  # last char wrong
                  token[:18] + "A" * 43):  # all wrong
        sys.setprofile(profile)
        try:
            with pytest.raises(Unauthorized):
                shub.authenticate(guess)
        finally:
            sys.setprofile(None)
    assert len(compared) == 2


def test_parse_duration() -> None:
    assert [parse_duration(t) for t in ("45s", "90m", "12h", "30d", "2w")] == [
        45, 5400, 43200, 2592000, 1209600]


class TestAudit:
    def test_every_change_is_recorded_with_its_reason_never_its_value(
            self, shub: confhub.Hub) -> None:
        cfg = shub.tenant("acme")
        cfg.set("models", "opus", {"v": "visible-value"}, reason="raise", author="ops",
                request_id="r-1")
        with cfg.transaction(reason="batch") as tx:
            tx.set("models", "a", 1)
            tx.delete("models", "opus")
        events = shub.audit("acme", action=None, target="models/")
        assert [(e.action, e.target, e.reason, e.actor) for e in events] == [
            ("config.put", "models/opus", "raise", "ops"),
            ("config.put", "models/a", "batch", None),
            ("config.delete", "models/opus", "batch", None),
        ]
        assert events[0].request_id == "r-1" and events[0].details["version"] == 1
        assert "visible-value" not in str([e.to_dict() for e in shub.audit()])

    def test_dry_runs_and_failed_writes_leave_no_record(self, shub: confhub.Hub) -> None:
        cfg = shub.tenant("acme")
        cfg.set("m", "k", 1, dry_run=True)
        with pytest.raises(confhub.VersionConflict):
            cfg.set("m", "k", 1, expected_version=3)
        assert shub.audit("acme", target="m/") == []

    def test_filters_and_paging(self, shub: confhub.Hub) -> None:
        cfg = shub.tenant("acme")
        for i in range(5):
            cfg.set("m", f"k{i}", i)
        page = shub.audit("acme", action="config.put", limit=2)
        rest = shub.audit("acme", action="config.put", after=page[-1].id)
        assert [e.target for e in page + rest] == [f"m/k{i}" for i in range(5)]
        future = datetime.now(UTC) + timedelta(hours=1)
        assert shub.audit("acme", since=future) == []
        assert len(shub.audit("acme", until=future, action="config.put")) == 5
        assert shub.audit("acme", target="m/k3")[0].target == "m/k3"
        assert shub.audit("acme", target="m%") == []  # literal prefix, not a pattern

    def test_token_management_and_tenant_lifecycle_are_recorded(self,
                                                                shub: confhub.Hub) -> None:
        _, info = shub.create_token(tenant="acme", name="ci")
        shub.revoke_token(info.id)
        shub.delete_tenant("acme")
        shub.restore_tenant("acme")
        actions = [e.action for e in shub.audit("acme")]
        assert actions == ["tenant.create", "token.create", "token.revoke", "tenant.delete",
                           "tenant.restore"]

    @pytest.mark.parametrize("backend", [Store, SqliteStore, PostgresStore])
    def test_the_store_offers_no_way_to_change_the_log(self, backend: type) -> None:
        names = [n for n in dir(backend) if "audit" in n and not n.startswith("_")]
        assert sorted(names) == ["append_audit", "audit"]
