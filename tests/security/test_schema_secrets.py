"""Fields a schema marks ``"x-secret": true`` are sealed like ``secret=`` ones, on every write
path, and validated in plain text without their values ever reaching a message."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

import confhub
from confhub.secrets import REDACTED

PASSWORD = "pw-x-secret-4d2e8b"
SCHEMA = {
    "type": "object",
    "properties": {
        "host": {"type": "string"},
        "password": {"type": "string", "minLength": 12, "x-secret": True},
        "replicas": {"type": "array", "items": {
            "type": "object", "properties": {"token": {"type": "string", "x-secret": True}}}},
    },
}


@pytest.fixture
def cfg(shub: confhub.Hub) -> confhub.Tenant:
    tenant = shub.tenant("acme")
    tenant.set_schema("db", SCHEMA)
    return tenant


def test_marked_fields_are_sealed_and_the_rest_stays_readable(cfg: confhub.Tenant) -> None:
    entry = cfg.set("db", "main", {"host": "db1", "password": PASSWORD,
                                   "replicas": [{"token": "tok-one-1"}, {"token": "tok-two-2"}]})
    assert entry.secret
    assert entry.value == {"host": "db1", "password": REDACTED,
                           "replicas": [{"token": REDACTED}, {"token": REDACTED}]}
    revealed = cfg.get("db", "main", reveal=True).value
    assert (revealed["password"], revealed["replicas"][1]["token"]) == (PASSWORD, "tok-two-2")


def test_a_merge_patch_keeps_marked_fields_sealed(cfg: confhub.Tenant) -> None:
    cfg.set("db", "main", {"host": "db1", "password": PASSWORD})
    cfg.patch("db", "main", {"host": "db2"})
    cfg.patch("db", "main", {"password": PASSWORD + "-new"})
    assert cfg.get("db", "main").value == {"host": "db2", "password": REDACTED}
    assert cfg.get("db", "main", reveal=True).value["password"] == PASSWORD + "-new"
    assert all(v.value in (None, {"host": "db1", "password": REDACTED},
                           {"host": "db2", "password": REDACTED})
               for v in cfg.history("db", "main"))


def test_validation_sees_the_plaintext_and_never_quotes_it(cfg: confhub.Tenant) -> None:
    short = "short-pw-7"  # 10 characters: minLength 12 applies to the secret itself
    with pytest.raises(confhub.ValidationFailed) as failure:
        cfg.set("db", "main", {"host": "db1", "password": short})
    assert "/password" in str(failure.value)
    assert short not in str(failure.value)
    assert all(short not in issue.message for issue in failure.value.report.errors)
    with pytest.raises(confhub.NotFound):
        cfg.get("db", "main")


def test_watchers_see_stars(cfg: confhub.Tenant) -> None:
    seen: list[confhub.Change] = []
    with cfg.watch(seen.append):
        cfg.set("db", "main", {"host": "db1", "password": PASSWORD})
        deadline = time.monotonic() + 10
        while not seen and time.monotonic() < deadline:
            time.sleep(0.01)
    assert seen[0].value == {"host": "db1", "password": REDACTED}


def test_without_a_master_key_marked_fields_cannot_be_written(
        open_secure: Callable[..., confhub.Hub]) -> None:
    hub = open_secure()
    cfg = hub.tenant()
    cfg.set_schema("db", SCHEMA)
    with pytest.raises(confhub.InvalidRequest, match="master key"):
        cfg.set("db", "main", {"host": "db1", "password": PASSWORD})
    cfg.set("db", "other", {"host": "db1"})  # nothing secret in it: fine
    with pytest.raises(confhub.NotFound):
        cfg.get("db", "main")
