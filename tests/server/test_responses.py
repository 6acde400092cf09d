"""The hand-written Entry encoder of the hot paths stays equal to ``Entry.to_dict()``."""

from __future__ import annotations

from datetime import UTC, datetime

from confhub.model import Entry, freeze
from confhub.server.responses import EntryBytes, entry_json, matches, parse_version_tag


def test_entry_json_equals_to_dict() -> None:
    now = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    entry = Entry(tenant="t", env="base", namespace="n", key="k", value=freeze({"a": [1]}),
                  version=3, revision=9, created_at=now, updated_at=now, updated_by="ops",
                  secret=False)
    assert entry_json(entry) == entry.to_dict()


def test_entry_bytes_are_reused_only_for_the_same_entry_object() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    first = Entry("t", "base", "n", "k", 1, 1, 1, now, now, None)
    cache = EntryBytes()
    assert cache.encode(first) is cache.encode(first)
    second = Entry("t", "base", "n", "k", 2, 2, 2, now, now, None)
    assert b'"value":2' in cache.encode(second)


def test_etag_matching() -> None:
    assert matches('"1", "2"', '"2"') and matches("*", '"5"') and matches('W/"3"', '"3"')
    assert not matches('"3"', '"4"') and not matches(None, '"4"')
    assert parse_version_tag('W/"12"') == 12
