"""Secrets on the embedded hub, on SQLite and PostgreSQL: sealed at rest, ``***`` everywhere,
revealed only on purpose (and audited), re-wrapped by a key rotation without a pause."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

import confhub
from confhub import InvalidRequest, InvalidValue
from confhub.secrets import REDACTED, KeyRing, Secret, generate_master_key, redact_change

PASSWORD = "pw-7f3a9c-unique"


class TestSealedValues:
    def test_a_whole_secret_value_reads_as_stars(self, shub: confhub.Hub) -> None:
        cfg = shub.tenant("acme")
        entry = cfg.set("db", "password", PASSWORD, secret=True)
        assert (entry.value, entry.secret) == (REDACTED, True)
        assert cfg.get("db", "password").value == REDACTED
        assert cfg.list("db")[0].value == REDACTED

    def test_secret_fields_leave_the_rest_readable(self, shub: confhub.Hub) -> None:
        cfg = shub.tenant("acme")
        cfg.set("db", "main", {"user": "app", "auth": {"password": PASSWORD}},
                secret=["/auth/password"])
        assert cfg.get("db", "main").value == {"user": "app", "auth": {"password": REDACTED}}

    def test_reveal_decrypts_and_is_audited(self, shub: confhub.Hub) -> None:
        cfg = shub.tenant("acme")
        cfg.set("db", "main", {"user": "app", "password": PASSWORD}, secret=["/password"])
        assert cfg.get("db", "main", reveal=True).value == {"user": "app",
                                                            "password": PASSWORD}
        reveals = shub.audit("acme", action="secret.reveal")
        assert [(e.target, e.details) for e in reveals] == [("db/main", {"version": 1})]

    def test_a_secret_key_stays_secret_on_later_writes(self, shub: confhub.Hub) -> None:
        cfg = shub.tenant("acme")
        cfg.set("db", "main", {"user": "a", "password": "one"}, secret=["/password"])
        cfg.set("db", "main", {"user": "b", "password": "two"})
        cfg.patch("db", "main", {"user": "c"})
        assert cfg.get("db", "main").value == {"user": "c", "password": REDACTED}
        assert cfg.get("db", "main", reveal=True).value == {"user": "c", "password": "two"}

    def test_history_diff_and_changes_never_show_values(self, shub: confhub.Hub) -> None:
        cfg = shub.tenant("acme")
        cfg.set("db", "password", "first-secret", secret=True)
        cfg.set("db", "password", "second-secret")
        assert {v.value for v in cfg.history("db", "password")} == {REDACTED}
        assert cfg.diff("db", "password", 1, 2) == [
            {"op": "replace", "path": "", "value": REDACTED}]
        assert {c.value for c in cfg.changes(0)} == {REDACTED}
        assert cfg.get("db", "password", version=1, reveal=True).value == "first-secret"

    def test_rollback_restore_and_clone_keep_secrets_sealed(self, shub: confhub.Hub) -> None:
        cfg = shub.tenant("acme")
        cfg.set("db", "password", "v1-secret", secret=True)
        cfg.snapshot("before")
        cfg.set("db", "password", "v2-secret")
        assert cfg.rollback("db", "password", 1).value == REDACTED
        assert cfg.get("db", "password", reveal=True).value == "v1-secret"
        cfg.set("db", "password", "v4-secret")
        cfg.restore("before")
        assert cfg.get("db", "password", reveal=True).value == "v1-secret"
        shub.clone_tenant("acme", "acme-copy")
        copy = shub.tenant("acme-copy")
        assert copy.get("db", "password").value == REDACTED
        assert copy.get("db", "password", reveal=True).value == "v1-secret"

    def test_export_redacts_unless_asked_and_round_trips_with_secrets(
            self, shub: confhub.Hub) -> None:
        cfg = shub.tenant("acme")
        cfg.set("db", "password", PASSWORD, secret=True)
        assert PASSWORD not in str(shub.export("acme", include_history=True))
        full = shub.export("acme", include_history=True, include_secrets=True)
        assert PASSWORD in str(full)
        shub.import_("restored", full)
        assert shub.tenant("restored").get("db", "password").value == REDACTED
        assert shub.tenant("restored").get("db", "password", reveal=True).value == PASSWORD
        with pytest.raises(InvalidRequest, match="redacted"):
            shub.import_("from-redacted", shub.export("acme"))

    def test_a_client_cannot_forge_the_sealed_form(self, shub: confhub.Hub) -> None:
        with pytest.raises(InvalidValue, match="reserved"):
            shub.tenant("acme").set("db", "x", {"$confhub:secret": "v1:k:abc"})

    def test_a_failing_json_patch_on_a_secret_does_not_quote_it(self,
                                                                shub: confhub.Hub) -> None:
        cfg = shub.tenant("acme")
        cfg.set("db", "password", {"pw": PASSWORD}, secret=True)
        with pytest.raises(InvalidRequest) as caught:
            cfg.patch("db", "password", [{"op": "test", "path": "/pw", "value": "guess"}],
                      json_patch=True)
        assert PASSWORD not in str(caught.value) and PASSWORD not in str(caught.value.details)


class TestWithoutMasterKey:
    def test_writing_a_secret_is_refused_and_writes_nothing(
            self, open_secure: Callable[..., confhub.Hub], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.delenv("CONFHUB_MASTER_KEY", raising=False)
        hub = open_secure()
        with pytest.raises(InvalidRequest, match="CONFHUB_MASTER_KEY"):
            hub.tenant().set("db", "password", "x", secret=True)
        assert hub.tenant().changes(0) == []

    def test_a_hub_without_the_key_reads_stars_and_cannot_overwrite(
            self, open_secure: Callable[..., confhub.Hub], master_key: str,
            monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv("CONFHUB_MASTER_KEY", raising=False)
        open_secure(master_key=master_key).tenant().set("db", "pw", PASSWORD, secret=True)
        keyless = open_secure()
        assert keyless.tenant().get("db", "pw").value == REDACTED
        with pytest.raises(InvalidRequest, match="master key"):
            keyless.tenant().set("db", "pw", "plain now")
        with pytest.raises(InvalidRequest, match="master key"):
            keyless.tenant().get("db", "pw", reveal=True)


class TestRotation:
    def test_rotation_rewraps_and_old_key_can_then_go(
            self, open_secure: Callable[..., confhub.Hub], master_key: str) -> None:
        open_secure(master_key=master_key).tenant().set("db", "pw", PASSWORD, secret=True)
        new = generate_master_key()
        counts = open_secure(master_key=f"{new},{master_key}").rotate_keys()
        assert counts == {"data_keys": 1, "rewrapped": 1}
        assert open_secure(master_key=new).tenant().get("db", "pw", reveal=True).value \
            == PASSWORD

    def test_readers_keep_reading_during_a_rotation(
            self, open_secure: Callable[..., confhub.Hub], master_key: str,
            store_url: str) -> None:
        """Fresh hubs (which must unwrap the data key) reveal the secret throughout."""
        open_secure(master_key=master_key).tenant().set("db", "pw", PASSWORD, secret=True)
        new = generate_master_key()
        ring = f"{new},{master_key}"
        failures: list[BaseException] = []
        reads = [0]
        stop = threading.Event()

        def read() -> None:
            while not stop.is_set():
                try:
                    with confhub.open(store_url, master_key=ring) as reader:  # a fresh vault
                        assert reader.tenant().get("db", "pw", reveal=True).value == PASSWORD
                    reads[0] += 1
                except BaseException as exc:  # noqa: BLE001 - reported below
                    failures.append(exc)
                    return

        threads = [threading.Thread(target=read) for _ in range(3)]
        for t in threads:
            t.start()
        rotator = open_secure(master_key=ring)
        for _ in range(5):
            rotator.rotate_keys()
            rotator.tenant().set("db", f"k{reads[0]}", "more", secret=True)
        stop.set()
        for t in threads:
            t.join()
        assert not failures, failures[0]
        assert reads[0] > 0


class TestSecretType:
    def test_repr_and_str_redact(self) -> None:
        secret = Secret(PASSWORD)
        assert PASSWORD not in repr(secret) and PASSWORD not in str(secret)
        assert PASSWORD not in f"{secret} {secret!r}"
        assert secret.get_secret_value() == PASSWORD

    def test_key_ring_repr_shows_ids_only(self, master_key: str) -> None:
        ring = KeyRing.from_text(master_key)
        assert master_key not in repr(ring) and ring.primary_id in repr(ring)

    def test_a_bad_master_key_is_refused_without_echoing_it(self) -> None:
        with pytest.raises(InvalidRequest) as caught:
            KeyRing.from_text("not-a-key-but-a-secret-string")
        assert "not-a-key" not in str(caught.value)


def test_redact_change_is_idempotent(shub: confhub.Hub) -> None:
    cfg = shub.tenant("acme")
    cfg.set("db", "pw", {"a": PASSWORD}, secret=["/a"])
    change = cfg.changes(0)[-1]
    assert redact_change(change) == change and redact_change(change).value == {"a": REDACTED}
