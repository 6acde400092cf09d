"""A schema change racing value writes: the schema in force never governs a value it refuses.

Two hubs on one database (as two processes would be): one keeps writing values that only the
old schema accepts, the other tightens the schema. Whatever the interleaving, afterwards either
the tightening was refused or every value passes it (the check and the change hold the write
locks that value writes take).
"""

from __future__ import annotations

import contextlib
import threading

import pytest

import confhub
from confhub import ValidationFailed

LOOSE = {"type": "object", "properties": {"n": {"type": "integer"}}}
TIGHT = {"type": "object", "properties": {"n": {"type": "integer", "maximum": 10}}}


@pytest.fixture(params=["sqlite", "pg"])
def two_hubs(request: pytest.FixtureRequest) -> tuple[confhub.Hub, confhub.Hub]:
    url = request.getfixturevalue(f"{request.param}_url")
    first, second = confhub.open(url), confhub.open(url)
    request.addfinalizer(first.close)
    request.addfinalizer(second.close)
    return first, second


@pytest.mark.parametrize("all_tenants", [False, True])
def test_tightening_races_writes_without_letting_a_bad_value_in(
        two_hubs: tuple[confhub.Hub, confhub.Hub], all_tenants: bool) -> None:
    writer_hub, admin_hub = two_hubs
    writer_hub.create_tenant("acme")
    writer, admin = writer_hub.tenant("acme"), admin_hub.tenant("acme")
    admin.set_schema("ns", LOOSE, all_tenants=all_tenants)
    stop = threading.Event()

    def write() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            # Mostly small values, so the tightening sometimes passes and sometimes not.
            with contextlib.suppress(ValidationFailed):
                writer.set("ns", f"k{n % 3}", {"n": 50 if n % 11 == 0 else 5})

    thread = threading.Thread(target=write)
    thread.start()
    outcomes: list[bool] = []
    try:
        for _ in range(15):
            try:
                admin.set_schema("ns", TIGHT, all_tenants=all_tenants)
                outcomes.append(True)
            except ValidationFailed:
                outcomes.append(False)
            if outcomes[-1]:
                admin_hub.sync()  # the writer's commits, made through the other hub
                for entry in admin.list("ns"):
                    assert entry.value["n"] <= 10, "a value the schema refuses got in"
                admin.set_schema("ns", LOOSE, all_tenants=all_tenants)
    finally:
        stop.set()
        thread.join()
