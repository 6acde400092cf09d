"""Benchmark of validation (issue 5): it prints figures, it asserts nothing.

Run from the repository root (figures and machine in docs/benchmarks.md)::

    .venv/bin/python bench/validation.py                 # validate + set on SQLite
    .venv/bin/python bench/validation.py --backend postgres --writes 500

Two figures:

* **validate**: a typical 30-field document (20 integers, 8 strings, 2 booleans) against its
  JSON Schema (types, ranges, lengths, an enum, a format, ``additionalProperties: false``) and
  10 CEL rules, through ``CompiledSchema.validate`` — what every write of a governed key runs.
  The compiled form comes from the digest cache, as in a write. Each call is timed alone with
  ``perf_counter_ns``; median and p99 over ``--calls`` calls after a warm-up.
* **set**: ``Tenant.set`` of that document with and without the schema on its namespace
  (durable writes, one at a time); the difference is what a schema costs a write: the schema
  lookup inside the write transaction, reading the key's env layers, decoding and validating.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from typing import Any

import confhub
from confhub.validation import compile_document, document_text, make_document

PG_DSN = os.environ.get("CONFHUB_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")


def document() -> dict[str, Any]:
    doc: dict[str, Any] = {f"int_{i}": 10 + i for i in range(20)}
    doc.update({f"text_{i}": f"value-{i}" for i in range(6)})
    doc.update({"mode": "fast", "contact": "ops@example.com", "enabled": True, "cache": True})
    return doc


def schema() -> dict[str, Any]:
    props: dict[str, Any] = {f"int_{i}": {"type": "integer", "minimum": 0, "maximum": 10_000}
                             for i in range(20)}
    props.update({f"text_{i}": {"type": "string", "maxLength": 64} for i in range(6)})
    props.update({"mode": {"enum": ["fast", "safe"]},
                  "contact": {"type": "string", "format": "email"},
                  "enabled": {"type": "boolean"}, "cache": {"type": "boolean"}})
    return {"type": "object", "additionalProperties": False, "properties": props,
            "required": ["int_0", "mode"]}


def rules() -> list[dict[str, Any]]:
    out = [{"expr": f"self.int_{i} <= self.int_{i + 1} * 4", "message": f"int_{i} too big"}
           for i in range(7)]
    out += [{"expr": "!self.cache || has(self.int_19)", "message": "cache needs int_19"},
            {"expr": "self.mode == 'fast' || self.int_0 > 5", "message": "safe mode"},
            {"expr": "size(self.text_0) < 32", "message": "long text", "severity": "warning"}]
    return out


def timed(fn: Callable[[], Any], calls: int, warmup: int = 200) -> tuple[float, float]:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(calls):
        start = time.perf_counter_ns()
        fn()
        samples.append(time.perf_counter_ns() - start)
    samples.sort()
    return statistics.median(samples) / 1000, samples[int(len(samples) * 0.99)] / 1000


def open_hub(backend: str, folder: str) -> Any:
    if backend == "sqlite":
        return confhub.open(os.path.join(folder, "bench.db"))
    import psycopg

    schema_name = f"bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema_name}")
    return confhub.open(f"{PG_DSN}?options=-csearch_path%3D{schema_name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--writes", type=int, default=1000)
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    args = parser.parse_args()
    doc, text = document(), document_text(make_document(schema(), rules()))
    compiled = compile_document(text)
    assert compiled.validate(doc).valid
    print(f"python {platform.python_version()} on {platform.machine()}, "
          f"{os.cpu_count()} cpu(s)")

    median, p99 = timed(lambda: compile_document(text).validate(doc), args.calls)
    print(f"validate 30 fields + 10 CEL rules   median {median:8.1f} µs   p99 {p99:8.1f} µs")
    median, p99 = timed(lambda: compiled._validator.is_valid(doc), args.calls)
    print(f"  of which JSON Schema alone          median {median:8.1f} µs   p99 {p99:8.1f} µs")

    with tempfile.TemporaryDirectory() as folder:
        hub = open_hub(args.backend, folder)
        try:
            cfg = hub.tenant()
            cfg.set_schema("governed", schema(), rules())
            for ns in ("free", "governed"):
                median, p99 = timed(lambda ns=ns: cfg.set(ns, "k", doc), args.writes,
                                    warmup=50)
                print(f"set ({args.backend}) {'with' if ns == 'governed' else 'without':7} "
                      f"schema  median {median:8.1f} µs   p99 {p99:8.1f} µs")
        finally:
            hub.close()


if __name__ == "__main__":
    main()
