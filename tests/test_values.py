"""A write hands back the value it was given, frozen, instead of parsing the text it stored
(``encode_and_freeze``): that shortcut is only right if the two are indistinguishable."""

from __future__ import annotations

import enum
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import confhub
from confhub.model import FrozenDict, FrozenList, encode_value
from confhub.secrets import generate_master_key
from confhub.values import MAX_DEPTH, NOT_PLAIN, decode_value, encode_and_freeze

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text()
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda children: st.lists(children, max_size=4) | st.tuples(children, children)
    | st.dictionaries(st.text(max_size=5), children, max_size=4),
    max_leaves=20,
)


def shape(value: Any) -> Any:
    """``value`` with every container's exact type and every key order made visible
    (``==`` treats True as 1, 1.0 as 1 and ignores dict order)."""
    if isinstance(value, dict):
        return (type(value).__name__, [(k, shape(v)) for k, v in value.items()])
    if isinstance(value, list | tuple):
        return (type(value).__name__, [shape(v) for v in value])
    return (type(value).__name__, repr(value))


@given(json_values)
def test_the_frozen_value_is_what_decoding_the_text_gives(value: Any) -> None:
    text, frozen = encode_and_freeze(value)
    assert text == encode_value(value)
    assert shape(frozen) == shape(decode_value(text))


def test_frozen_values_refuse_mutation() -> None:
    _, frozen = encode_and_freeze({"a": [1, {"b": 2}]})
    assert type(frozen) is FrozenDict and type(frozen["a"]) is FrozenList
    with pytest.raises(TypeError, match="read-only"):
        frozen["a"][1]["b"] = 3


class Level(enum.IntEnum):
    HIGH = 3


class Name(str):
    pass


@pytest.mark.parametrize("value", [{"level": Level.HIGH}, [Name("x")], {"n": Level.HIGH}])
def test_values_that_are_json_only_after_conversion_are_not_frozen_as_given(value: Any) -> None:
    """An IntEnum is stored as 3 and reads back as the int 3: the shortcut must not hand the
    enum back, so it answers NOT_PLAIN and the write decodes its text as before."""
    text, frozen = encode_and_freeze(value)
    assert frozen is NOT_PLAIN
    assert text == encode_value(value)


@pytest.mark.parametrize("value", [math.nan, {"a": [math.inf]}, {1: "x"}, {"a": object()}])
def test_values_that_are_not_json_are_refused_as_before(value: Any) -> None:
    with pytest.raises(confhub.InvalidValue) as refused:
        encode_value(value)
    with pytest.raises(confhub.InvalidValue) as again:
        encode_and_freeze(value)
    assert str(again.value) == str(refused.value)


def test_the_depth_limit_is_the_same() -> None:
    deep: Any = 0
    depth = 0
    while True:  # the shallowest nesting encode_value refuses
        deep, depth = [deep], depth + 1
        try:
            encode_value(deep)
        except confhub.InvalidValue:
            break
    assert depth > MAX_DEPTH
    with pytest.raises(confhub.InvalidValue, match="nests deeper"):
        encode_and_freeze(deep)
    assert shape(encode_and_freeze(deep[0])[1]) == shape(decode_value(encode_value(deep[0])))


@pytest.mark.parametrize("secret", [False, True, ["/password"]])
def test_a_set_returns_the_entry_a_read_gives(tmp_path: Any, secret: Any) -> None:
    """Through the hub: the Entry a set returns equals the one a fresh hub reads, secrets
    redacted, and the caller's later edits to its own dict change neither."""
    url = f"sqlite:///{tmp_path / 'c.db'}"
    value = {"host": "db", "password": "hunter2", "ports": [5432, 5433], "ratio": 1.0,
             "on": True}
    key = generate_master_key()
    with confhub.open(url, master_key=key) as hub:
        hub.create_tenant("acme")
        written = hub.tenant("acme").set("app", "db", value, secret=secret)
        value["ports"].append(1)
        with confhub.open(url, master_key=key) as fresh:
            read = fresh.tenant("acme").get("app", "db")
        assert shape(written.value) == shape(read.value)
        assert written == read
