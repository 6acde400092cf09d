"""The bucketing spec (docs/rollouts.md) and label selectors."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from confhub.cohort import BUCKETS, Cohort, Selector, bucket, parse_labels, threshold
from confhub.errors import InvalidRequest

# murmur3_32(utf8(salt + ":" + client_id), seed 0) mod 10000 -- the same table is in the docs.
VECTORS = [
    ("r-demo", "api-1", 181),
    ("r-demo", "api-2", 2710),
    ("r-demo", "api-3", 9755),
    ("r-demo", "web-7", 6316),
    ("salt", "client", 7034),
    ("rollout-42", "host-0001", 3411),
    ("r-demo", "ünïcode-ü", 9965),
]


@pytest.mark.parametrize(("salt", "client", "expected"), VECTORS)
def test_bucket_matches_the_published_vectors(salt: str, client: str, expected: int) -> None:
    assert bucket(salt, client) == expected


def test_threshold_is_percent_times_one_hundred() -> None:
    assert [threshold(p) for p in (0.01, 1, 10, 12.5, 100)] == [1, 100, 1000, 1250, 10_000]


@given(st.text(max_size=40), st.text(min_size=1, max_size=40),
       st.floats(0.01, 100), st.floats(0.01, 100))
def test_widening_a_step_never_removes_a_member(salt: str, client: str, a: float,
                                                b: float) -> None:
    narrow, wide = sorted((round(a, 2), round(b, 2)))
    cohort = Cohort(salt)
    if cohort.member(client, {}, narrow):
        assert cohort.member(client, {}, wide)


def test_ten_thousand_ids_spread_evenly_over_the_buckets() -> None:
    """Each tenth of the bucket range holds 10 % of the ids within +-1.5 points."""
    deciles = [0] * 10
    for i in range(10_000):
        deciles[bucket("spread", f"client-{i}") * 10 // BUCKETS] += 1
    assert all(850 <= n <= 1150 for n in deciles), deciles
    in_ten_percent = sum(1 for i in range(10_000) if bucket("spread", f"client-{i}") < 1000)
    assert 850 <= in_ten_percent <= 1150


def test_different_salts_pick_different_first_consumers() -> None:
    ids = [f"c{i}" for i in range(200)]
    first_a = {c for c in ids if bucket("a", c) < 1000}
    first_b = {c for c in ids if bucket("b", c) < 1000}
    assert first_a != first_b


def test_anonymous_readers_are_never_members() -> None:
    assert not Cohort("s").member(None, {}, 100)


def test_listed_clients_are_members_from_the_first_step() -> None:
    cohort = Cohort.build("r-demo", clients=["api-2"])
    assert cohort.member("api-2", {}, 0.01)
    assert not cohort.member("api-3", {}, 10)


def test_selector_limits_who_is_eligible() -> None:
    cohort = Cohort.build("r-demo", selector="region=eu")
    assert cohort.member("api-1", {"region": "eu"}, 100)
    assert not cohort.member("api-1", {"region": "us"}, 100)


class TestSelector:
    @pytest.mark.parametrize(("text", "labels", "expected"), [
        ("region=eu", {"region": "eu"}, True),
        ("region==eu", {"region": "us"}, False),
        ("region!=eu", {}, True),
        ("region in (eu,us),tier!=critical", {"region": "us", "tier": "web"}, True),
        ("region in (eu, us),tier!=critical", {"region": "eu", "tier": "critical"}, False),
        ("region notin (eu)", {"region": "ap"}, True),
        ("canary", {"canary": "yes"}, True),
        ("!canary", {"canary": "yes"}, False),
        ("!canary", {}, True),
    ])
    def test_matches_like_kubernetes_label_selectors(self, text: str, labels: dict[str, str],
                                                     expected: bool) -> None:
        assert Selector.parse(text).matches(labels) is expected

    def test_prints_in_canonical_form(self) -> None:
        assert str(Selector.parse(" region in (us, eu) , tier != critical")) == \
            "region in (eu,us),tier!=critical"

    @pytest.mark.parametrize(("text", "named"), [
        ("region like (eu)", "unknown operator 'like'"),
        ("region ~ eu", "region ~ eu"),
        ("region=eu,,tier=x", "empty clause"),
        ("", "empty"),
        ("region in ()", "at least one value"),
        ("-bad=eu", "label key '-bad'"),
    ])
    def test_bad_selectors_name_what_is_wrong(self, text: str, named: str) -> None:
        with pytest.raises(InvalidRequest, match=named.replace("(", r"\(")):
            Selector.parse(text)


def test_labels_parse_from_text_and_mapping() -> None:
    assert parse_labels("tier=web, region=eu") == {"region": "eu", "tier": "web"}
    assert parse_labels({"region": "eu"}) == {"region": "eu"}
    with pytest.raises(InvalidRequest, match="not key=value"):
        parse_labels("region")
