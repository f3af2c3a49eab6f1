"""Engine and session factories, and schema migration (Alembic is the schema: never ``create_all``)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection

# Shipped inside the package, so an installed wheel (not only a source checkout) can migrate.
MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"


def make_engine(
    url: str,
    *,
    pool_size: int = 20,
    max_overflow: int = 20,
    idle_ping_s: float | None = None,
    **kwargs: Any,
) -> Engine:
    """An engine for ``url``: SQLite with WAL (one file, readers beside the writer), or PostgreSQL through
    psycopg 3 with a pool of ``pool_size`` connections and ``max_overflow`` more under load, each pinged
    before use when it has been idle for ``idle_ping_s`` (default ``IDLE_PING_S``)."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # A file database gets the server's pool too: with SQLAlchemy's default 5 + 10 a busy server would
        # open (and run the pragmas below for) a new connection on most requests.
        sized = {"pool_size": pool_size, "max_overflow": max_overflow} if path and path != ":memory:" else {}
        engine = create_engine(url, connect_args={"timeout": 30}, **sized, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            # WAL lets the web server read while the worker writes; foreign keys are off by default.
            cur.execute("PRAGMA journal_mode=WAL")
            # In WAL mode, NORMAL syncs the log at each checkpoint, not at each commit: a committed (and so
            # acknowledged) event is in the WAL file when the commit returns, so it survives a crash of the
            # process; only a power cut or OS crash may lose the last commits. FULL would fsync every commit,
            # several times slower on a phone-farm's cheap disk; the chain anchors what survives.
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    if "connect_timeout" not in url:
        # Unset, libpq waits for the operating system to give up on an unanswered connect (minutes): a
        # request would hang instead of answering 503 while the database is unreachable.
        kwargs["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT_S, **kwargs.get("connect_args", {})}
    engine = create_engine(url, pool_size=pool_size, max_overflow=max_overflow, **kwargs)
    _ping_when_idle(engine, IDLE_PING_S if idle_ping_s is None else idle_ping_s)
    return engine


IDLE_PING_S = 10.0
"""A pooled PostgreSQL connection unused for longer than this is pinged before it is handed out."""

CONNECT_TIMEOUT_S = 10
"""Seconds to open a PostgreSQL connection before a request gives up (503), unless the URL sets its own."""


def _ping_when_idle(engine: Engine, idle_ping_s: float) -> None:
    """Check a pooled connection before use only when it has sat idle for ``idle_ping_s``.

    ``pool_pre_ping`` would ping on every checkout: one more round trip and statement per request (a
    single-event request makes about a dozen), for connections that were in use a moment ago. What the ping
    is for is a connection that died while idle (a database restart or failover, an idle timeout in a proxy);
    a dead one is discarded and replaced before the request sees it. A connection that dies while busy
    fails its statement either way; SQLAlchemy then invalidates the whole pool, so one request per
    connection in use at that moment fails (rolled back, never acknowledged) and the next get new ones."""

    @event.listens_for(engine, "checkin")
    def _idle_since(_dbapi_conn: Any, record: ConnectionPoolEntry) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping(dbapi_conn: Any, record: ConnectionPoolEntry, _proxy: PoolProxiedConnection) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < idle_ping_s:
            return
        try:
            engine.dialect.do_ping(dbapi_conn)
        except engine.dialect.loaded_dbapi.Error as exc:
            # The pool discards this connection and checks out (or opens) another.
            raise DisconnectionError(f"a pooled connection died while idle: {exc}") from exc


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """The one place outside request handling that commits: commit on success, roll back on error."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def migrate(url: str, revision: str = "head") -> None:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(url), revision)
