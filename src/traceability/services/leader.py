"""One anchoring leader at a time: a PostgreSQL advisory lock, or a file lock beside a SQLite database."""

from __future__ import annotations

import fcntl
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from sqlalchemy import Engine, text

from traceability.errors import Conflict

# Any fixed 64-bit number, the same in every worker: "the anchoring leader".
LEADER_LOCK_KEY = 0x7472616365_01


def leader_lock_key(schema: str) -> int:
    """The advisory lock's key for the ledger in ``schema``. Advisory locks belong to the whole database, so
    ledgers kept in different schemas of one database (tenants, parallel test runs) each need a key of their
    own, or one's worker would wait forever behind the other's; ``public`` keeps the original key, so
    workers of an older release and of this one still exclude each other during an upgrade."""
    if schema == "public":
        return LEADER_LOCK_KEY
    digest = hashlib.blake2b(f"{LEADER_LOCK_KEY}:{schema}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


@contextmanager
def leadership(engine: Engine, lock_dir: Path, *, wait: bool) -> Iterator[None]:
    """Hold the leader lock for the block; with ``wait=False`` raise Conflict if another worker holds it."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            key = leader_lock_key(str(conn.execute(text("SELECT current_schema()")).scalar()))
            fn = "pg_advisory_lock" if wait else "pg_try_advisory_lock"
            got = conn.execute(text(f"SELECT {fn}(:k)"), {"k": key}).scalar()
            if not wait and not got:
                raise Conflict("another anchoring worker is the leader")
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                conn.commit()
        return
    lock_dir.mkdir(parents=True, exist_ok=True)
    handle: IO[str] = open(lock_dir / "worker.lock", "w")  # noqa: SIM115
    try:
        flags = fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB
        try:
            fcntl.flock(handle, flags)
        except BlockingIOError as exc:
            raise Conflict("another anchoring worker is the leader") from exc
        yield
    finally:
        handle.close()
