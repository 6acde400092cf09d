"""The store's contract: every method of DESIGN.md section 2, on every backend.

Each test runs once per backend (``cfg``/``hub`` fixtures are parametrised in conftest.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

import confhub
from confhub import (
    AlreadyExists,
    Gone,
    InvalidName,
    InvalidRequest,
    InvalidValue,
    NotFound,
    TenantExists,
    TooLarge,
    VersionConflict,
)

Tenant = confhub.Tenant
Hub = confhub.Hub


class TestSetAndGet:
    def test_first_set_creates_version_1(self, cfg: Tenant) -> None:
        """A new key starts at version 1 and its entry carries the write's metadata."""
        entry = cfg.set("models", "opus", {"max_tokens": 8192}, author="ops", reason="new")
        assert (entry.version, entry.value, entry.updated_by) == (1, {"max_tokens": 8192}, "ops")
        assert entry.tenant == "acme" and entry.env == "base"
        assert entry.created_at == entry.updated_at

    def test_every_set_adds_one_version(self, cfg: Tenant) -> None:
        for i in range(1, 4):
            assert cfg.set("models", "opus", {"i": i}).version == i
        assert cfg.get("models", "opus").value == {"i": 3}

    def test_update_keeps_created_at_and_moves_updated_at(self, cfg: Tenant) -> None:
        first = cfg.set("models", "opus", 1)
        second = cfg.set("models", "opus", 2)
        assert second.created_at == first.created_at
        assert second.updated_at >= first.updated_at

    def test_get_of_missing_key_raises_not_found_naming_it(self, cfg: Tenant) -> None:
        with pytest.raises(NotFound, match="models/nothing"):
            cfg.get("models", "nothing")

    def test_not_found_is_a_lookup_error(self, cfg: Tenant) -> None:
        with pytest.raises(LookupError):
            cfg.get("models", "nothing")

    def test_get_old_version(self, cfg: Tenant) -> None:
        cfg.set("models", "opus", {"v": 1})
        cfg.set("models", "opus", {"v": 2})
        assert cfg.get("models", "opus", version=1).value == {"v": 1}
        assert cfg.get("models", "opus", version=2).version == 2

    def test_get_of_missing_version_raises(self, cfg: Tenant) -> None:
        cfg.set("models", "opus", 1)
        with pytest.raises(NotFound, match="version 7"):
            cfg.get("models", "opus", version=7)

    @pytest.mark.parametrize("value", [
        {"nested": {"list": [1, 2.5, "x", None, True]}}, [1, 2, 3], "text", 42, 3.25, True,
        None, {"unicode": "日本語 ✓ \u0000"}, {},
    ])
    def test_any_json_value_round_trips(self, cfg: Tenant, value: object) -> None:
        cfg.set("ns", "k", value)
        assert cfg.get("ns", "k").value == value
        assert json.loads(json.dumps(cfg.get("ns", "k").value)) == value

    def test_key_order_is_preserved(self, cfg: Tenant) -> None:
        cfg.set("ns", "k", {"z": 1, "a": 2, "m": 3})
        assert list(cfg.get("ns", "k").value) == ["z", "a", "m"]

    def test_values_are_read_only(self, cfg: Tenant) -> None:
        """Mutating a returned value must not change what other readers see."""
        cfg.set("ns", "k", {"a": [1]})
        value = cfg.get("ns", "k").value
        with pytest.raises(TypeError):
            value["a"] = 2
        with pytest.raises(TypeError):
            value["a"].append(2)
        copy = confhub.thaw(value)
        copy["a"].append(2)
        assert cfg.get("ns", "k").value == {"a": [1]}

    def test_names_are_case_sensitive(self, cfg: Tenant) -> None:
        cfg.set("ns", "Key", 1)
        cfg.set("ns", "key", 2)
        assert (cfg.get("ns", "Key").value, cfg.get("ns", "key").value) == (1, 2)


class TestNamesAndValues:
    @pytest.mark.parametrize("bad", ["", "has space", "a/b", "..", "a..b", "-lead", ".lead",
                                     "x" * 129, "ünï", "tab\t", "new\nline"])
    def test_invalid_key_names_are_refused(self, cfg: Tenant, bad: str) -> None:
        with pytest.raises(InvalidName) as info:
            cfg.set("ns", bad, 1)
        assert info.value.details["kind"] == "key"

    def test_invalid_namespace_is_named_as_namespace(self, cfg: Tenant) -> None:
        with pytest.raises(InvalidName, match="namespace"):
            cfg.set("bad ns", "k", 1)

    def test_invalid_env_is_refused(self, cfg: Tenant) -> None:
        with pytest.raises(InvalidName, match="env"):
            cfg.set("ns", "k", 1, env="prod/eu")

    def test_invalid_tenant_is_refused(self, hub: Hub) -> None:
        with pytest.raises(InvalidName, match="tenant"):
            hub.tenant("a b")

    def test_longest_valid_name_is_accepted(self, cfg: Tenant) -> None:
        name = "k" * 128
        cfg.set("ns", name, 1)
        assert cfg.get("ns", name).value == 1

    @pytest.mark.parametrize("value", [float("nan"), float("inf"), {1: "int key"},
                                       {"set": {1, 2}}, b"bytes", object()])
    def test_non_json_values_are_refused(self, cfg: Tenant, value: object) -> None:
        with pytest.raises(InvalidValue):
            cfg.set("ns", "k", value)
        with pytest.raises(NotFound):
            cfg.get("ns", "k")

    def test_too_deep_values_are_refused(self, cfg: Tenant) -> None:
        value: object = 1
        for _ in range(100):
            value = [value]
        with pytest.raises(InvalidValue, match="deeper"):
            cfg.set("ns", "k", value)

    def test_values_over_the_limit_raise_too_large(self, cfg: Tenant) -> None:
        with pytest.raises(TooLarge) as info:
            cfg.set("ns", "k", "x" * (1024 * 1024))
        assert info.value.details["limit"] == 1024 * 1024
        with pytest.raises(NotFound):
            cfg.get("ns", "k")

    def test_bad_arguments_are_invalid_requests(self, cfg: Tenant) -> None:
        cfg.set("ns", "k", 1)
        for call in (lambda: cfg.set("ns", "k", 1, expected_version=-1),
                     lambda: cfg.history("ns", "k", limit=0),
                     lambda: cfg.changes(since=-1),
                     lambda: cfg.get("ns", "k", version=0)):
            with pytest.raises(InvalidRequest):
                call()


class TestCompareAndSet:
    def test_expected_version_zero_means_must_not_exist(self, cfg: Tenant) -> None:
        assert cfg.set("ns", "k", 1, expected_version=0).version == 1
        with pytest.raises(VersionConflict) as info:
            cfg.set("ns", "k", 2, expected_version=0)
        assert info.value.current_version == 1
        assert cfg.get("ns", "k").value == 1

    def test_matching_version_writes(self, cfg: Tenant) -> None:
        cfg.set("ns", "k", 1)
        assert cfg.set("ns", "k", 2, expected_version=1).version == 2

    def test_mismatch_changes_nothing_and_reports_current(self, cfg: Tenant) -> None:
        cfg.set("ns", "k", 1)
        cfg.set("ns", "k", 2)
        revision = cfg.revision
        with pytest.raises(VersionConflict, match="version 2") as info:
            cfg.set("ns", "k", 3, expected_version=1)
        assert (info.value.current_version, info.value.expected_version) == (2, 1)
        assert cfg.get("ns", "k").version == 2
        assert cfg.revision == revision

    def test_deleted_key_counts_as_absent(self, cfg: Tenant) -> None:
        cfg.set("ns", "k", 1)
        cfg.delete("ns", "k", expected_version=1)
        with pytest.raises(VersionConflict) as info:
            cfg.set("ns", "k", 2, expected_version=2)
        assert info.value.current_version == 0
        assert cfg.set("ns", "k", 3, expected_version=0).version == 3

    def test_cas_applies_to_patch_delete_and_rollback(self, cfg: Tenant) -> None:
        cfg.set("ns", "k", {"a": 1})
        cfg.set("ns", "k", {"a": 2})
        for call in (lambda: cfg.patch("ns", "k", {"b": 1}, expected_version=1),
                     lambda: cfg.delete("ns", "k", expected_version=1),
                     lambda: cfg.rollback("ns", "k", to_version=1, expected_version=1)):
            with pytest.raises(VersionConflict):
                call()
        assert cfg.get("ns", "k").value == {"a": 2}


class TestPatch:
    def test_merge_patch_adds_replaces_and_removes(self, cfg: Tenant) -> None:
        cfg.set("ns", "k", {"a": 1, "b": {"c": 1, "d": 2}, "e": [1]})
        entry = cfg.patch("ns", "k", {"a": 2, "b": {"d": None}, "e": [2], "f": "new"})
        assert entry.value == {"a": 2, "b": {"c": 1}, "e": [2], "f": "new"}
        assert entry.version == 2
        assert cfg.history("ns", "k")[0].op == "patch"

    def test_patch_of_missing_key_raises_not_found(self, cfg: Tenant) -> None:
        with pytest.raises(NotFound):
            cfg.patch("ns", "k", {"a": 1})

    def test_json_patch(self, cfg: Tenant) -> None:
        cfg.set("ns", "k", {"a": [1, 2]})
        entry = cfg.patch("ns", "k", [{"op": "add", "path": "/a/-", "value": 3},
                                      {"op": "replace", "path": "/b", "value": 1}
                                      if False else {"op": "add", "path": "/b", "value": 1}],
                          json_patch=True)
        assert entry.value == {"a": [1, 2, 3], "b": 1}

    def test_json_patch_with_a_bad_pointer_is_invalid(self, cfg: Tenant) -> None:
        cfg.set("ns", "k", {"a": 1})
        with pytest.raises(InvalidRequest):
            cfg.patch("ns", "k", [{"op": "add", "path": "no-slash", "value": 1}],
                      json_patch=True)
        assert cfg.get("ns", "k").version == 1

    def test_failing_json_patch_test_changes_nothing(self, cfg: Tenant) -> None:
        cfg.set("ns", "k", {"a": 1})
        with pytest.raises(InvalidRequest, match="does not apply"):
            cfg.patch("ns", "k", [{"op": "test", "path": "/a", "value": 2}], json_patch=True)
        assert cfg.get("ns", "k").version == 1

    def test_patch_result_over_limit_is_too_large(self, cfg: Tenant) -> None:
        """Each half fits the 1 MiB default; the patched value would not."""
        cfg.set("ns", "k", {"a": "x" * 600_000})
        with pytest.raises(TooLarge):
            cfg.patch("ns", "k", {"b": "y" * 600_000})
        assert cfg.get("ns", "k").version == 1


class TestDelete:
    def test_delete_writes_a_tombstone_version(self, cfg: Tenant) -> None:
        cfg.set("ns", "k", 1)
        tombstone = cfg.delete("ns", "k", reason="gone")
        assert (tombstone.version, tombstone.op, tombstone.deleted) == (2, "delete", True)
        with pytest.raises(NotFound):
            cfg.get("ns", "k")
        assert [v.op for v in cfg.history("ns", "k")] == ["delete", "put"]

    def test_delete_of_missing_key_raises_not_found(self, cfg: Tenant) -> None:
        with pytest.raises(NotFound):
            cfg.delete("ns", "k")
        cfg.set("ns", "k", 1)
        cfg.delete("ns", "k")
        with pytest.raises(NotFound):
            cfg.delete("ns", "k")

    def test_recreated_key_continues_its_history(self, cfg: Tenant) -> None:
        first = cfg.set("ns", "k", 1)
        cfg.delete("ns", "k")
        again = cfg.set("ns", "k", 2)
        assert again.version == 3
        assert again.created_at > first.created_at
        assert [v.version for v in cfg.history("ns", "k")] == [3, 2, 1]

    def test_deleted_version_cannot_be_read_as_a_value(self, cfg: Tenant) -> None:
        cfg.set("ns", "k", 1)
        cfg.delete("ns", "k")
        with pytest.raises(NotFound, match="deletion"):
            cfg.get("ns", "k", version=2)


class TestHistoryDiffRollback:
    def test_history_is_newest_first_with_metadata(self, cfg: Tenant) -> None:
        cfg.set("ns", "k", 1, author="a", reason="r1", metadata={"ticket": "X-1"})
        cfg.set("ns", "k", 2, author="b", reason="r2")
        newest, oldest = cfg.history("ns", "k")
        assert (newest.version, newest.author, newest.reason) == (2, "b", "r2")
        assert oldest.metadata == {"ticket": "X-1"}
        assert newest.revision > oldest.revision

    def test_history_pages_with_limit_and_before(self, cfg: Tenant) -> None:
        for i in range(10):
            cfg.set("ns", "k", i)
        first = cfg.history("ns", "k", limit=4)
        assert [v.version for v in first] == [10, 9, 8, 7]
        second = cfg.history("ns", "k", limit=4, before=first[-1].version)
        assert [v.version for v in second] == [6, 5, 4, 3]

    def test_history_of_unknown_key_raises(self, cfg: Tenant) -> None:
        with pytest.raises(NotFound):
            cfg.history("ns", "nope")

    def test_diff_is_a_json_patch(self, cfg: Tenant) -> None:
        cfg.set("ns", "k", {"a": 1, "b": 2})
        cfg.set("ns", "k", {"a": 1, "b": 3, "c": 4})
        ops = cfg.diff("ns", "k", 1, 2)
        assert sorted((op["op"], op["path"]) for op in ops) == [("add", "/c"), ("replace", "/b")]
        import jsonpatch

        assert jsonpatch.apply_patch({"a": 1, "b": 2}, ops) == {"a": 1, "b": 3, "c": 4}

    def test_diff_of_missing_version_raises(self, cfg: Tenant) -> None:
        cfg.set("ns", "k", 1)
        with pytest.raises(NotFound):
            cfg.diff("ns", "k", 1, 5)

    def test_rollback_writes_a_new_version(self, cfg: Tenant) -> None:
        cfg.set("ns", "k", {"v": 1})
        cfg.set("ns", "k", {"v": 2})
        entry = cfg.rollback("ns", "k", to_version=1, reason="bad change")
        assert (entry.version, entry.value) == (3, {"v": 1})
        top = cfg.history("ns", "k")[0]
        assert (top.op, top.rollback_of, top.reason) == ("rollback", 1, "bad change")
        assert cfg.get("ns", "k", version=2).value == {"v": 2}  # history intact

    def test_rollback_brings_back_a_deleted_key(self, cfg: Tenant) -> None:
        cfg.set("ns", "k", 1)
        cfg.delete("ns", "k")
        assert cfg.rollback("ns", "k", to_version=1).value == 1

    def test_rollback_to_missing_or_deleted_version_is_refused(self, cfg: Tenant) -> None:
        cfg.set("ns", "k", 1)
        cfg.delete("ns", "k")
        cfg.set("ns", "k", 3)
        with pytest.raises(NotFound):
            cfg.rollback("ns", "k", to_version=9)
        with pytest.raises(InvalidRequest, match="deletion"):
            cfg.rollback("ns", "k", to_version=2)
        assert cfg.get("ns", "k").version == 3


class TestListAndNamespaces:
    def test_list_is_sorted_and_per_env(self, cfg: Tenant) -> None:
        for key in ("b", "a", "c"):
            cfg.set("ns", key, key)
        cfg.set("ns", "z", 1, env="production")
        assert [e.key for e in cfg.list("ns")] == ["a", "b", "c"]
        assert [e.key for e in cfg.list("ns", env="production")] == ["z"]

    def test_list_skips_deleted_keys_and_filters_prefix(self, cfg: Tenant) -> None:
        for key in ("app.a", "app.b", "db"):
            cfg.set("ns", key, 1)
        cfg.delete("ns", "app.b")
        assert [e.key for e in cfg.list("ns")] == ["app.a", "db"]
        assert [e.key for e in cfg.list("ns", prefix="app.")] == ["app.a"]

    def test_namespaces_lists_those_with_live_keys(self, cfg: Tenant) -> None:
        cfg.set("models", "a", 1)
        cfg.set("routing", "b", 1, env="staging")
        cfg.set("gone", "c", 1)
        cfg.delete("gone", "c")
        assert cfg.namespaces() == ["models", "routing"]
        assert cfg.namespace_counts() == {"models": 1, "routing": 1}


class TestLayering:
    def test_resolve_merges_env_over_base(self, cfg: Tenant) -> None:
        cfg.set("m", "k", {"tokens": 8192, "retry": {"tries": 3, "backoff": 0.5}, "beta": True})
        cfg.set("m", "k", {"retry": {"tries": 5}, "beta": None, "region": "eu"},
                env="production")
        resolved = cfg.resolve("m", "k", env="production")
        assert resolved.value == {"tokens": 8192, "retry": {"tries": 5, "backoff": 0.5},
                                  "region": "eu"}
        assert resolved.sources == {"tokens": "base", "retry": "production",
                                    "region": "production"}
        assert resolved.versions == {"base": 1, "production": 1}

    def test_env_without_overlay_resolves_to_base(self, cfg: Tenant) -> None:
        cfg.set("m", "k", {"a": 1})
        resolved = cfg.resolve("m", "k", env="staging")
        assert resolved.value == {"a": 1} and resolved.sources == {"a": "base"}

    def test_overlay_without_base_drops_its_nulls(self, cfg: Tenant) -> None:
        cfg.set("m", "k", {"a": 1, "b": None}, env="staging")
        assert cfg.resolve("m", "k", env="staging").value == {"a": 1}

    def test_scalar_overlay_replaces_everything(self, cfg: Tenant) -> None:
        cfg.set("m", "k", {"a": 1})
        cfg.set("m", "k", [1, 2], env="staging")
        resolved = cfg.resolve("m", "k", env="staging")
        assert resolved.value == [1, 2] and resolved.sources == {"": "staging"}

    def test_layers_are_independent_keys(self, cfg: Tenant) -> None:
        cfg.set("m", "k", 1)
        cfg.set("m", "k", 2, env="staging")
        assert cfg.get("m", "k").value == 1
        assert cfg.get("m", "k", env="staging").version == 1

    def test_resolve_with_no_layer_raises(self, cfg: Tenant) -> None:
        with pytest.raises(NotFound):
            cfg.resolve("m", "k", env="production")


class TestTransactions:
    def test_transaction_commits_as_one_revision(self, cfg: Tenant) -> None:
        cfg.set("routing", "old", 1)
        before = cfg.revision
        with cfg.transaction(reason="tune routing", author="ops") as tx:
            tx.set("routing", "tiers", {"a": 1})
            tx.set("models", "opus", {"b": 2})
            tx.delete("routing", "old")
        assert tx.revision == before + 1 == cfg.revision
        assert {c.revision for c in tx.changes} == {before + 1}
        assert {c.reason for c in tx.changes} == {"tune routing"}
        assert cfg.get("models", "opus").value == {"b": 2}
        with pytest.raises(NotFound):
            cfg.get("routing", "old")

    def test_failing_op_aborts_the_whole_batch(self, cfg: Tenant) -> None:
        cfg.set("ns", "a", 1)
        before = cfg.revision
        with pytest.raises(VersionConflict), cfg.transaction() as tx:
            tx.set("ns", "new", 1)
            tx.set("ns", "a", 2, expected_version=5)
        with pytest.raises(NotFound):
            cfg.get("ns", "new")
        assert cfg.get("ns", "a").value == 1 and cfg.revision == before

    def test_exception_in_block_writes_nothing(self, cfg: Tenant) -> None:
        with pytest.raises(RuntimeError), cfg.transaction() as tx:
            tx.set("ns", "a", 1)
            raise RuntimeError("changed my mind")
        with pytest.raises(NotFound):
            cfg.get("ns", "a")

    def test_invalid_op_is_refused_before_anything_is_written(self, cfg: Tenant) -> None:
        with pytest.raises(InvalidValue), cfg.transaction() as tx:
            tx.set("ns", "a", 1)
            tx.set("ns", "b", float("nan"))
        assert cfg.namespaces() == []

    def test_same_key_twice_is_refused(self, cfg: Tenant) -> None:
        with cfg.transaction() as tx:
            tx.set("ns", "a", 1)
            with pytest.raises(InvalidRequest, match="twice"):
                tx.patch("ns", "a", {"b": 1})
        assert cfg.get("ns", "a").value == 1

    def test_patch_and_rollback_inside_transactions(self, cfg: Tenant) -> None:
        cfg.set("ns", "a", {"x": 1})
        cfg.set("ns", "b", {"y": 1})
        cfg.set("ns", "b", {"y": 2})
        with cfg.transaction() as tx:
            tx.patch("ns", "a", {"z": 1})
            tx.rollback("ns", "b", to_version=1)
        assert cfg.get("ns", "a").value == {"x": 1, "z": 1}
        assert cfg.get("ns", "b").value == {"y": 1}

    def test_dry_run_validates_and_commits_nothing(self, cfg: Tenant) -> None:
        cfg.set("ns", "a", 1)
        before = cfg.revision
        preview = cfg.set("ns", "a", 2, dry_run=True)
        assert preview.version == 2 and preview.value == 2
        assert cfg.get("ns", "a").value == 1 and cfg.revision == before
        with cfg.transaction(dry_run=True) as tx:
            tx.set("ns", "b", 1)
        assert [c.key for c in tx.changes] == ["b"]
        with pytest.raises(NotFound):
            cfg.get("ns", "b")


class TestChanges:
    def test_changes_are_in_revision_order_and_resume(self, cfg: Tenant) -> None:
        cfg.set("ns", "a", 1)
        with cfg.transaction() as tx:
            tx.set("ns", "b", 1)
            tx.set("ns", "c", 1)
        cfg.delete("ns", "a")
        feed = cfg.changes(since=0)
        assert [(c.revision, c.key, c.op) for c in feed] == [
            (1, "a", "put"), (2, "b", "put"), (2, "c", "put"), (3, "a", "delete")]
        assert [c.key for c in cfg.changes(since=2)] == ["a"]
        assert cfg.changes(since=3) == []

    def test_a_page_never_splits_a_transaction(self, cfg: Tenant) -> None:
        with cfg.transaction() as tx:
            for i in range(5):
                tx.set("ns", f"k{i}", i)
        cfg.set("ns", "after", 1)
        page = cfg.changes(since=0, limit=2)
        assert len(page) == 5 and {c.revision for c in page} == {1}


class TestSnapshots:
    def test_restore_snapshot_recreates_state_as_a_new_revision(self, cfg: Tenant) -> None:
        cfg.set("ns", "kept", 1)
        cfg.set("ns", "changed", "old")
        cfg.set("ns", "removed", 1)
        cfg.delete("ns", "removed")
        snap = cfg.snapshot("before-migration")
        assert snap.revision == cfg.revision
        cfg.set("ns", "changed", "new")
        cfg.set("ns", "added", 1)
        cfg.set("ns", "removed", 2)
        changes = cfg.restore(snapshot="before-migration")
        assert {c.revision for c in changes} == {cfg.revision}
        assert sorted((c.key, c.op, c.deleted) for c in changes) == [
            ("added", "restore", True), ("changed", "restore", False),
            ("removed", "restore", True)]
        assert cfg.get("ns", "changed").value == "old"
        assert cfg.get("ns", "kept").version == 1
        assert [e.key for e in cfg.list("ns")] == ["changed", "kept"]

    def test_restore_revision_of_one_namespace_only(self, cfg: Tenant) -> None:
        cfg.set("a", "k", 1)
        cfg.set("b", "k", 1)
        revision = cfg.revision
        cfg.set("a", "k", 2)
        cfg.set("b", "k", 2)
        cfg.restore(revision=revision, namespace="a")
        assert (cfg.get("a", "k").value, cfg.get("b", "k").value) == (1, 2)

    def test_restore_of_identical_state_writes_nothing(self, cfg: Tenant) -> None:
        cfg.set("a", "k", 1)
        revision = cfg.revision
        assert cfg.restore(revision=revision) == []
        assert cfg.revision == revision

    def test_snapshot_labels_are_unique_and_listed(self, cfg: Tenant) -> None:
        cfg.snapshot("one")
        with pytest.raises(AlreadyExists):
            cfg.snapshot("one")
        assert [s.label for s in cfg.snapshots()] == ["one"]

    def test_restore_refuses_unknown_snapshot_and_future_revision(self, cfg: Tenant) -> None:
        with pytest.raises(NotFound):
            cfg.restore(snapshot="nope")
        with pytest.raises(InvalidRequest, match="future"):
            cfg.restore(revision=99)
        with pytest.raises(InvalidRequest):
            cfg.restore()


class TestTenants:
    def test_default_tenant_always_exists(self, hub: Hub) -> None:
        assert "default" in [t.id for t in hub.tenants()]
        with pytest.raises(InvalidRequest):
            hub.delete_tenant("default")

    def test_tenants_are_isolated(self, hub: Hub) -> None:
        hub.create_tenant("a")
        hub.create_tenant("b")
        hub.tenant("a").set("ns", "k", "secret-of-a")
        with pytest.raises(NotFound):
            hub.tenant("b").get("ns", "k")
        assert hub.tenant("b").namespaces() == []
        assert hub.tenant("b").changes() == []
        assert hub.tenant("a").revision == 1 and hub.tenant("b").revision == 0

    def test_create_existing_tenant_raises(self, hub: Hub) -> None:
        hub.create_tenant("a")
        with pytest.raises(TenantExists):
            hub.create_tenant("a")

    def test_unknown_tenant_raises_not_found(self, hub: Hub) -> None:
        with pytest.raises(NotFound, match="ghost"):
            hub.tenant("ghost").get("ns", "k")
        with pytest.raises(NotFound):
            hub.tenant("ghost").set("ns", "k", 1)

    def test_create_from_template_with_overrides(self, hub: Hub) -> None:
        hub.create_tenant("enterprise")
        template = hub.tenant("enterprise")
        template.set("models", "opus", {"max_tokens": 8192, "tier": "gold"})
        template.set("models", "opus", {"max_tokens": 100000}, env="production")
        info = hub.create_tenant("acme", template="enterprise",
                                 overrides={"models": {"opus": {"tier": "platinum"},
                                                       "haiku": {"max_tokens": 1024}}})
        assert info.revision == 1
        acme = hub.tenant("acme")
        assert acme.get("models", "opus").value == {"max_tokens": 8192, "tier": "platinum"}
        assert acme.get("models", "opus", env="production").value == {"max_tokens": 100000}
        assert acme.get("models", "haiku").version == 1
        assert template.get("models", "opus").value["tier"] == "gold"

    def test_clone_copies_current_values(self, hub: Hub) -> None:
        hub.create_tenant("acme")
        hub.tenant("acme").set("ns", "k", 1)
        hub.tenant("acme").set("ns", "k", 2)
        hub.clone_tenant("acme", "acme-staging")
        clone = hub.tenant("acme-staging")
        assert clone.get("ns", "k").value == 2
        clone.set("ns", "k", 3)
        assert hub.tenant("acme").get("ns", "k").value == 2

    def test_soft_delete_hides_and_restore_brings_back(self, hub: Hub) -> None:
        hub.create_tenant("old")
        hub.tenant("old").set("ns", "k", 1)
        hub.delete_tenant("old")
        assert "old" not in [t.id for t in hub.tenants()]
        assert [t.id for t in hub.tenants(include_deleted=True) if t.deleted] == ["old"]
        with pytest.raises(NotFound, match="deleted"):
            hub.tenant("old").get("ns", "k")
        with pytest.raises(TenantExists):
            hub.create_tenant("old")
        hub.restore_tenant("old")
        assert hub.tenant("old").get("ns", "k").value == 1

    def test_hard_delete_purges_history(self, hub: Hub) -> None:
        hub.create_tenant("old")
        hub.tenant("old").set("ns", "k", 1)
        hub.delete_tenant("old", hard=True)
        hub.create_tenant("old")
        assert hub.tenant("old").changes() == []
        with pytest.raises(NotFound):
            hub.tenant("old").history("ns", "k")


class TestExportImport:
    def _fill(self, cfg: Tenant) -> None:
        cfg.set("models", "opus", {"v": 1}, author="a", reason="r", metadata={"git": "abc"})
        cfg.set("models", "opus", {"v": 2})
        cfg.set("models", "opus", {"v": 3}, env="production")
        cfg.set("routing", "gone", 1)
        cfg.delete("routing", "gone")
        cfg.snapshot("s1")

    def test_export_is_json_and_versioned(self, hub: Hub, cfg: Tenant) -> None:
        self._fill(cfg)
        doc = hub.export("acme", include_history=True)
        assert doc["format"] == "confhub-export" and doc["format_version"] == 1
        assert json.loads(json.dumps(doc)) == doc
        assert len(doc["entries"]) == 2 and len(doc["history"]) == 5

    def test_round_trip_with_history_preserves_versions(self, hub: Hub, cfg: Tenant) -> None:
        self._fill(cfg)
        doc = hub.export("acme", include_history=True)
        counts = hub.import_("copy", doc)
        assert counts == {"created": 3, "updated": 0, "skipped": 0, "versions": 5,
                          "snapshots": 1, "snapshots_skipped": 0}
        copy = hub.tenant("copy")
        assert copy.get("models", "opus").version == 2
        assert copy.get("models", "opus", version=1).value == {"v": 1}
        original, restored = cfg.history("models", "opus"), copy.history("models", "opus")
        assert [(v.version, v.op, v.value, v.author, v.reason, v.metadata, v.created_at)
                for v in original] == [
               (v.version, v.op, v.value, v.author, v.reason, v.metadata, v.created_at)
               for v in restored]
        assert copy.get("models", "opus", env="production").value == {"v": 3}
        assert [v.op for v in copy.history("routing", "gone")] == ["delete", "put"]
        # each version keeps its revision: the copy's feed is the source's
        assert [(c.revision, c.key, c.version) for c in copy.changes()] == [
            (c.revision, c.key, c.version) for c in cfg.changes()]
        assert hub.tenant_info("copy").revision == hub.tenant_info("acme").revision

    @staticmethod
    def _state(cfg: Tenant) -> dict[tuple[str, str, str], object]:
        return {(env, ns, e.key): e.value for env in ("base", "production")
                for ns in ("models", "routing") for e in cfg.list(ns, env=env)}

    def test_snapshots_survive_export_and_import(self, hub: Hub, cfg: Tenant) -> None:
        self._fill(cfg)  # s1 at the end
        cfg.set("routing", "gone", 2)
        cfg.set("models", "opus", {"v": 4})
        cfg.snapshot("s2")
        cfg.set("models", "opus", {"v": 5})
        doc = json.loads(json.dumps(hub.export("acme", include_history=True)))
        counts = hub.import_("copy", doc)
        assert (counts["snapshots"], counts["snapshots_skipped"]) == (2, 0)
        copy = hub.tenant("copy")
        assert [(s.label, s.revision) for s in copy.snapshots()] == [
            (s.label, s.revision) for s in cfg.snapshots()]
        for label in ("s1", "s2"):
            cfg.restore(snapshot=label)
            copy.restore(snapshot=label)
            assert self._state(copy) == self._state(cfg)
        assert self._state(copy)[("base", "models", "opus")] == {"v": 4}

    def test_sparse_source_revisions_are_renumbered_with_their_snapshots(
            self, hub: Hub, cfg: Tenant) -> None:
        cfg.set("models", "a", 1)
        cfg.snapshot("one")
        cfg.set("models", "a", 2)
        cfg.set("models", "b", 3)
        cfg.snapshot("two")
        doc = hub.export("acme", include_history=True)
        # as an export leaving out rollout records looks: revisions 1, 5, 9
        shift = {1: 1, 2: 5, 3: 9}
        for item in doc["history"]:
            item["revision"] = shift[item["revision"]]
        for snap in doc["snapshots"]:
            snap["revision"] = shift[snap["revision"]] + 1  # past the last kept revision
        hub.import_("copy", doc)
        copy = hub.tenant("copy")
        assert hub.tenant_info("copy").revision == 3
        assert [(s.label, s.revision) for s in copy.snapshots()] == [("one", 1), ("two", 3)]
        copy.restore(snapshot="one")
        assert [(e.key, e.value) for e in copy.list("models")] == [("a", 1)]

    def test_import_into_a_written_tenant_skips_snapshots(self, hub: Hub, cfg: Tenant) -> None:
        self._fill(cfg)
        hub.create_tenant("target")
        target = hub.tenant("target")
        target.set("other", "k", 1)
        counts = hub.import_("target", hub.export("acme", include_history=True))
        assert (counts["snapshots"], counts["snapshots_skipped"]) == (0, 1)
        assert target.snapshots() == []
        assert {c.revision for c in target.changes(since=1)} == {2}

    def test_taken_snapshot_label_refuses_the_import(self, hub: Hub, cfg: Tenant) -> None:
        self._fill(cfg)
        hub.create_tenant("target")
        target = hub.tenant("target")
        target.snapshot("s1")  # on the empty tenant, revision 0
        with pytest.raises(AlreadyExists, match="s1"):
            hub.import_("target", hub.export("acme", include_history=True))
        assert hub.tenant_info("target").revision == 0
        assert target.list("models") == []

    def test_import_without_history_starts_at_version_1(self, hub: Hub, cfg: Tenant) -> None:
        self._fill(cfg)
        hub.import_("copy", hub.export("acme"), preserve_versions=False)
        assert hub.tenant("copy").get("models", "opus").version == 1

    def test_existing_keys_are_skipped_unless_overwrite(self, hub: Hub, cfg: Tenant) -> None:
        self._fill(cfg)
        doc = hub.export("acme")
        hub.create_tenant("target")
        target = hub.tenant("target")
        target.set("models", "opus", {"mine": True})
        counts = hub.import_("target", doc)
        assert counts["skipped"] == 1 and counts["created"] == 1
        assert target.get("models", "opus").value == {"mine": True}
        counts = hub.import_("target", doc, overwrite_existing=True)
        assert counts["updated"] == 2
        entry = target.get("models", "opus")
        assert (entry.value, entry.version) == ({"v": 2}, 2)
        assert target.history("models", "opus")[0].op == "import"

    @pytest.mark.parametrize("mutate", [
        lambda d: d.update(format="other"),
        lambda d: d.update(format_version=99),
        lambda d: d["entries"].append({"namespace": "bad ns", "key": "k", "value": 1}),
        lambda d: d["entries"].append({"namespace": "ns", "key": "k"}),
        lambda d: d["history"].append({**d["history"][0], "version": 7}),
        lambda d: d.update(entries="nope"),
        lambda d: d.update(snapshots="nope"),
        lambda d: d["snapshots"].append({"label": "bad label", "revision": 1,
                                         "created_at": "2026-01-01T00:00:00+00:00"}),
        lambda d: d["snapshots"].append({**d["snapshots"][0]}),
        lambda d: d["snapshots"][0].update(revision=-1),
        lambda d: d["history"][0].update(revision="1"),
        lambda d: d["history"][0].update(revision=99),  # opus v1 after v2
    ])
    def test_bad_documents_change_nothing(self, hub: Hub, cfg: Tenant,
                                          mutate: Callable[[dict], None]) -> None:
        self._fill(cfg)
        doc = hub.export("acme", include_history=True)
        mutate(doc)
        with pytest.raises(InvalidRequest, match="export document"):
            hub.import_("copy", doc)
        assert "copy" not in [t.id for t in hub.tenants(include_deleted=True)]


class TestHealthAndStats:
    def test_health_reports_backend_and_revision(self, hub: Hub) -> None:
        hub.tenant().set("ns", "k", 1)
        health = hub.health()
        assert health["ok"] is True and health["revision"] == 1
        assert health["backend"] in ("sqlite", "postgres")

    def test_stats_count_live_configs(self, hub: Hub) -> None:
        cfg = hub.tenant()
        cfg.set("models", "a", 1)
        cfg.set("models", "b", 1)
        cfg.set("routing", "c", 1)
        cfg.delete("routing", "c")
        stats = hub.stats()
        assert stats["total_configs"] == 2 and stats["total_versions"] == 4
        assert stats["configs_per_namespace"] == {"models": 2}
        assert stats["total_tenants"] == 1 and stats["storage_size_mb"] > 0


class TestPersistence:
    def test_reopened_store_has_everything(self, open_hub: Callable[[], Hub]) -> None:
        first = open_hub()
        first.create_tenant("acme")
        first.tenant("acme").set("ns", "k", {"v": 1}, env="staging")
        first.close()
        second = open_hub()
        assert second.tenant("acme").get("ns", "k", env="staging").value == {"v": 1}
        assert second.tenant("acme").revision == 1

    def test_second_hub_sees_writes_of_the_first(self, open_hub: Callable[[], Hub]) -> None:
        writer, reader = open_hub(), open_hub()
        reader.tenant().namespaces()  # load the reader's cache first
        writer.tenant().set("ns", "k", 1)
        reader.sync()
        assert reader.tenant().get("ns", "k").value == 1


def test_gone_error_carries_compacted_revision() -> None:
    assert Gone("x", compacted_revision=5).compacted_revision == 5


class TestSchemas:
    """Schema versions are stored like key versions: per scope, immutable, newest first."""

    def test_schema_round_trips_byte_for_byte(self, cfg: Tenant) -> None:
        schema = {"type": "object", "properties": {"z": {"type": "integer"}, "a": {}}}
        rules = [{"expr": "self.z > 0", "message": "positive", "severity": "warning"}]
        written = cfg.set_schema("ns", schema, rules, key_pattern="k-*", author="ops",
                                 reason="first")
        read = cfg.get_schema("ns")
        assert read == written
        assert list(read.schema["properties"]) == ["z", "a"]
        assert (read.version, read.scope, read.key_pattern, read.author, read.reason) == (
            1, "acme", "k-*", "ops", "first")
        assert read.rules[0]["expr"] == "self.z > 0"

    def test_history_is_newest_first_and_old_versions_stay(self, cfg: Tenant) -> None:
        for n in range(3):
            cfg.set_schema("ns", {"maxProperties": n + 1})
        assert [s.version for s in cfg.schema_history("ns")] == [3, 2, 1]
        assert cfg.get_schema("ns", version=1).schema == {"maxProperties": 1}
        assert [s.version for s in cfg.schema_history("ns", limit=1)] == [3]

    def test_schemas_survive_reopening(self, open_hub: Callable[[], Hub]) -> None:
        first = open_hub()
        first.create_tenant("acme")
        first.tenant("acme").set_schema("ns", {"type": "integer"})
        first.close()
        again = open_hub().tenant("acme")
        assert again.get_schema("ns").schema == {"type": "integer"}
        with pytest.raises(confhub.ValidationFailed):
            again.set("ns", "k", "text")

    def test_schemas_are_per_tenant(self, hub: Hub, cfg: Tenant) -> None:
        cfg.set_schema("ns", {"type": "integer"})
        hub.create_tenant("other")
        with pytest.raises(NotFound):
            hub.tenant("other").get_schema("ns")
        hub.tenant("other").set("ns", "k", "text")

    def test_hard_delete_removes_the_tenants_schemas(self, hub: Hub, cfg: Tenant) -> None:
        cfg.set_schema("ns", {"type": "integer"})
        hub.delete_tenant("acme", hard=True)
        hub.create_tenant("acme")
        with pytest.raises(NotFound):
            hub.tenant("acme").schema_history("ns")

    def test_a_schema_write_on_a_missing_tenant_is_not_found(self, hub: Hub) -> None:
        with pytest.raises(NotFound):
            hub.tenant("ghost").set_schema("ns", {})
