"""flagd's own evaluator test-suite (flagd-testbed, vendored in testbed/) run against confhub.

The testkit flag set is imported as confhub keys (flags plus shared ``$evaluators``) and every
scenario is evaluated through the OpenFeature SDK twice: in process with ``ConfhubProvider``,
and over HTTP with the official OFREP provider against a real ``confhub serve``. So confhub's
evaluation agrees with flagd's on bucketing, sem_ver, string operators, $ref, zero values,
reasons and error codes, on both paths.

One deliberate difference (docs/decisions.md, issue 16): flag metadata also carries the flag's
confhub ``version``, so "metadata is empty" means "nothing but the version".
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from openfeature import api
from openfeature.contrib.provider.ofrep import OFREPProvider
from openfeature.evaluation_context import EvaluationContext
from openfeature.flag_evaluation import FlagEvaluationDetails

import confhub
from confhub.flags import plan_import
from confhub.openfeature import ConfhubProvider

from .gherkin import Scenario, scenarios

GHERKIN = Path(__file__).parent / "testbed" / "gherkin"
# flagd's two older bucketings; flagd-core 2.x's (v3) vectors are in fractional-v3.feature
SKIPPED_TAGS = {"@fractional-v1", "@fractional-v2"}

FEATURES = [*sorted(GHERKIN.glob("*.feature")), Path(__file__).parent / "fractional-v3.feature"]
SCENARIOS = [s for f in FEATURES for s in scenarios(f) if not s.tags & SKIPPED_TAGS]

Evaluate = Callable[[str, str, Any, EvaluationContext], FlagEvaluationDetails[Any]]


def _typed(kind: str, text: str) -> Any:
    if kind == "Boolean":
        return text == "true"
    if kind == "Integer":
        return int(text)
    if kind == "Float":
        return float(text)
    if kind == "Object":
        return json.loads(text)
    return text


def _load(cfg: Any, testkit: dict[str, Any]) -> None:
    plan = plan_import(testkit)
    with cfg.transaction(reason="flagd testkit") as tx:
        for key, value in plan.puts.items():
            tx.set("flags", key, value)


def _client(provider: Any) -> Evaluate:
    domain = f"testbed-{uuid.uuid4().hex[:8]}"
    api.set_provider_and_wait(provider, domain)
    client = api.get_client(domain)

    def evaluate(kind: str, key: str, default: Any, ctx: EvaluationContext
                 ) -> FlagEvaluationDetails[Any]:
        method = getattr(client, f"get_{kind.lower()}_details")
        details: FlagEvaluationDetails[Any] = method(key, default, ctx)
        return details

    return evaluate


@pytest.fixture(scope="module")
def in_process(tmp_path_factory: pytest.TempPathFactory, testkit: dict[str, Any]
               ) -> Iterator[Evaluate]:
    hub = confhub.open(f"sqlite:///{tmp_path_factory.mktemp('testbed') / 'flags.db'}")
    _load(hub.tenant(), testkit)
    provider = ConfhubProvider(hub)
    yield _client(provider)
    provider.shutdown()
    hub.close()


@pytest.fixture(scope="module")
def over_ofrep(server_url: str, testkit: dict[str, Any]) -> Iterator[Evaluate]:
    tenant = "testbed-" + uuid.uuid4().hex[:8]
    with confhub.open(server_url) as hub:
        hub.create_tenant(tenant)
        _load(hub.tenant(tenant), testkit)
    yield _client(OFREPProvider(f"{server_url}/v1/tenants/{tenant}"))


def run(scenario: Scenario, evaluate: Evaluate) -> None:
    flag: tuple[str, str, Any] | None = None
    attributes: dict[str, Any] = {}
    targeting_key: str | None = None
    details: FlagEvaluationDetails[Any] | None = None
    for step, table in scenario.steps:
        if step == "an evaluator":
            continue
        if m := _match(r'a (\w+)-flag with key "(.*)" and a fallback value "(.*)"', step):
            flag = (m[0], m[1], _typed(m[0], m[2]))
        elif m := _match(r'a context containing a key "(.*)", with type "(\w+)" and with value '
                         r'"(.*)"', step):
            attributes[m[0]] = _typed(m[1], m[2])
        elif m := _match(r'a context containing a targeting key with value "(.*)"', step):
            targeting_key = m[0]
        elif m := _match(r'a context containing a nested property with outer key "(.*)" and '
                         r'inner key "(.*)", with value "(.*)"', step):
            attributes.setdefault(m[0], {})[m[1]] = m[2]
        elif step == "the flag was evaluated with details":
            assert flag is not None
            details = evaluate(flag[0], flag[1], flag[2],
                               EvaluationContext(targeting_key, attributes))
        elif m := _match(r'the resolved details value should be "(.*)"', step):
            assert details is not None and flag is not None
            assert details.value == _typed(flag[0], m[0]), details
        elif m := _match(r'the reason should be "(.*)"', step):
            assert details is not None and details.reason == m[0], details
        elif m := _match(r'the error-code should be "(.*)"', step):
            assert details is not None and details.error_code == m[0], details
        elif step == "the resolved metadata should contain":
            assert details is not None
            for key, kind, value in table[1:]:
                assert details.flag_metadata[key] == _typed(kind, value), details
        elif step == "the resolved metadata is empty":
            assert details is not None
            assert set(details.flag_metadata) <= {"version"}, details
        else:
            raise AssertionError(f"unknown step {step!r}")


def _match(pattern: str, step: str) -> tuple[str, ...] | None:
    import re

    found = re.fullmatch(pattern, step)
    return found.groups() if found else None


def test_the_suite_is_all_there() -> None:
    """Every feature file yields scenarios, and only the legacy ones are left out."""
    assert len({s.id.split(":")[0] for s in SCENARIOS}) == 12
    assert len(SCENARIOS) > 100


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.id for s in SCENARIOS])
def test_in_process_agrees_with_flagd(scenario: Scenario, in_process: Evaluate) -> None:
    run(scenario, in_process)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.id for s in SCENARIOS])
def test_ofrep_agrees_with_flagd(scenario: Scenario, over_ofrep: Evaluate) -> None:
    run(scenario, over_ofrep)
