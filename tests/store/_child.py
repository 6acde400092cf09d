"""Worker processes for the concurrency and crash tests (run as a script, never imported).

    python _child.py increment URL TENANT N          CAS-increment counter/hot N times
    python _child.py transfer URL TENANT KEYS N SEED  N constant-sum transfers between bank keys
    python _child.py serve URL                        run JSON commands read from stdin
    python _child.py crash-writer URL TENANT LOG SEED acknowledged writes until killed

``increment`` and ``transfer`` print ``ready`` once the hub is open and start when a line
arrives on stdin, so that every writer starts at once. ``serve`` answers each command line
with one JSON line. ``crash-writer`` appends a line to LOG (flushed and fsynced) after each
acknowledged commit; the crash test kills it with SIGKILL and checks the log against the store.
"""

from __future__ import annotations

import json
import os
import random
import sys
from typing import Any

import confhub
from confhub import VersionConflict


def wait_for_go() -> None:
    print("ready", flush=True)
    sys.stdin.readline()


def increment(hub: confhub.Hub, tenant: str, n: int) -> int:
    """CAS increments of counter/hot; returns the number of conflicts retried."""
    cfg = hub.tenant(tenant)
    conflicts = 0
    done = 0
    while done < n:
        entry = cfg.get("counter", "hot")
        try:
            cfg.set("counter", "hot", {"n": entry.value["n"] + 1},
                    expected_version=entry.version)
            done += 1
        except VersionConflict:
            conflicts += 1
            hub.sync()  # our cached copy is behind another writer: catch up, then retry
    return conflicts


def transfer(hub: confhub.Hub, tenant: str, keys: int, n: int, rng: random.Random) -> int:
    """Move a random amount between two bank keys in one CAS transaction, ``n`` times."""
    cfg = hub.tenant(tenant)
    conflicts = 0
    done = 0
    while done < n:
        a, b = rng.sample([f"k{i}" for i in range(keys)], 2)
        ea, eb = cfg.get("bank", a), cfg.get("bank", b)
        amount = rng.randint(1, 10)
        try:
            with cfg.transaction(reason="transfer") as tx:
                tx.set("bank", a, ea.value - amount, expected_version=ea.version)
                tx.set("bank", b, eb.value + amount, expected_version=eb.version)
            done += 1
        except VersionConflict:
            conflicts += 1
            hub.sync()
    return conflicts


def serve(hub: confhub.Hub) -> None:
    """One JSON command per line; one JSON answer per line."""
    for line in sys.stdin:
        command: dict[str, Any] = json.loads(line)
        try:
            answer = run_command(hub, command)
        except confhub.ConfhubError as exc:
            answer = {"error": type(exc).__name__, "message": exc.message}
        print(json.dumps(answer), flush=True)


def run_command(hub: confhub.Hub, c: dict[str, Any]) -> dict[str, Any]:
    op = c["op"]
    if op == "create_tenant":
        hub.create_tenant(c["tenant"])
        return {"ok": True}
    if op == "delete_tenant":
        hub.delete_tenant(c["tenant"], hard=c.get("hard", False))
        return {"ok": True}
    if op == "restore_tenant":
        hub.restore_tenant(c["tenant"])
        return {"ok": True}
    cfg = hub.tenant(c["tenant"])
    if op == "set":
        return {"version": cfg.set(c["namespace"], c["key"], c["value"],
                                   env=c.get("env", "base")).version}
    if op == "patch":
        return {"version": cfg.patch(c["namespace"], c["key"], c["value"]).version}
    if op == "delete":
        return {"version": cfg.delete(c["namespace"], c["key"]).version}
    if op == "txn":
        with cfg.transaction() as tx:
            for namespace, key, value in c["set"]:
                tx.set(namespace, key, value)
            for namespace, key in c.get("delete", []):
                tx.delete(namespace, key)
        return {"revision": tx.revision}
    raise ValueError(f"unknown command {op!r}")


def crash_writer(hub: confhub.Hub, tenant: str, log_path: str, rng: random.Random) -> None:
    """Single sets of log/sN and constant-sum CAS transactions over bank/kN, forever.

    Log lines, written only after the commit returned::

        set <revision> <key> <version> <value>
        txn <revision> <key>:<version>:<value> <key>:<version>:<value> ...
    """
    cfg = hub.tenant(tenant)
    bank = sorted(e.key for e in cfg.list("bank"))
    fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def ack(line: str) -> None:
        os.write(fd, (line + "\n").encode())
        os.fsync(fd)

    while True:
        if rng.random() < 0.4:
            key = f"s{rng.randrange(8)}"
            value = rng.randrange(1_000_000_000)
            entry = cfg.set("log", key, value)
            ack(f"set {entry.revision} {key} {entry.version} {value}")
            continue
        keys = rng.sample(bank, rng.randint(2, min(4, len(bank))))
        entries = [cfg.get("bank", k) for k in keys]
        amounts = [rng.randint(-20, 20) for _ in keys[1:]]
        values = [entries[0].value - sum(amounts)] + [
            e.value + amount for e, amount in zip(entries[1:], amounts, strict=True)]
        try:
            with cfg.transaction(reason="transfer") as tx:
                for k, e, v in zip(keys, entries, values, strict=True):
                    tx.set("bank", k, v, expected_version=e.version)
        except VersionConflict:  # another writer moved one of the keys: nothing was written
            hub.sync()
            continue
        parts = " ".join(f"{k}:{e.version + 1}:{v}"
                         for k, e, v in zip(keys, entries, values, strict=True))
        ack(f"txn {tx.revision} {parts}")


def main(argv: list[str]) -> None:
    command, url = argv[0], argv[1]
    with confhub.open(url) as hub:
        if command == "increment":
            wait_for_go()
            print(f"done {increment(hub, argv[2], int(argv[3]))}", flush=True)
        elif command == "transfer":
            wait_for_go()
            rng = random.Random(int(argv[5]))
            print(f"done {transfer(hub, argv[2], int(argv[3]), int(argv[4]), rng)}",
                  flush=True)
        elif command == "serve":
            print("ready", flush=True)
            serve(hub)
        elif command == "crash-writer":
            crash_writer(hub, argv[2], argv[3], random.Random(int(argv[4])))
        else:
            raise SystemExit(f"unknown command {command!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
