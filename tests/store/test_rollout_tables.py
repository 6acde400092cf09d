"""The store's rollout tables (schema 5) on both backends: index, consumers, reports, leader."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from confhub.store.base import ConsumerRow, ReportRow, Store
from confhub.store.postgres import PostgresStore
from confhub.store.sqlite import SqliteStore


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    opened: Store
    if request.param == "sqlite":
        opened = SqliteStore(str(tmp_path / "s.db"))
    else:
        opened = PostgresStore(str(request.getfixturevalue("pg_url")))
    opened.create_tenant("acme")
    yield opened
    opened.close()


def consumer(client: str, seen: int, revision: int = 0, **labels: str) -> ConsumerRow:
    return ConsumerRow("acme", client, json.dumps(labels), seen, seen, revision)


class TestConsumers:
    def test_touch_inserts_then_moves_last_seen_forward_only(self, store: Store) -> None:
        store.touch_consumers([consumer("api-1", 100, 3, region="eu")])
        store.touch_consumers([consumer("api-1", 50, 1, region="us")])  # late, older news
        row = store.consumer("acme", "api-1")
        assert row is not None
        assert (row.first_seen, row.last_seen, row.revision) == (100, 100, 3)
        assert json.loads(row.labels) == {"region": "us"}  # labels are the latest given
        store.touch_consumers([consumer("api-1", 200, 5)])
        row = store.consumer("acme", "api-1")
        assert row is not None and (row.first_seen, row.last_seen, row.revision) == (100, 200, 5)

    def test_list_by_client_id_and_seen_since(self, store: Store) -> None:
        store.touch_consumers([consumer("b", 10), consumer("a", 20), consumer("c", 30)])
        assert [c.client_id for c in store.consumers("acme")] == ["a", "b", "c"]
        assert [c.client_id for c in store.consumers("acme", seen_since=20)] == ["a", "c"]
        assert store.consumers("other") == []
        assert store.consumer("acme", "nobody") is None


class TestReports:
    def test_latest_report_per_rollout_and_client_wins(self, store: Store) -> None:
        store.add_report(ReportRow("acme", "r-1", "api-1", "applied", 0, 10))
        store.add_report(ReportRow("acme", "r-1", "api-1", "failed", 1, 20, "model refused"))
        store.add_report(ReportRow("acme", "r-1", "api-2", "applied", 1, 15))
        store.add_report(ReportRow("acme", "r-2", "api-1", "healthy", 0, 30))
        rows = store.reports("acme", rollout_id="r-1")
        assert [(r.client_id, r.status, r.reason) for r in rows] == [
            ("api-1", "failed", "model refused"), ("api-2", "applied", None)]
        assert [r.rollout_id for r in store.reports("acme", client_id="api-1")] == ["r-2", "r-1"]


class TestRolloutIndex:
    def test_index_is_written_with_the_transaction(self, store: Store) -> None:
        store.write("acme", lambda txn: txn.index_rollout("r-1", "running"))
        store.write("acme", lambda txn: txn.index_rollout("r-2", "running"))
        store.write("acme", lambda txn: txn.index_rollout("r-1", "completed"))
        assert store.rollout_index(["running", "paused"]) == [("acme", "r-2", "running")]
        assert len(store.rollout_index()) == 2
        assert store.tenant("acme").revision == 0  # type: ignore[union-attr]

    def test_index_is_dropped_when_the_transaction_fails(self, store: Store) -> None:
        def failing(txn: object) -> None:
            txn.index_rollout("r-9", "running")  # type: ignore[attr-defined]
            raise RuntimeError("refused")

        with pytest.raises(RuntimeError):
            store.write("acme", failing)
        assert store.rollout_index() == []

    def test_purge_removes_the_tenants_rollout_rows(self, store: Store) -> None:
        store.write("acme", lambda txn: txn.index_rollout("r-1", "running"))
        store.touch_consumers([consumer("api-1", 1)])
        store.add_report(ReportRow("acme", "r-1", "api-1", "applied", 0, 1))
        store.purge_tenant("acme")
        assert (store.rollout_index(), store.consumers("acme"), store.reports("acme")) == (
            [], [], [])


class TestLeading:
    def test_only_one_holder_at_a_time(self, store: Store) -> None:
        with store.leading("rollouts") as first:
            with store.leading("rollouts") as second:
                assert (first, second) == (True, False)
            with store.leading("other") as unrelated:
                assert unrelated
        with store.leading("rollouts") as again:
            assert again


def test_two_postgres_processes_share_one_leader(pg_url: str) -> None:
    one, two = PostgresStore(pg_url), PostgresStore(pg_url)
    try:
        with one.leading("rollouts") as a, two.leading("rollouts") as b:
            assert (a, b) == (True, False)
        with two.leading("rollouts") as b:
            assert b
    finally:
        one.close()
        two.close()
