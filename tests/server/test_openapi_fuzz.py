"""Schemathesis over /openapi.json with every check on: no 5xx, answers as documented, and
every request the document calls valid is accepted (bounded to stay fast).

Runs against its own server (with a master key, so secret writes are possible) so that
generated deletes and imports never touch the data of the other route tests. Schemathesis's
pytest plugin does not run on pytest 9 yet, so each operation is driven through its
Hypothesis strategy.

``positive_data_acceptance`` (ST202) holds the document to the server's rules: names without
``..``, versions >= 1, bodies by their real shape (server/openapi.py states them). Two kinds of
refusal remain that are not the document's fault, and each is named here:

- answers that depend on the stored state, not on the request (like the 404 and 409 that
  schemathesis expects anyway): 410 history removed, 412 a precondition (``If-Match``) that
  does not hold, 422 a value the tenant's JSON Schema refuses;
- rules no OpenAPI document can state, listed in :data:`UNSTATABLE` with the request they
  concern and the 400 the server gives; any other 400 on a schema-valid request fails.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from schemathesis.checks import positive_data_acceptance  # noqa: E402
from schemathesis.config import PositiveDataAcceptanceConfig  # noqa: E402

from confhub.secrets import generate_master_key  # noqa: E402
from confhub.server.testing import server_process  # noqa: E402

EXAMPLES = int(os.environ.get("CONFHUB_FUZZ_EXAMPLES", "15"))  # raise it for a deep run
STATE_DEPENDENT = ["2xx", "3xx", "401", "403", "404", "409", "410", "412", "422", "429", "5xx"]


def _body(case: Any) -> Any:
    return case.body if isinstance(case.body, dict | list) else None


def _headers(case: Any) -> set[str]:
    return {name.lower() for name in (case.headers or {})}


def _json_patch(case: Any) -> bool:
    kind = (case.media_type or "").lower()
    if kind == "application/json-patch+json":
        return True
    ops = (_body(case) or {}).get("ops") if isinstance(_body(case), dict) else None
    return any(isinstance(op, dict) and op.get("json_patch") for op in ops or ())


def _txn_key_twice(case: Any) -> bool:
    body = _body(case)
    ops = body.get("ops") if isinstance(body, dict) else None
    addresses = [(op.get("env") or "base", op.get("namespace"), op.get("key"))
                 for op in ops or () if isinstance(op, dict)]
    return len(addresses) != len(set(addresses))


# (what the document cannot say, which requests it concerns, the server's 400 message)
UNSTATABLE: list[tuple[str, Callable[[Any], bool], str]] = [
    ("If-Match and If-None-Match exclude each other (OpenAPI parameters are independent)",
     lambda c: {"if-match", "if-none-match"} <= _headers(c), r"^send If-Match or If-None-Match"),
    ("?version= and ?resolved=true exclude each other (likewise)",
     lambda c: (c.query or {}).get("version") is not None
     and str((c.query or {}).get("resolved")).lower() == "true",
     r"^\?version= reads an old version"),
    ("whether a JSON Patch applies depends on the stored value (RFC 5789 2.2)",
     _json_patch, r"JSON Patch does not apply to"),
    ("a key may appear once per transaction (uniqueItems cannot compare a part of an item)",
     _txn_key_twice, r"twice|more than once|same key"),
    ("a revision the tenant has not reached yet (state, like a 404)",
     lambda c: c.path.endswith("/restore-revision"), r"^revision \d+ is in the future"),
    ("a namespace schema must be a valid JSON Schema and its rules valid CEL: languages of "
     "their own, beyond a JSON Schema pattern",
     lambda c: c.path.endswith("/schemas/{namespace}") and c.method == "PUT",
     r"schema|rules\[\d+\]|CEL|expr"),
    ("an export document's invariants across items: versions run 1..N per key, revisions "
     "grow, the entry is the last version, no address twice",
     lambda c: c.path.endswith("/import"), r"^invalid export document: (history|entries|"
     r"snapshots)"),
    ("a rollout's steps grow and end at 100, one bake per step, a selector in label-selector "
     "syntax naming labels the tenant's consumers have",
     lambda c: c.path.endswith("/rollouts") and c.method == "POST",
     r"^(steps|bake|final bake|selector|invalid selector)"),
]


def _tolerated(case: Any, response: Any) -> str | None:
    """The UNSTATABLE rule that explains this 400, if one does."""
    if response.status_code != 400:
        return None
    try:
        message = json.loads(response.content)["error"]["message"]
    except (ValueError, KeyError, TypeError):
        return None
    for rule, concerns, refusal in UNSTATABLE:
        if concerns(case) and re.search(refusal, message):
            return rule
    return None


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    db = tmp_path_factory.mktemp("fuzz") / "confhub.db"
    with server_process(db, env={"CONFHUB_MASTER_KEY": generate_master_key()}) as server:
        # The watch stream never ends on a valid request, so a fuzzer cannot call it;
        # tests/server/test_watch_sse.py covers its error answers case by case.
        schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json").exclude(tag="watch")
        schema.config.checks.positive_data_acceptance = PositiveDataAcceptanceConfig(
            expected_statuses=STATE_DEPENDENT)
        yield schema


def test_every_operation_conforms_and_never_answers_5xx(api_schema: Any) -> None:
    failures: list[str] = []
    count = 0
    for result in api_schema.get_all_operations():
        operation = result.ok()
        count += 1

        @given(operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def check(case: Any) -> None:
            response = case.call()
            excluded = [positive_data_acceptance] if _tolerated(case, response) else []
            case.validate_response(response, excluded_checks=excluded)

        try:
            check()
        except (Exception, BaseExceptionGroup) as exc:  # report every operation's failures
            failures.append(f"{operation.label}: {exc}")
    assert count >= 30  # every documented operation but the endless watch stream
    assert not failures, "\n\n".join(failures)


def test_the_document_states_the_name_rules(api_schema: Any) -> None:
    """A name with '..' is schema-invalid for every name parameter, as for the server."""
    raw = api_schema.raw_schema
    names = [p for ops in raw["paths"].values() for op in ops.values() if isinstance(op, dict)
             for p in op.get("parameters", []) if p["name"] in ("tenant", "namespace", "key")]
    assert names
    for parameter in names:
        schema = next(s for s in parameter["schema"].get("anyOf", [parameter["schema"]])
                      if s.get("type") == "string")
        pattern = schema["pattern"]
        assert re.search(pattern, "a.b-c_9") and re.search(pattern, "v1.")
        assert not re.search(pattern, "a..b") and not re.search(pattern, ".hidden")
        assert schema["maxLength"] == 128, parameter
