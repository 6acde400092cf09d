"""How PostgreSQL folds a commit's rows into one current pointer per key (``pg_rows``):
the pointer must end exactly where upserting the rows one by one would leave it."""

from __future__ import annotations

import pytest

import confhub
from confhub.store.base import VersionRow
from confhub.store.pg_rows import SMALL_BATCH, fold_current


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


@pytest.mark.parametrize("size", [SMALL_BATCH + 1, 40])
def test_a_commit_of_many_rows_reads_back_as_written(pg_url: str, size: int) -> None:
    """A transaction of ``size`` writes: puts of every JSON type, a delete, and the re-creation
    of a deleted key (whose pointer's created_at must restart). Past ``SMALL_BATCH`` rows per
    table they go as arrays, which must store the same rows in order as the one-row commits
    (VALUES) before them did."""
    value = {"s": "é\\n\"", "i": 2**53, "f": 0.5, "b": False, "n": None, "l": [1, "x"]}
    with confhub.open(pg_url) as hub:
        cfg = hub.tenant("default")
        cfg.set("ns", "again", 1)
        cfg.set("ns", "gone", 1)
        cfg.delete("ns", "again")
        with cfg.transaction() as tx:
            for i in range(size - 2):
                tx.set("ns", f"k{i:03d}", {**value, "i": i})
            tx.delete("ns", "gone")
            tx.set("ns", "again", value)
        assert cfg.get("ns", "again").value == value
        assert cfg.get("ns", "again").version == 3
        assert [cfg.get("ns", f"k{i:03d}").value["i"] for i in range(size - 2)] == list(
            range(size - 2))
        history = cfg.history("ns", "again")
        assert [(v.version, v.op) for v in history] == [(3, "put"), (2, "delete"), (1, "put")]
        # the re-created key's life began with the transaction, not with version 1
        assert cfg.get("ns", "again").created_at == history[0].created_at
        targets = [a.target for a in hub.audit(tenant="default") if a.action.startswith(
            "config.")]
        assert targets[-size:] == [*(f"ns/k{i:03d}" for i in range(size - 2)), "ns/gone",
                                   "ns/again"]
        with pytest.raises(confhub.NotFound):
            cfg.get("ns", "gone")
