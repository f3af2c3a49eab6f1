"""How the engines are set up: SQLite's durability and PostgreSQL's pool."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError

from traceability.config import Settings
from traceability.services.runtime import Runtime
from traceability.store.database import make_engine

POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"


def test_sqlite_runs_in_wal_mode_with_normal_sync_and_foreign_keys(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'trace.db'}")
    try:
        with engine.connect() as conn:
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert conn.execute(text("PRAGMA synchronous")).scalar() == 1  # NORMAL
            assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
    finally:
        engine.dispose()


def test_a_committed_row_survives_the_process_that_wrote_it(tmp_path: Path) -> None:
    """A commit in WAL mode with synchronous=NORMAL is in the log when it returns: another process reads it
    even though the writer is killed without closing anything."""
    import subprocess
    import sys

    path = tmp_path / "crash.db"
    script = (
        "import os, sqlite3\n"
        f"c = sqlite3.connect({str(path)!r})\n"
        "c.execute('PRAGMA journal_mode=WAL'); c.execute('PRAGMA synchronous=NORMAL')\n"
        "c.execute('CREATE TABLE t (v TEXT)')\n"
        "c.execute(\"INSERT INTO t VALUES ('acknowledged')\"); c.commit()\n"
        "os._exit(9)  # no close, no checkpoint: as if killed\n"
    )
    assert subprocess.run([sys.executable, "-c", script], check=False).returncode == 9
    engine = make_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT v FROM t")).scalars().all() == ["acknowledged"]
    finally:
        engine.dispose()


def test_postgres_pool_is_sized_from_settings() -> None:
    runtime = Runtime(Settings(database_url=POSTGRES_URL, db_pool_size=7, db_max_overflow=3))
    try:
        pool = runtime.engine.pool
        assert pool.size() == 7 and pool._max_overflow == 3  # type: ignore[attr-defined]
        with runtime.engine.connect() as conn:
            assert conn.execute(text("SELECT 1")).scalar() == 1
    finally:
        runtime.engine.dispose()


def _backend_pid(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())


def _terminate(pid: int) -> None:
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,))  # waits until it is gone


def test_a_postgres_connection_that_died_while_idle_is_replaced_before_use() -> None:
    """A database restart while the pool sits idle: the first request afterwards gets a live connection."""
    engine = make_engine(POSTGRES_URL, pool_size=1, max_overflow=0, idle_ping_s=0.0)
    try:
        dead = _backend_pid(engine)
        _terminate(dead)
        assert _backend_pid(engine) != dead
    finally:
        engine.dispose()


def test_a_busy_postgres_connection_is_not_pinged_and_a_dead_one_fails_once() -> None:
    """Within the idle window the pool hands the connection straight out (no ping round trip per request):
    if it died meanwhile, that one use fails, the pool is invalidated, and the next use connects afresh."""
    engine = make_engine(POSTGRES_URL, pool_size=1, max_overflow=0, idle_ping_s=3600.0)
    try:
        dead = _backend_pid(engine)
        _terminate(dead)
        with pytest.raises(OperationalError):
            _backend_pid(engine)
        assert _backend_pid(engine) != dead
    finally:
        engine.dispose()
