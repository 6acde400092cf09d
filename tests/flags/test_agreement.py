"""confhub evaluates like openfeature-flagd-core 2.x, flagd's own Python evaluator.

Property test: for any context (targeting key, email, version, nested user name...) every
testkit flag resolves to the same value and variant in confhub's FlagSet as in flagd-core's
FlagdCore, and to the same reason, except the two differences confhub documents: SPLIT where
flagd-core says TARGETING_MATCH for a fractional choice, and the flag's version in metadata.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from openfeature.contrib.tools.flagd.core import FlagdCore
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import OpenFeatureError

from confhub.flags import FlagSet, plan_import

from .conftest import TESTBED

_DOC = (TESTBED / "testkit-flags.json").read_text("utf-8")
_FLAGD = FlagdCore()
_FLAGD.set_flags(_DOC)
_PLAN = plan_import(__import__("json").loads(_DOC))
_OURS = FlagSet(_PLAN.puts)
KEYS = _OURS.flag_keys()

text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
contexts = st.fixed_dictionaries({}, optional={
    "email": st.one_of(text, st.sampled_from(["ballmer@macrosoft.com", "jobs@orange.com",
                                              "wozniak@orange.com", "user@example.com"])),
    "version": st.one_of(st.sampled_from(["1.0.0", "v1.0.0", "2.1.0", "3.0.1", "1", "1.1"]),
                         text, st.integers(0, 5)),
    "user": st.fixed_dictionaries({"name": text}),
    "tier": st.sampled_from(["premium", "basic"]),
    "color": st.sampled_from(["red", "green", "", "yellow"]),
    "id": text,
})


def _flagd(key: str, ctx: EvaluationContext) -> tuple[Any, str | None, str, str | None]:
    """(value, variant, reason, error code) from flagd-core, asked for the flag's own type
    (it has no untyped resolve)."""
    flag = _FLAGD._flag_store.get_flag(key)  # noqa: SLF001 - test reads flagd-core's store
    assert flag is not None
    sample = next(iter(flag.variants.values()))
    method = {bool: _FLAGD.resolve_boolean_value, str: _FLAGD.resolve_string_value,
              int: _FLAGD.resolve_integer_value, float: _FLAGD.resolve_float_value,
              dict: _FLAGD.resolve_object_value}[type(sample)]
    try:
        details = method(key, None, ctx)  # type: ignore[operator]
    except OpenFeatureError as exc:
        return None, None, "ERROR", exc.error_code.value
    reason = details.reason.value if details.reason else None
    return details.value, details.variant, str(reason), None


@settings(max_examples=50, deadline=None)
@given(targeting_key=st.one_of(st.none(), text), attributes=contexts)
def test_every_testkit_flag_resolves_as_in_flagd_core(targeting_key: str | None,
                                                      attributes: dict[str, Any]) -> None:
    ctx = EvaluationContext(targeting_key, attributes)
    for key in KEYS:
        mine = _OURS.evaluate(key, attributes, targeting_key)
        value, variant, reason, code = _flagd(key, ctx)
        if code is not None:
            assert mine.error_code == code, (key, mine, code)
            continue
        assert (mine.value, mine.variant) == (value, variant), (key, mine, value, variant)
        expected = "SPLIT" if mine.reason == "SPLIT" and reason == "TARGETING_MATCH" else reason
        assert mine.reason == expected, (key, mine, reason)
