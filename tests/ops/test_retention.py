"""Retention and compaction: what is kept, what goes, and what a watcher below the compacted
revision is told — on SQLite and PostgreSQL, and as a property against a model."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import confhub


@pytest.fixture(params=["sqlite", "postgres"])
def hub(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[confhub.Hub]:
    url = (f"sqlite:///{tmp_path / 'r.db'}" if request.param == "sqlite"
           else request.getfixturevalue("pg_url"))
    with confhub.open(url) as opened:
        yield opened


def versions(cfg: confhub.Tenant, key: str) -> list[int]:
    return sorted(v.version for v in cfg.history("m", key, limit=1000))


class TestCompaction:
    def test_keep_last_keeps_the_newest_versions_and_the_current_one(
            self, hub: confhub.Hub) -> None:
        cfg = hub.tenant()
        for i in range(6):
            cfg.set("m", "a", {"i": i})
        hub.set_retention("default", keep_last=2)
        report = hub.compact()
        assert report["tenants"]["default"]["removed"] == 4
        assert versions(cfg, "a") == [5, 6]
        assert cfg.get("m", "a").value == {"i": 5}

    def test_a_snapshot_keeps_the_versions_its_state_needs(self, hub: confhub.Hub) -> None:
        cfg = hub.tenant()
        for i in range(3):
            cfg.set("m", "a", {"i": i})
        cfg.snapshot("before")
        for i in range(3, 6):
            cfg.set("m", "a", {"i": i})
        hub.set_retention("default", keep_last=1)
        hub.compact()
        assert versions(cfg, "a") == [3, 6]
        cfg.restore(snapshot="before")  # still works below the compacted revision
        assert cfg.get("m", "a").value == {"i": 2}

    def test_a_rollback_keeps_its_target(self, hub: confhub.Hub) -> None:
        cfg = hub.tenant()
        for i in range(4):
            cfg.set("m", "a", {"i": i})
        cfg.rollback("m", "a", to_version=1)
        hub.set_retention("default", keep_last=1)
        hub.compact()
        assert versions(cfg, "a") == [1, 5]
        assert cfg.get("m", "a", version=1).value == {"i": 0}

    def test_a_namespace_policy_wins_over_the_tenant_policy(self, hub: confhub.Hub) -> None:
        cfg = hub.tenant()
        for i in range(4):
            cfg.set("m", "a", {"i": i})
            cfg.set("n", "b", {"i": i})
        hub.set_retention("default", keep_last=1)
        hub.set_retention("default", namespace="n", keep_last=3)
        hub.compact()
        assert versions(cfg, "a") == [4]
        assert sorted(v.version for v in cfg.history("n", "b")) == [2, 3, 4]

    def test_keep_for_keeps_young_versions(self, hub: confhub.Hub) -> None:
        cfg = hub.tenant()
        for i in range(3):
            cfg.set("m", "a", {"i": i})
        hub.set_retention("default", keep_for_seconds=3600)
        assert hub.compact()["removed"] == 0  # all are younger than an hour
        a_day_later = cfg.get("m", "a").updated_at.timestamp() * 1e6 + 86_400e6
        assert hub.compact(now=int(a_day_later))["removed"] == 2
        assert versions(cfg, "a") == [3]

    def test_reading_the_index_in_small_pages_changes_nothing(
            self, hub: confhub.Hub, monkeypatch: pytest.MonkeyPatch) -> None:
        from confhub.hub import retention

        cfg = hub.tenant()
        for i in range(5):
            for key in ("a", "b", "c"):
                cfg.set("m", key, {"i": i})
        monkeypatch.setattr(retention, "INDEX_PAGE", 4)  # pages end inside a key's versions
        hub.set_retention("default", keep_last=2)
        assert hub.compact()["removed"] == 9
        assert [versions(cfg, key) for key in ("a", "b", "c")] == [[4, 5]] * 3

    def test_no_policy_keeps_everything(self, hub: confhub.Hub) -> None:
        cfg = hub.tenant()
        for i in range(3):
            cfg.set("m", "a", {"i": i})
        assert hub.compact() == {"tenants": {}, "removed": 0, "space": None}
        assert versions(cfg, "a") == [1, 2, 3]

    def test_a_bad_limit_is_refused_naming_it(self, hub: confhub.Hub) -> None:
        with pytest.raises(confhub.InvalidRequest, match="keep_last"):
            hub.set_retention("default", keep_last=0)
        with pytest.raises(confhub.NotFound):
            hub.set_retention("nobody", keep_last=1)


class TestGone:
    def test_reads_and_watches_below_the_compacted_revision_are_gone(
            self, hub: confhub.Hub) -> None:
        cfg = hub.tenant()
        for i in range(5):
            cfg.set("m", "a", {"i": i})
        hub.set_retention("default", keep_last=1)
        hub.compact()
        compacted = hub.tenant_info("default").compacted_revision
        assert compacted == 5
        with pytest.raises(confhub.Gone) as gone:
            cfg.changes(since=2)
        assert gone.value.compacted_revision == 5
        with pytest.raises(confhub.Gone):
            cfg.watch(lambda change: None, since=1)
        with pytest.raises(confhub.Gone):
            cfg.restore(revision=3)
        assert [c.version for c in cfg.changes(since=compacted)] == []
        cfg.set("m", "a", {"i": 99})
        assert [c.version for c in cfg.changes(since=compacted)] == [6]


# ---------------------------------------------------------------------------- property

OPS = st.lists(st.tuples(st.sampled_from(["put", "put", "put", "delete", "rollback", "snap"]),
                         st.sampled_from(["a", "b", "c"]), st.integers(1, 5)),
               min_size=1, max_size=40)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=OPS, keep_last=st.integers(1, 3))
def test_compaction_never_drops_what_it_must_keep(tmp_path_factory: pytest.TempPathFactory,
                                                  ops: list[tuple[str, str, int]],
                                                  keep_last: int) -> None:
    """Against a model of every key's history: after compaction every current version,
    every version a snapshot's state needs, and the target of every kept rollback are there;
    the last ``keep_last`` versions are there; and the feed after the compacted revision is
    exactly the model's."""
    db = tmp_path_factory.mktemp("prop") / "p.db"
    with confhub.open(f"sqlite:///{db}") as hub:
        cfg = hub.tenant()
        model: dict[str, list[tuple[int, int, int | None]]] = {}  # key -> (version, rev, rb)
        snapshots: list[int] = []
        feed: list[tuple[int, str, int]] = []
        for n, (op, key, arg) in enumerate(ops):
            history = model.setdefault(key, [])
            if op == "snap":
                snapshots.append(cfg.snapshot(f"s{n}").revision)
                continue
            try:
                if op == "put":
                    change = cfg.set("m", key, {"n": n})
                    written = (change.version, change.revision, None)
                elif op == "delete":
                    deleted = cfg.delete("m", key)
                    written = (deleted.version, deleted.revision, None)
                else:
                    target = min(arg, len(history)) if history else 1
                    rolled = cfg.rollback("m", key, to_version=target)
                    written = (rolled.version, rolled.revision, target)
            except (confhub.NotFound, confhub.InvalidRequest):
                continue
            history.append(written)
            feed.append((written[1], key, written[0]))
        hub.set_retention("default", keep_last=keep_last)
        hub.compact()
        compacted = hub.tenant_info("default").compacted_revision
        for key, history in model.items():
            if not history:
                continue
            kept = {v.version for v in cfg.history("m", key, limit=1000)}
            must = {history[-1][0]} | {v for v, _, _ in history[-keep_last:]}
            for snapshot in snapshots:
                before = [v for v, rev, _ in history if rev <= snapshot]
                if before:
                    must.add(before[-1])
            for version, _, target in history:
                if version in kept and target is not None:
                    must.add(target)
            assert must <= kept, (key, must - kept)
        after = sorted((r, k, v) for r, k, v in feed if r > compacted)
        assert [(c.revision, c.key, c.version)
                for c in cfg.changes(since=compacted, limit=1000)] == after
