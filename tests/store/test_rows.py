"""The row records' fast ``__init__`` (``store.base._slot_init``) keeps the dataclass's
contract: same parameters in the same order, same defaults, still frozen."""

from __future__ import annotations

import dataclasses
import pickle

import pytest

from confhub.store.base import AuditRow, VersionRow


@pytest.mark.parametrize("cls", [VersionRow, AuditRow])
def test_every_field_is_set_by_position_and_by_name(cls: type) -> None:
    fields = dataclasses.fields(cls)
    values = [f"v{i}" for i in range(len(fields))]
    by_position = cls(*values)
    by_name = cls(**{f.name: v for f, v in zip(fields, values, strict=True)})
    assert [getattr(by_position, f.name) for f in fields] == values
    assert by_name == by_position
    assert pickle.loads(pickle.dumps(by_position)) == by_position
    assert dataclasses.replace(by_position, **{fields[0].name: "other"}) != by_position


@pytest.mark.parametrize("cls", [VersionRow, AuditRow])
def test_defaults_and_refusals_are_the_dataclass_s(cls: type) -> None:
    fields = dataclasses.fields(cls)
    required = [f for f in fields if f.default is dataclasses.MISSING]
    row = cls(*range(len(required)))
    for f in fields[len(required):]:
        assert getattr(row, f.name) == f.default
    with pytest.raises(TypeError, match="missing 1 required positional argument"):
        cls(*range(len(required) - 1))
    with pytest.raises(TypeError, match="unexpected keyword argument 'nope'"):
        cls(*range(len(required)), nope=1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        row.__setattr__(fields[0].name, "changed")
