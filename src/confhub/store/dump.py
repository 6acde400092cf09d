"""Whole-store backup: every confhub table, read in one consistent snapshot, as a checked file.

The file is gzip-compressed JSON lines::

    {"format": "confhub-backup", "format_version": 1, "backend": "sqlite", "schema": 4,
     "created_at": 1732440000000000, "tables": {"confhub_tenants": 3, ...}}    header
    ["confhub_tenants", ["id", "created_at", ...]]                             columns
    ["confhub_tenants", ["acme", 1732440000000000, ...]]                       one per row
    ...
    {"end": true, "rows": 1234, "sha256": "…"}                                 trailer

``sha256`` is the hash of every line before the trailer (as written, newline included), so
a truncated or altered file is refused before anything is written. Rows are copied as stored:
secrets stay encrypted, tokens stay hashed, audit ids and checksums are kept. Because the
format is logical, a SQLite backup restores into PostgreSQL and back.

Consistency while the server keeps writing: SQLite reads everything inside one read
transaction (WAL gives it a snapshot, and writers carry on); PostgreSQL in one
``REPEATABLE READ READ ONLY`` transaction. Every table is dumped, including ones added by
later migrations (tables are found by their ``confhub_`` prefix), except ``confhub_schema``
(the migration counter: the header records it and a restore requires the same one).
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO, Any

from ..errors import AlreadyExists, InvalidRequest
from ..model import now_micros

__all__ = ["BACKUP_FORMAT", "dump", "load", "read_header"]

BACKUP_FORMAT = "confhub-backup"
BACKUP_FORMAT_VERSION = 1
Progress = Callable[[int, int], None]  # (rows done, rows total)
_BATCH = 1000


def _tables(conn: Any, backend: str) -> list[str]:
    if backend == "sqlite":
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                            "AND name LIKE 'confhub\\_%' ESCAPE '\\'").fetchall()
    else:
        rows = conn.execute("SELECT table_name FROM information_schema.tables WHERE "
                            "table_schema = current_schema() AND table_name LIKE 'confhub\\_%'"
                            ).fetchall()
    names = sorted(r[0] for r in rows if r[0] != "confhub_schema")
    # tenants first: a reader of the file sees owners before what they own
    return sorted(names, key=lambda n: (n != "confhub_tenants", n))


def _encode(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return {"$b64": base64.b64encode(bytes(value)).decode("ascii")}
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict) and "$b64" in value:
        return base64.b64decode(value["$b64"])
    return value


@contextmanager
def _snapshot(store: Any) -> Iterator[Any]:
    """A connection reading one consistent snapshot of the whole database."""
    with store._reading() as conn:
        if store.backend == "sqlite":
            conn.execute("BEGIN")
            try:
                conn.execute("SELECT 1 FROM confhub_tenants LIMIT 1").fetchall()  # pin it
                yield conn
            finally:
                conn.execute("ROLLBACK")
        else:
            conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            try:
                yield conn
            finally:
                conn.execute("ROLLBACK")


def _schema_version(conn: Any) -> int:
    return int(conn.execute("SELECT MAX(version) FROM confhub_schema").fetchone()[0] or 0)


def _rows_of(conn: Any, backend: str, table: str) -> Any:
    """A cursor over every row of ``table`` that streams (PostgreSQL: a server-side cursor,
    so a big table is never held in memory at once)."""
    if backend == "sqlite":
        return conn.execute(f"SELECT * FROM {table}")
    cursor = conn.cursor(name=f"dump_{table}")
    cursor.itersize = _BATCH
    cursor.execute(f"SELECT * FROM {table}")
    return cursor


def dump(store: Any, out: IO[bytes], progress: Progress | None = None) -> dict[str, Any]:
    """Write the whole store to ``out`` (a binary file); returns the trailer's figures."""
    digest = hashlib.sha256()
    with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=1) as gz:

        def emit(item: Any) -> None:
            line = (json.dumps(item, separators=(",", ":"), ensure_ascii=False) + "\n"
                    ).encode("utf-8")
            digest.update(line)
            gz.write(line)

        with _snapshot(store) as conn:
            tables = _tables(conn, store.backend)
            counts = {t: int(conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0])
                      for t in tables}
            total = sum(counts.values())
            emit({"format": BACKUP_FORMAT, "format_version": BACKUP_FORMAT_VERSION,
                  "backend": store.backend, "schema": _schema_version(conn),
                  "created_at": now_micros(), "tables": counts})
            done = 0
            for table in tables:
                cursor = _rows_of(conn, store.backend, table)
                emit([table, [d[0] for d in cursor.description]])
                while batch := cursor.fetchmany(_BATCH):
                    for row in batch:
                        emit([table, [_encode(v) for v in row]])
                    done += len(batch)
                    if progress is not None:
                        progress(done, total)
        trailer = {"end": True, "rows": done, "sha256": digest.hexdigest()}
        gz.write((json.dumps(trailer) + "\n").encode("utf-8"))
    return {"tables": counts, "rows": done, "sha256": trailer["sha256"]}


def _bad(message: str) -> InvalidRequest:
    return InvalidRequest(f"not a usable confhub backup: {message}")


def _lines(path: str) -> Iterator[bytes]:
    try:
        with gzip.open(path, "rb") as gz:
            yield from gz
    except (OSError, EOFError) as exc:  # not gzip, or cut short
        raise _bad(f"{path} cannot be read ({exc})") from None


def read_header(path: str) -> dict[str, Any]:
    for line in _lines(path):
        header = json.loads(line)
        if not isinstance(header, dict) or header.get("format") != BACKUP_FORMAT:
            raise _bad(f"{path} does not start with a {BACKUP_FORMAT} header")
        return header
    raise _bad(f"{path} is empty")


def verify(path: str, progress: Progress | None = None) -> dict[str, Any]:
    """Check the whole file (format, checksum, row counts) without writing anything."""
    header = read_header(path)
    if header.get("format_version") != BACKUP_FORMAT_VERSION:
        raise _bad(f"format version {header.get('format_version')!r} is not supported")
    digest = hashlib.sha256()
    seen: dict[str, int] = {}
    trailer: dict[str, Any] | None = None
    total = sum(header.get("tables", {}).values())
    done = 0
    first = True
    for line in _lines(path):
        if trailer is not None:
            raise _bad("data after the end marker")
        item = json.loads(line)
        if isinstance(item, dict) and item.get("end"):
            trailer = item
            continue
        digest.update(line)
        if first:
            first = False
            continue
        if not isinstance(item, list) or len(item) != 2:
            raise _bad("a line is neither a table row nor the end marker")
        seen[item[0]] = seen.get(item[0], -1) + 1  # the first line of a table: its columns
        done += 1
        if progress is not None and done % _BATCH == 0:
            progress(done, total)
    if trailer is None:
        raise _bad("the file is cut short (no end marker)")
    if trailer.get("sha256") != digest.hexdigest():
        raise _bad("its checksum does not match its content (the file was altered)")
    if seen != header.get("tables"):
        raise _bad(f"row counts {seen} differ from the header's {header.get('tables')}")
    return header


def load(store: Any, path: str, *, force: bool = False,
         progress: Progress | None = None) -> dict[str, Any]:
    """Restore ``path`` into ``store`` in one transaction (all or nothing), after checking
    the whole file. Refuses a non-empty store unless ``force`` (which replaces it)."""
    header = verify(path)
    with store._writing() as conn:
        schema = _schema_version(conn)
        if header["schema"] != schema:
            raise _bad(f"it was made at confhub schema {header['schema']}, this store is at "
                       f"{schema}; restore with the confhub version that made it, then upgrade")
        tables = _tables(conn, store.backend)
        missing = sorted(set(header["tables"]) - set(tables))
        if missing:
            raise _bad(f"tables {missing} do not exist in this store")
        if not force and not _empty(conn, tables):
            raise AlreadyExists("the target store is not empty; restore into an empty store, "
                                "or pass --force to replace everything in it")
        for table in tables:
            conn.execute(f"DELETE FROM {table}")
        total = sum(header["tables"].values())
        done = 0
        columns: dict[str, list[str]] = {}
        pending: dict[str, list[list[Any]]] = {}

        def flush(table: str) -> None:
            rows = pending.pop(table, [])
            if rows:
                names = columns[table]
                marks = ", ".join([store.placeholder] * len(names))
                cursor = conn.cursor() if store.backend != "sqlite" else conn
                cursor.executemany(f"INSERT INTO {table} ({', '.join(names)}) VALUES ({marks})",
                                   rows)

        for index, line in enumerate(_lines(path)):
            item = json.loads(line)
            if index == 0 or isinstance(item, dict):
                continue
            table, values = item
            if table not in columns:
                columns[table] = values
                continue
            pending.setdefault(table, []).append([_decode(v) for v in values])
            if len(pending[table]) >= _BATCH:
                flush(table)
            done += 1
            if progress is not None and done % _BATCH == 0:
                progress(done, total)
        for table in list(pending):
            flush(table)
        if store.backend != "sqlite":
            for table in columns:
                if "id" in columns[table]:  # serial ids continue after the restored ones
                    conn.execute(
                        f"SELECT setval(seq::regclass, (SELECT COALESCE(MAX(id), 0) + 1 "
                        f"FROM {table}), false) FROM pg_get_serial_sequence('{table}', 'id') "
                        "AS seq WHERE seq IS NOT NULL")
    if progress is not None:
        progress(done, total)
    return {"tables": header["tables"], "rows": done, "schema": header["schema"],
            "backend": header["backend"], "created_at": header["created_at"]}


def _empty(conn: Any, tables: list[str]) -> bool:
    """Empty: no history, no token, no audit, no schema, and no tenant but ``default``."""
    for table in tables:
        if table == "confhub_tenants":
            row = conn.execute("SELECT COUNT(*) FROM confhub_tenants WHERE id <> 'default' "
                               "OR revision > 0").fetchone()
        else:
            row = conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()
        if row[0]:
            return False
    return True
