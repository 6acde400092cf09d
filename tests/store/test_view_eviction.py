"""A read that loses its cached view halfway still answers from storage's truth.

The hub's follower drops a tenant's view when it sees the tenant deleted or recreated, and
compaction can outrun a view; a reader that loaded the view a moment earlier then holds an
emptied one. The state machine found this as a rare "not found" for a key that existed, after
a tenant was soft-deleted and restored while the follower was looking. Here the drop is made
to happen at the worst moment on purpose: right after the reader loaded the namespace.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import confhub
from confhub.hub.cache import Cache, TenantView


@pytest.fixture(params=["sqlite", "pg"])
def url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue(f"{request.param}_url"))


@pytest.fixture
def hub(url: str) -> Iterator[confhub.Hub]:
    """An embedded hub (the view lives in this process) on each backend."""
    hub = confhub.open(url)
    yield hub
    hub.close()


@pytest.fixture
def dropping(hub: confhub.Hub, monkeypatch: pytest.MonkeyPatch
             ) -> Iterator[Callable[[int], None]]:
    """``arm(n)``: the next ``n`` loads of a namespace drop the tenant's view right after."""
    cache: Cache = hub._core.cache
    real_ensure = cache.ensure
    armed = [0]

    def ensure_then_drop(view: TenantView, namespace: str | None) -> None:
        real_ensure(view, namespace)
        if armed[0] > 0 and view.valid:
            armed[0] -= 1
            cache.evict(view.tenant)

    monkeypatch.setattr(cache, "ensure", ensure_then_drop)

    def arm(times: int) -> None:
        armed[0] = times

    yield arm


@pytest.fixture
def cfg(hub: confhub.Hub) -> confhub.Tenant:
    hub.create_tenant("acme")
    cfg = hub.tenant("acme")
    cfg.set("app", "db", {"pool": 5})
    cfg.set("app", "db", {"pool": 7}, env="production")
    cfg.set("app", "cache", {"ttl": 30})
    return cfg


def _fresh(hub: confhub.Hub) -> confhub.Tenant:
    """The tenant through a hub whose view holds undecoded rows (the slow read path)."""
    hub._core.cache.evict("acme")
    return hub.tenant("acme")


READS: dict[str, Callable[[confhub.Tenant], Any]] = {
    "get": lambda t: t.get("app", "db").value,
    "get old version": lambda t: t.get("app", "db", version=1).created_at is not None,
    "list": lambda t: [e.key for e in t.list("app")],
    "namespaces": lambda t: t.namespaces(),
    "namespace counts": lambda t: t.namespace_counts(),
    "envs": lambda t: t.envs(),
    "resolve": lambda t: t.resolve("app", "db", env="production").value,
}


@pytest.mark.parametrize("read", list(READS))
def test_a_read_whose_view_is_dropped_midway_answers_in_full(
        hub: confhub.Hub, cfg: confhub.Tenant, dropping: Callable[[int], None],
        read: str) -> None:
    expected = READS[read](_fresh(hub))
    tenant = _fresh(hub)
    dropping(2)  # the first load and the retry's first load both lose their view
    assert READS[read](tenant) == expected


def test_a_deleted_tenant_still_reads_as_not_found(
        hub: confhub.Hub, cfg: confhub.Tenant, dropping: Callable[[int], None]) -> None:
    tenant = _fresh(hub)
    hub.delete_tenant("acme")
    dropping(1)
    with pytest.raises(confhub.NotFound, match="tenant 'acme' is deleted"):
        tenant.get("app", "db")


def test_a_stale_tenant_list_does_not_drop_a_restored_tenant(
        hub: confhub.Hub, cfg: confhub.Tenant, url: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The follower reads the tenant list before taking the cache lock; a delete and restore
    made meanwhile leave it saying "deleted". Dropping the view on that word would end the
    tenant's watchers for a tenant that is there: the follower asks again under the lock,
    and still brings the view up to date."""
    cache: Cache = hub._core.cache
    store = hub._core.store
    view = _fresh(hub)._view
    with confhub.open(url) as other:  # another process writes meanwhile
        revision = other.tenant("acme").set("app", "late", 1).revision
    stale = [dataclasses.replace(t, deleted_at=t.created_at + 1) if t.id == "acme" else t
             for t in store.tenants(include_deleted=True)]
    monkeypatch.setattr(store, "tenants", lambda include_deleted=False: stale)
    cache.refresh()
    assert view.valid and cache.views["acme"] is view
    assert view.revision == revision


def test_a_tenant_deleted_by_another_process_is_dropped_by_the_follower(
        hub: confhub.Hub, cfg: confhub.Tenant, url: str) -> None:
    view = _fresh(hub)._view
    with confhub.open(url) as other:
        other.delete_tenant("acme")
    hub._core.cache.refresh()
    assert not view.valid and "acme" not in hub._core.cache.views
