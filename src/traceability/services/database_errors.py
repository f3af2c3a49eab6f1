"""What a failing database means to a client: the driver's operational errors as the project's own errors.

A database that does not answer (PostgreSQL down or unreachable for a moment, a pool with no connection to
give within its timeout, SQLite locked by another process past the busy timeout) is ``DatabaseUnavailable``
(503 with ``Retry-After``); one that cannot grow (SQLite's "database or disk is full", PostgreSQL's
``disk_full``) is ``StorageFull`` (507). Either way the request's transaction was rolled back (the unit of
work commits once, at its end; only a connection lost during the commit itself leaves it unknown whether it
was stored), and the same request sent again is stored once: events carry their ``event_id`` /
``Idempotency-Key``. The top layers import no driver (``tests/test_layering.py``), so they register their
handler for :data:`DATABASE_ERRORS` and ask :func:`as_client_error` here.
"""

from __future__ import annotations

import logging

from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from traceability.errors import DatabaseUnavailable, StorageFull, TraceabilityError

log = logging.getLogger(__name__)

DATABASE_ERRORS: tuple[type[Exception], ...] = (OperationalError, InterfaceError, PoolTimeout)
"""Errors of the database's operation, not of the request: answered 503 or 507, never 500."""

# SQLite's primary result codes (sqlite3.h); Python's sqlite3 exposes them as ``sqlite_errorcode``.
_SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_FULL = 5, 6, 13
# PostgreSQL's SQLSTATE class 53 "insufficient resources": 53100 disk_full.
_PG_DISK_FULL = "53100"


def as_client_error(exc: Exception) -> TraceabilityError:
    """The error to answer for ``exc`` (one of :data:`DATABASE_ERRORS`), logged once with its cause; the
    message names no host, file or statement."""
    orig = getattr(exc, "orig", None)
    primary = getattr(orig, "sqlite_errorcode", -1) & 0xFF
    if primary == _SQLITE_FULL or getattr(orig, "sqlstate", None) == _PG_DISK_FULL:
        log.error("database storage full: %s", _cause(exc))
        return StorageFull("the database is out of storage space; nothing of this request was stored")
    log.warning("database unavailable: %s", _cause(exc))
    if primary in (_SQLITE_BUSY, _SQLITE_LOCKED):
        return DatabaseUnavailable(
            "the database is busy; send the same request again: it is never stored twice",
            code="database_busy",
        )
    return DatabaseUnavailable(
        "the database did not answer; send the same request again: it is never stored twice"
    )


def _cause(exc: Exception) -> str:
    """The driver's own message, first line only (SQLAlchemy appends the statement and its parameters)."""
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc)
    return f"{type(orig or exc).__name__}: {text.strip().splitlines()[0] if text.strip() else ''}"
