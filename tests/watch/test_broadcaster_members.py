"""Property: whatever the order in which watchers come and go between revisions, each published
revision wakes exactly the watchers subscribed at that moment, and a tenant nobody watches any
more keeps no ring of recent revisions."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from confhub.watch import Broadcaster, Subscription, WatchFilter

# ("add", i) subscribes watcher i, ("remove", i) ends it (again: nothing), ("publish", _) writes
STEPS = st.lists(st.tuples(st.sampled_from(["add", "remove", "publish"]), st.integers(0, 5)),
                 max_size=40)


@given(STEPS)
def test_each_revision_wakes_exactly_the_watchers_subscribed_then(steps: list[tuple[str, int]]
                                                                  ) -> None:
    broadcaster = Broadcaster()
    woken: dict[int, int] = {}
    subscribed: dict[int, Subscription] = {}
    expected: dict[int, int] = {}
    revision = 0
    for step, i in steps:
        if step == "add" and i not in subscribed:
            def wake(i: int = i) -> None:
                woken[i] = woken.get(i, 0) + 1

            sub = subscribed[i] = Subscription("t", WatchFilter.of(None, None, None), revision,
                                               revision, wake)
            broadcaster.add(sub)
        elif step == "remove" and i in subscribed:
            broadcaster.remove(subscribed.pop(i))
        elif step == "publish":
            revision += 1
            broadcaster.publish("t", revision, list)
            for j in subscribed:
                expected[j] = expected.get(j, 0) + 1
            # nobody watches: no ring of recent revisions is kept for the tenant
            assert ("t" in broadcaster._by_tenant) == bool(subscribed)
    assert woken == expected
    for sub in list(subscribed.values()):
        broadcaster.remove(sub)
        broadcaster.remove(sub)  # twice: the second finds nothing to do
    assert broadcaster._by_tenant == {}  # nobody watches: the tenant's ring is gone
