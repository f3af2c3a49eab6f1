"""`trace backup` / `trace restore`: the whole SQL mirror in one portable file, the same for SQLite and
PostgreSQL (so a SQLite demo can move to PostgreSQL).

The file is gzip'd JSON lines:

1. a header: ``{"format": "trace-backup", "version": 1, "revision": <alembic revision>, "created_at",
   "dialect", "tables": [{"name", "columns", "rows"}, ...]}``, tables in foreign-key order
   (``Base.metadata.sorted_tables``), with each table's row count;
2. for each table in that order, a line ``{"table": name}`` followed by one JSON array per row (values in
   the header's column order, ordered by primary key);
3. a last line ``{"end": true}``.

Values are encoded by their column's type so they read back exactly: UUIDs as their string, times as ISO 8601
with their offset, decimals as strings, bytes as base64, JSON columns as JSON, the rest as JSON scalars.

The backup reads everything in one transaction (REPEATABLE READ on PostgreSQL, one read transaction on
SQLite), so the file is one consistent snapshot while servers keep recording, and it streams: rows are
fetched and written a chunk at a time, never all held in memory. A restore writes in one transaction (all
or nothing), into an empty database at the file's alembic revision, and moves PostgreSQL's sequences past the
restored ids.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import uuid
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

from sqlalchemy import (
    JSON,
    Column,
    Connection,
    Engine,
    LargeBinary,
    Numeric,
    Table,
    Uuid,
    func,
    inspect,
    literal,
    select,
    text,
)
from sqlalchemy.exc import StatementError
from sqlalchemy.sql.sqltypes import Date, DateTime, Float, TypeEngine
from sqlalchemy.types import TypeDecorator

from traceability.errors import Conflict, InvalidInput
from traceability.store.models import Base

FORMAT = "trace-backup"
FORMAT_VERSION = 1
CHUNK = 1000
"""Rows fetched from the database and inserted into it at a time."""


@dataclass(frozen=True)
class BackupSummary:
    path: Path
    revision: str
    created_at: datetime
    rows: dict[str, int]

    def to_json(self) -> dict[str, Any]:
        return {
            "file": str(self.path),
            "revision": self.revision,
            "created_at": self.created_at.isoformat(),
            "tables": len(self.rows),
            "rows": sum(self.rows.values()),
            "counts": self.rows,
        }


def _tables() -> list[Table]:
    return list(Base.metadata.sorted_tables)


# ------------------------------------------------------------------------------------------ value encoding


def _kind(column: Column[Any]) -> str:
    col_type: TypeEngine[Any] = column.type
    while isinstance(col_type, TypeDecorator):
        col_type = col_type.impl_instance
    if isinstance(col_type, Uuid):
        return "uuid"
    if isinstance(col_type, JSON):
        return "json"
    if isinstance(col_type, DateTime):
        return "datetime"
    if isinstance(col_type, Date):
        return "date"
    if isinstance(col_type, Numeric) and not isinstance(col_type, Float):
        return "decimal"
    if isinstance(col_type, LargeBinary):
        return "bytes"
    try:
        python_type = col_type.python_type
    except NotImplementedError:  # SQLAlchemy's answer for a type that names no Python type: kept as JSON
        return "plain"
    return _SCALARS.get(python_type, "plain")


# Scalars kept as JSON scalars; restore checks each value has its column's type (SQLite would store a string
# in an integer column without a word).
_SCALARS: dict[type, str] = {bool: "bool", int: "int", float: "float", str: "str"}
_SCALAR_TYPES: dict[str, tuple[type, ...]] = {
    "bool": (bool,),
    "int": (int,),
    "float": (int, float),
    "str": (str,),
}


def _encode(kind: str, value: Any) -> Any:
    if value is None or kind in ("plain", "json") or kind in _SCALAR_TYPES:
        return value
    if kind == "uuid":
        return str(value)
    if kind in ("datetime", "date"):
        return value.isoformat()
    if kind == "decimal":
        return str(value)
    if kind == "bytes":
        return base64.b64encode(bytes(value)).decode("ascii")
    raise AssertionError(kind)


def _decode(kind: str, value: Any) -> Any:
    if value is None or kind in ("plain", "json"):
        return value
    if kind in _SCALAR_TYPES:
        if not isinstance(value, _SCALAR_TYPES[kind]) or (kind != "bool" and isinstance(value, bool)):
            raise ValueError(f"a {kind} value was expected, not {value!r}")
        return value
    if not isinstance(value, str):
        raise ValueError(f"a {kind} value must be a string, not {value!r}")
    if kind == "uuid":
        return uuid.UUID(value)
    if kind == "datetime":
        when = datetime.fromisoformat(value)
        # Every stored time is aware (models.UTCDateTime); a naive one would be refused on insert anyway.
        return when if when.tzinfo is not None else when.replace(tzinfo=UTC)
    if kind == "date":
        return date.fromisoformat(value)
    if kind == "decimal":
        return Decimal(value)
    if kind == "bytes":
        return base64.b64decode(value, validate=True)
    raise AssertionError(kind)


def _line(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")) + "\n"


# ----------------------------------------------------------------------------------------------- revision


def _revision(conn: Connection) -> str | None:
    if not inspect(conn).has_table("alembic_version"):
        return None
    rows = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    return ",".join(sorted(str(r) for r in rows)) or None


# ------------------------------------------------------------------------------------------------- backup


def backup(
    engine: Engine, path: Path, *, on_table: Callable[[str, int], None] | None = None
) -> BackupSummary:
    """Write the whole database to ``path`` (gzip'd JSON lines), read in one transaction: one consistent
    snapshot while the servers keep recording. Written beside ``path`` first and renamed at the end, so a
    failed backup never leaves a half file under the name. ``on_table(name, rows)`` is told of each table
    written (progress)."""
    path = Path(path)
    partial = path.with_name(path.name + ".partial")
    try:
        with _snapshot(engine) as conn:
            revision = _revision(conn)
            if revision is None:
                raise InvalidInput("the database is not migrated (no alembic revision): nothing to back up")
            tables = _tables()
            counts = {
                t.name: int(conn.execute(select(func.count()).select_from(t)).scalar_one()) for t in tables
            }
            created_at = datetime.now(UTC)
            header = {
                "format": FORMAT,
                "version": FORMAT_VERSION,
                "revision": revision,
                "created_at": created_at.isoformat(),
                "dialect": engine.dialect.name,
                "tables": [
                    {"name": t.name, "columns": [c.name for c in t.columns], "rows": counts[t.name]}
                    for t in tables
                ],
            }
            with gzip.open(partial, "wt", encoding="utf-8") as out:
                out.write(_line(header))
                for table in tables:
                    written = _write_table(conn, table, out)
                    if written != counts[table.name]:  # the snapshot was not one: never expected
                        raise Conflict(f"table {table.name} changed during the backup: try again")
                    if on_table is not None:
                        on_table(table.name, written)
                out.write(_line({"end": True}))
        os.replace(partial, path)
    except OSError as exc:
        raise InvalidInput(f"cannot write the backup {path}: {exc.strerror or exc}") from exc
    finally:
        partial.unlink(missing_ok=True)
    return BackupSummary(path, revision, created_at, counts)


@contextmanager
def _snapshot(engine: Engine) -> Iterator[Connection]:
    """A connection in one read transaction: REPEATABLE READ on PostgreSQL (one snapshot for every
    statement), an explicit BEGIN on SQLite (pysqlite would otherwise run each SELECT on its own, outside any
    transaction; in WAL mode the snapshot is taken at the first read, and writers carry on beside it)."""
    sqlite = engine.dialect.name == "sqlite"
    level = "AUTOCOMMIT" if sqlite else "REPEATABLE READ"
    with engine.connect().execution_options(isolation_level=level) as conn:
        if sqlite:
            conn.exec_driver_sql("BEGIN")
        else:
            conn.begin()
            conn.exec_driver_sql("SET TRANSACTION READ ONLY")
        try:
            yield conn
        finally:
            if sqlite:
                conn.exec_driver_sql("ROLLBACK")
            else:
                conn.rollback()


def _write_table(conn: Connection, table: Table, out: IO[str]) -> int:
    columns = list(table.columns)
    kinds = [_kind(c) for c in columns]
    out.write(_line({"table": table.name}))
    query = select(*columns).order_by(*table.primary_key.columns)
    written = 0
    result = conn.execution_options(stream_results=True, yield_per=CHUNK).execute(query)
    for partition in result.partitions():
        for row in partition:
            out.write(_line([_encode(k, v) for k, v in zip(kinds, row, strict=True)]))
            written += 1
    return written


# ------------------------------------------------------------------------------------------------ restore


def restore(engine: Engine, path: Path) -> BackupSummary:
    """Load the backup at ``path`` into the database of ``engine``, which must be empty and migrated to the
    file's revision. One transaction: on any error nothing is written."""
    path = Path(path)
    tables = {t.name: t for t in _tables()}
    try:
        with gzip.open(path, "rt", encoding="utf-8") as source:
            lines = _lines(source, path)
            header = _header(next(lines, None), path)
            with engine.begin() as conn:
                _check_target(conn, header)
                counts = _load(conn, header, tables, lines, path)
                if conn.dialect.name == "postgresql":
                    _reset_sequences(conn, list(tables.values()))
    except FileNotFoundError:
        raise InvalidInput(f"no such backup file: {path}") from None
    except (OSError, EOFError, zlib.error, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{path} is not a readable backup (truncated or not gzip'd?): {exc}") from exc
    return BackupSummary(path, header["revision"], datetime.fromisoformat(header["created_at"]), counts)


def _lines(source: IO[str], path: Path) -> Iterator[Any]:
    for number, line in enumerate(source, start=1):
        try:
            yield json.loads(line)
        except ValueError as exc:
            raise InvalidInput(f"{path}: line {number} is not JSON: {exc}") from None


def _header(header: Any, path: Path) -> dict[str, Any]:
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise InvalidInput(f"{path} is not a trace backup (no {FORMAT!r} header)")
    if header.get("version") != FORMAT_VERSION:
        raise InvalidInput(
            f"{path} is a backup of format version {header.get('version')!r}; this trace reads version "
            f"{FORMAT_VERSION} only"
        )
    if not isinstance(header.get("revision"), str) or not isinstance(header.get("tables"), list):
        raise InvalidInput(f"{path}: the header names no revision or tables")
    try:
        datetime.fromisoformat(header["created_at"])
    except (KeyError, TypeError, ValueError):
        raise InvalidInput(f"{path}: the header's created_at is not a time") from None
    return header


def _check_target(conn: Connection, header: dict[str, Any]) -> None:
    revision = _revision(conn)
    wanted = header["revision"]
    if revision is None:
        raise Conflict(
            "the target database is not migrated: run `trace migrate` on a fresh database first (the backup "
            f"is of revision {wanted})"
        )
    if revision != wanted:
        raise Conflict(
            f"the target database is at revision {revision}, the backup at {wanted}: restore into a fresh "
            f"database migrated to {wanted} (with the trace version that made the backup), then upgrade "
            "it with `trace migrate`"
        )
    for table in _tables():
        if conn.execute(select(literal(1)).select_from(table).limit(1)).first() is not None:
            raise Conflict(
                f"the target database is not empty (table {table.name} has rows): restore only into a fresh "
                "database made by `trace migrate`"
            )


def _load(
    conn: Connection, header: dict[str, Any], tables: dict[str, Table], lines: Iterator[Any], path: Path
) -> dict[str, int]:
    listed = header["tables"]
    names = [t.get("name") if isinstance(t, dict) else None for t in listed]
    if sorted(n for n in names if isinstance(n, str)) != sorted(tables) or len(names) != len(tables):
        raise InvalidInput(f"{path}: its tables are not this schema's (the header lists {names})")
    counts: dict[str, int] = {}
    for entry in listed:
        table = tables[entry["name"]]
        columns = [c.name for c in table.columns]
        if entry.get("columns") != columns:
            raise InvalidInput(f"{path}: table {table.name} has other columns than this schema's")
        marker = next(lines, None)
        if marker != {"table": table.name}:
            raise InvalidInput(f"{path}: table {table.name} missing where expected (truncated file?)")
        rows = entry.get("rows")
        if not isinstance(rows, int) or isinstance(rows, bool) or rows < 0:
            raise InvalidInput(f"{path}: the header gives no row count for table {table.name}")
        counts[table.name] = _load_table(conn, table, lines, rows, path)
    if next(lines, None) != {"end": True}:
        raise InvalidInput(f"{path}: no end marker after the last table (truncated file?)")
    if next(lines, None) is not None:
        raise InvalidInput(f"{path}: lines after the end marker")
    return counts


def _load_table(conn: Connection, table: Table, lines: Iterator[Any], expected: int, path: Path) -> int:
    columns = list(table.columns)
    kinds = [_kind(c) for c in columns]
    names = [c.key for c in columns]
    chunk: list[dict[str, Any]] = []
    loaded = 0
    for _ in range(expected):
        row = next(lines, None)
        if not isinstance(row, list) or len(row) != len(columns):
            raise InvalidInput(
                f"{path}: table {table.name} has {loaded + len(chunk)} of its {expected} rows (truncated "
                "or garbled file?)"
            )
        try:
            chunk.append({n: _decode(k, v) for n, k, v in zip(names, kinds, row, strict=True)})
        except ValueError as exc:
            raise InvalidInput(f"{path}: table {table.name}: a garbled value: {exc}") from None
        if len(chunk) == CHUNK:
            loaded += _insert(conn, table, chunk, path)
            chunk = []
    if chunk:
        loaded += _insert(conn, table, chunk, path)
    return loaded


def _insert(conn: Connection, table: Table, rows: Sequence[dict[str, Any]], path: Path) -> int:
    try:
        conn.execute(table.insert(), list(rows))
    except StatementError as exc:
        raise InvalidInput(
            f"{path}: rows of table {table.name} refused by the database: {exc.orig}"
        ) from None
    return len(rows)


def _reset_sequences(conn: Connection, tables: list[Table]) -> None:
    """Move each serial/identity column's sequence past the restored ids, so new rows get fresh ones."""
    for table in tables:
        for column in table.primary_key.columns:
            sequence = conn.execute(
                text("SELECT pg_get_serial_sequence(:table, :column)"),
                {"table": table.name, "column": column.name},
            ).scalar_one()
            if sequence is None:
                continue
            conn.execute(
                text(
                    f'SELECT setval(:seq, COALESCE((SELECT MAX("{column.name}") FROM "{table.name}"), 0) '
                    "+ 1, false)"
                ),
                {"seq": sequence},
            )
