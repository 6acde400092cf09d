"""The Entry a write returns is the one a read gives back, however it was built.

A put's Entry is made from the value frozen before the write (``hub.rows.frozen_plain``), not
by decoding the stored text; these pin that the two agree, and that the row records built
by ``records.quick_init`` behave as the dataclasses they are.
"""

from __future__ import annotations

import collections
import dataclasses
import enum
import inspect
import json
import threading
from typing import Any

import pytest

import confhub
from confhub.hub.rows import NOT_PLAIN, frozen_plain
from confhub.model import MAX_DEPTH, FrozenDict, FrozenList, decode_value, encode_value
from confhub.store.base import AuditRow, VersionRow


class Level(enum.IntEnum):
    HIGH = 1


def _nested(depth: int, leaf: Any) -> Any:
    for _ in range(depth):
        leaf = [leaf]
    return leaf


PLAIN = [
    {"model": "m", "max_tokens": 8192, "temperature": 0.2, "tags": ["a", "b"],
     "limits": {"rpm": 1, "z": None, "a": True}, "t": (1, 2.5), "neg": -0.0},
    [1, "x", None, False, 1e300],
    "text", 3, 2.5, None,
    FrozenDict(a=FrozenList([1])),
    _nested(MAX_DEPTH, "deep"),
]
NOT_PLAIN_VALUES = [
    collections.OrderedDict(a=1), {"a": Level.HIGH}, [Level.HIGH],
    _nested(MAX_DEPTH + 1, 1.5),  # a float one level too deep is refused by encode_value
]


def _same(a: Any, b: Any) -> None:
    assert type(a) is type(b)
    if isinstance(a, dict):
        assert list(a) == list(b)
        for key in a:
            _same(a[key], b[key])
    elif isinstance(a, list):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _same(x, y)
    else:
        assert a == b or (a != a and b != b)


@pytest.mark.parametrize("value", PLAIN)
def test_frozen_plain_is_the_decoded_canonical_text(value: Any) -> None:
    _same(frozen_plain(value), decode_value(encode_value(value)))


@pytest.mark.parametrize("value", NOT_PLAIN_VALUES)
def test_frozen_plain_leaves_other_values_to_decoding(value: Any) -> None:
    assert frozen_plain(value) is NOT_PLAIN


def test_set_returns_the_entry_a_get_reads(cfg: confhub.Tenant) -> None:
    for i, value in enumerate([*PLAIN, collections.OrderedDict(b=1, a=2), {"a": Level.HIGH}]):
        written = cfg.set("ns", f"k{i}", value)
        read = cfg.get("ns", f"k{i}")
        assert written == read
        _same(written.value, read.value)
        assert json.dumps(written.value) == json.dumps(read.value)
        assert written.created_at == written.updated_at


def test_submit_set_entry_is_the_value_when_submitted(sqlite_url: str) -> None:
    hub = confhub.open(sqlite_url)  # embedded only: the remote client has no submit_set
    cfg = hub.tenant()
    value: dict[str, Any] = {"a": [1, 2]}
    got: list[confhub.Entry | None] = []
    done = threading.Event()

    def finished(entry: confhub.Entry | None, error: BaseException | None) -> None:
        got.append(entry)
        done.set()

    cfg.submit_set("ns", "k", value, done=finished)
    value["a"].append(3)  # the caller's value changes once the write is under way
    assert done.wait(10)
    assert got[0] is not None and got[0].value == {"a": [1, 2]}
    assert cfg.get("ns", "k").value == {"a": [1, 2]}
    with pytest.raises(TypeError):
        got[0].value["b"] = 1
    hub.close()


def test_quick_init_rows_keep_their_dataclass_behaviour() -> None:
    assert list(inspect.signature(AuditRow).parameters) == [
        f.name for f in dataclasses.fields(AuditRow)]
    row = VersionRow("t", "base", "ns", "k", 1, 2, "put", False, "{}", 5)
    assert row == VersionRow(tenant="t", env="base", namespace="ns", key="k", version=1,
                             revision=2, op="put", deleted=False, value="{}", created_at=5)
    assert row.author is None and row.secret is False and row.key_created_at is None
    assert dataclasses.replace(row, key_created_at=3).key_created_at == 3
    with pytest.raises(dataclasses.FrozenInstanceError):
        row.version = 2  # type: ignore[misc]
    with pytest.raises(TypeError):
        VersionRow("t")  # type: ignore[call-arg]
