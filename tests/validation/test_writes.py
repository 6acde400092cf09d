"""Every write path validates, and a refused write changes nothing — on every backend.

``cfg``/``hub`` run each test on SQLite, PostgreSQL and a server through the remote client.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, Field

import confhub
from confhub import InvalidRequest, NotFound, ValidationFailed

from .conftest import GOOD, PARAMS_RULES, PARAMS_SCHEMA

Tenant = confhub.Tenant
Hub = confhub.Hub
BAD = {**GOOD, "max_membrane_depth": 65}  # out of range (and 65*32 > 256)


def state(cfg: Tenant) -> tuple[int, list[Any]]:
    """What a refused write must leave exactly as it was."""
    return cfg.revision, [(e.env, e.namespace, e.key, e.version, e.value)
                          for env in ("base", "production") for ns in cfg.namespaces()
                          for e in cfg.list(ns, env=env)]


@pytest.fixture
def strict(cfg: Tenant) -> Tenant:
    """``acme`` with the issue's schema on ``params`` and one valid key, ``params/agent``."""
    cfg.set_schema("params", PARAMS_SCHEMA, PARAMS_RULES)
    cfg.set("params", "agent", GOOD)
    return cfg


def refused(cfg: Tenant, write: Any, *paths: str) -> ValidationFailed:
    before = state(cfg)
    with pytest.raises(ValidationFailed) as caught:
        write()
    assert state(cfg) == before
    if paths:
        assert {e.path for e in caught.value.report.errors} == set(paths)
    return caught.value


class TestEveryWritePathRefuses:
    def test_set(self, strict: Tenant) -> None:
        error = refused(strict, lambda: strict.set("params", "agent", BAD),
                        "/max_membrane_depth", "/esn_reservoir_size")
        assert error.http_status == 422 and error.exit_code == 5
        assert "params/agent" in error.message and "65" in error.message
        assert {e.key for e in error.report.errors} == {"agent"}

    def test_set_of_a_new_key(self, strict: Tenant) -> None:
        refused(strict, lambda: strict.set("params", "other", {"bogus": 1}), "/bogus")
        with pytest.raises(NotFound):
            strict.get("params", "other")

    def test_merge_patch(self, strict: Tenant) -> None:
        refused(strict, lambda: strict.patch("params", "agent", {"esn_reservoir_size": 64}),
                "/esn_reservoir_size")

    def test_json_patch(self, strict: Tenant) -> None:
        ops = [{"op": "remove", "path": "/cache_ttl_seconds"}]
        refused(strict, lambda: strict.patch("params", "agent", ops, json_patch=True),
                "/cache_ttl_seconds")

    def test_transaction_refuses_the_whole_batch(self, strict: Tenant) -> None:
        def write() -> None:
            with strict.transaction(reason="two keys") as tx:
                tx.set("params", "fine", GOOD)
                tx.set("params", "broken", {"enable_caching": True})

        error = refused(strict, write, "/cache_ttl_seconds")
        assert {e.key for e in error.report.errors} == {"broken"}

    def test_rollback_to_a_value_from_before_the_schema(self, cfg: Tenant) -> None:
        cfg.set("params", "agent", BAD)  # no schema yet
        cfg.set("params", "agent", GOOD)
        cfg.set_schema("params", PARAMS_SCHEMA, PARAMS_RULES)
        refused(cfg, lambda: cfg.rollback("params", "agent", to_version=1))

    def test_restore_of_a_snapshot_and_of_a_revision(self, cfg: Tenant) -> None:
        cfg.set("params", "agent", BAD)
        cfg.snapshot("before")
        old = cfg.revision
        cfg.set("params", "agent", GOOD)
        cfg.set_schema("params", PARAMS_SCHEMA, PARAMS_RULES)
        refused(cfg, lambda: cfg.restore(snapshot="before"))
        refused(cfg, lambda: cfg.restore(revision=old))

    def test_import(self, hub: Hub, strict: Tenant) -> None:
        hub.create_tenant("source")
        hub.tenant("source").set("params", "agent", BAD)
        data = hub.export("source", include_history=True)
        refused(strict, lambda: hub.import_("acme", data, overwrite_existing=True))

    def test_create_tenant_with_overrides(self, hub: Hub, cfg: Tenant) -> None:
        cfg.set_schema("params", PARAMS_SCHEMA, PARAMS_RULES, all_tenants=True)
        with pytest.raises(ValidationFailed):
            hub.create_tenant("fresh", overrides={"params": {"agent": BAD}})
        assert "fresh" not in [t.id for t in hub.tenants(include_deleted=True)]
        hub.create_tenant("fresh", overrides={"params": {"agent": GOOD}})

    def test_clone_into_the_scope_of_a_stricter_schema(self, hub: Hub, cfg: Tenant) -> None:
        cfg.set_schema("params", {"type": "object"})  # acme's own, lenient
        cfg.set("params", "agent", BAD)
        cfg.set_schema("params", PARAMS_SCHEMA, PARAMS_RULES, all_tenants=True)
        with pytest.raises(ValidationFailed):
            hub.clone_tenant("acme", "copy")
        assert "copy" not in [t.id for t in hub.tenants(include_deleted=True)]


class TestEnvLayers:
    def test_an_overlay_is_checked_resolved(self, strict: Tenant) -> None:
        strict.set("params", "agent", {"max_membrane_depth": 8}, env="production")  # 8*32=256
        refused(strict, lambda: strict.set("params", "agent", {"max_membrane_depth": 9},
                                           env="production"), "/esn_reservoir_size")

    def test_a_base_write_is_checked_against_every_overlay(self, strict: Tenant) -> None:
        strict.set("params", "agent", {"max_membrane_depth": 8}, env="production")
        error = refused(strict, lambda: strict.patch("params", "agent",
                                                     {"esn_reservoir_size": 200}),
                        "/esn_reservoir_size")
        assert {e.env for e in error.report.errors} == {"production"}

    def test_deleting_base_checks_what_the_overlay_resolves_to(self, cfg: Tenant) -> None:
        cfg.set_schema("params", {"type": "object", "required": ["max_membrane_depth"]})
        cfg.set("params", "agent", {"max_membrane_depth": 2})
        cfg.set("params", "agent", {"enable_caching": False}, env="production")
        refused(cfg, lambda: cfg.delete("params", "agent"))


class TestWarningsAndDryRuns:
    def test_warnings_come_back_with_the_write(self, strict: Tenant) -> None:
        entry = strict.patch("params", "agent", {"bseries_max_order": 20})
        assert entry.version == 2
        assert [(w.path, w.rule, w.severity) for w in entry.warnings] == [
            ("/bseries_max_order", "high-order-is-slow", "warning")]
        assert strict.get("params", "agent").warnings == ()  # reads carry none

    def test_a_transaction_collects_warnings(self, strict: Tenant) -> None:
        with strict.transaction() as tx:
            tx.set("params", "slow", {**GOOD, "bseries_max_order": 30})
        assert [w.key for w in tx.warnings] == ["slow"]

    def test_a_dry_run_validates_fully_and_writes_nothing(self, strict: Tenant) -> None:
        refused(strict, lambda: strict.set("params", "agent", BAD, dry_run=True))
        before = state(strict)
        entry = strict.set("params", "agent", {**GOOD, "bseries_max_order": 20}, dry_run=True)
        assert entry.version == 2 and len(entry.warnings) == 1
        assert state(strict) == before

    def test_dry_runs_of_restore_import_and_txn_validate_too(self, hub: Hub,
                                                               cfg: Tenant) -> None:
        cfg.set("params", "agent", BAD)
        old = cfg.revision
        cfg.set("params", "agent", GOOD)
        cfg.set_schema("params", PARAMS_SCHEMA, PARAMS_RULES)
        refused(cfg, lambda: cfg.restore(revision=old, dry_run=True))
        data = {**hub.export("acme"), "entries": [
            {**item, "value": BAD} for item in hub.export("acme")["entries"]]}
        refused(cfg, lambda: hub.import_("acme", data, overwrite_existing=True, dry_run=True))
        with pytest.raises(ValidationFailed), cfg.transaction(dry_run=True) as tx:
            tx.patch("params", "agent", {"max_membrane_depth": 65})

    def test_validate_writes_nothing_and_reports(self, strict: Tenant) -> None:
        before = state(strict)
        report = strict.validate("params", "agent", BAD)
        assert not report.valid and state(strict) == before
        assert strict.validate("params", "agent", GOOD).valid
        assert strict.validate("elsewhere", "agent", BAD).valid  # no schema there

    def test_validate_resolves_an_env_value_over_base(self, strict: Tenant) -> None:
        assert strict.validate("params", "agent", {"max_membrane_depth": 8}, env="staging").valid
        report = strict.validate("params", "agent", {"max_membrane_depth": 9}, env="staging")
        assert [(e.path, e.env) for e in report.errors] == [("/esn_reservoir_size", "staging")]


class TestSchemaEvolution:
    def test_a_change_existing_values_break_is_refused_listing_the_keys(
            self, strict: Tenant) -> None:
        strict.set("params", "tiny", {"max_membrane_depth": 1, "esn_reservoir_size": 64})
        tighter = {**PARAMS_SCHEMA, "properties": {**PARAMS_SCHEMA["properties"],
                   "esn_reservoir_size": {"type": "integer", "minimum": 128}}}
        with pytest.raises(ValidationFailed) as caught:
            strict.set_schema("params", tighter, PARAMS_RULES)
        assert caught.value.details["keys"] == ["params/tiny"]
        assert "params/tiny" in caught.value.message
        assert strict.get_schema("params").version == 1

    def test_schemas_are_versioned_with_history_and_rollback(self, strict: Tenant) -> None:
        strict.set_schema("params", PARAMS_SCHEMA, [], reason="drop rules")
        assert strict.get_schema("params").version == 2
        assert [s.version for s in strict.schema_history("params")] == [2, 1]
        back = strict.rollback_schema("params", 1)
        assert (back.version, back.rollback_of, len(back.rules)) == (3, 1, 3)
        assert strict.get_schema("params", version=2).rules == ()

    def test_delete_removes_the_schema_and_keeps_history(self, strict: Tenant) -> None:
        strict.delete_schema("params")
        with pytest.raises(NotFound):
            strict.get_schema("params")
        strict.set("params", "agent", BAD)  # nothing governs it any more
        assert strict.schema_history("params")[0].deleted

    def test_a_tenant_schema_wins_over_the_all_tenants_one(self, hub: Hub, cfg: Tenant) -> None:
        cfg.set_schema("params", PARAMS_SCHEMA, PARAMS_RULES, all_tenants=True)
        hub.create_tenant("other")
        other = hub.tenant("other")
        with pytest.raises(ValidationFailed):
            other.set("params", "agent", BAD)
        other.set_schema("params", {"type": "object"})
        assert other.set("params", "agent", BAD).version == 1
        assert other.get_schema("params").scope == "other"
        assert cfg.get_schema("params").all_tenants
        assert [s.namespace for s in cfg.schemas()] == ["params"]

    def test_key_pattern_limits_the_keys_governed(self, cfg: Tenant) -> None:
        cfg.set_schema("models", {"type": "object", "required": ["max_tokens"]},
                       key_pattern="claude-*")
        cfg.set("models", "gpt-4", {"anything": True})
        with pytest.raises(ValidationFailed):
            cfg.set("models", "claude-opus", {"anything": True})

    def test_broken_schemas_and_rules_are_refused(self, cfg: Tenant) -> None:
        with pytest.raises(InvalidRequest, match="JSON Schema"):
            cfg.set_schema("params", {"type": "integr"})
        with pytest.raises(InvalidRequest, match="column") as caught:
            cfg.set_schema("params", {}, [{"expr": "self.a > ", "message": "m"}])
        assert caught.value.details["column"] == 10
        with pytest.raises(NotFound):
            cfg.get_schema("params")

    def test_dry_run_of_a_schema_change_stores_nothing(self, strict: Tenant) -> None:
        schema = strict.set_schema("params", {"type": "object"}, dry_run=True)
        assert schema.version == 2
        assert strict.get_schema("params").version == 1


class TestAnnotationsAndTypes:
    def test_annotations_are_exposed_per_key(self, strict: Tenant) -> None:
        assert strict.schema_annotations("params", "agent") == {
            "secret": ["/api_key"], "restart_required": ["/cache_ttl_seconds"]}
        assert strict.get_schema("params").annotations["secret"] == ["/api_key"]
        assert strict.schema_annotations("other", "x") == {"secret": [],
                                                            "restart_required": []}

    def test_a_pydantic_model_is_a_schema_and_reads_typed(self, cfg: Tenant) -> None:
        class Model(BaseModel):
            name: str
            max_tokens: int = Field(ge=1, le=200_000)
            api_key: str = Field(default="", json_schema_extra={"x-secret": True})

        cfg.set_schema("models", Model)
        with pytest.raises(ValidationFailed):
            cfg.set("models", "opus", {"name": "opus", "max_tokens": 0})
        cfg.set("models", "opus", {"name": "opus", "max_tokens": 8192})
        cfg.set("models", "opus", {"max_tokens": 100}, env="production")
        typed = cfg.get_typed("models", "opus", Model, env="production")
        assert isinstance(typed, Model) and (typed.name, typed.max_tokens) == ("opus", 100)
        assert cfg.schema_annotations("models", "opus")["secret"] == ["/api_key"]

    def test_get_typed_of_a_value_that_does_not_fit(self, cfg: Tenant) -> None:
        class Strict(BaseModel):
            n: int

        cfg.set("free", "k", {"n": "many"})
        with pytest.raises(ValidationFailed, match="does not fit Strict"):
            cfg.get_typed("free", "k", Strict)
