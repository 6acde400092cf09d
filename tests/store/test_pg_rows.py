"""How PostgreSQL folds a commit's rows into one current pointer per key (``pg_rows``):
the pointer must end exactly where upserting the rows one by one would leave it."""

from __future__ import annotations

import pytest

from confhub.store.base import VersionRow
from confhub.store.pg_rows import fold_current


def row(key: str, version: int, at: int, *, deleted: bool = False) -> VersionRow:
    return VersionRow(
        "t",
        "base",
        "ns",
        key,
        version=version,
        revision=version,
        op="delete" if deleted else "put",
        deleted=deleted,
        value=None if deleted else "1",
        created_at=at,
    )


# (rows of one key in commit order, expected (version, deleted, created_at, reborn))
CASES = [
    ([row("a", 4, 10)], (4, False, 10, False)),
    ([row("a", 4, 10), row("a", 5, 20)], (5, False, 10, False)),
    ([row("a", 4, 10), row("a", 5, 20, deleted=True)], (5, True, 10, False)),
    ([row("a", 4, 10), row("a", 5, 20, deleted=True), row("a", 6, 30)], (6, False, 30, True)),
    ([row("a", 4, 10, deleted=True), row("a", 5, 20)], (5, False, 20, True)),
    (
        [
            row("a", 4, 10),
            row("a", 5, 20, deleted=True),
            row("a", 6, 30),
            row("a", 7, 40, deleted=True),
        ],
        (7, True, 30, True),
    ),
]


@pytest.mark.parametrize(("rows", "expected"), CASES)
def test_the_pointer_is_where_the_rows_applied_in_order_leave_it(
    rows: list[VersionRow], expected: tuple[int, bool, int, bool]
) -> None:
    """The last version and tombstone flag; the first row's time unless a tombstone came
    before a later row, whose time then starts the key's new life (reborn)."""
    (pointer,) = fold_current(rows)
    assert tuple(pointer[4:]) == expected


def test_keys_are_folded_apart_in_first_seen_order() -> None:
    """Rows of two keys interleaved: one pointer each, in the order the keys first came."""
    pointers = fold_current([row("b", 2, 1), row("a", 7, 2), row("b", 3, 3)])
    assert [(p[3], p[4]) for p in pointers] == [("b", 3), ("a", 7)]
