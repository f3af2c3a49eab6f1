"""One anchoring leader at a time: a PostgreSQL advisory lock, or a file lock beside a SQLite database."""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from sqlalchemy import Engine, text

from traceability.errors import Conflict

# Any fixed 64-bit number, the same in every worker: "the anchoring leader".
LEADER_LOCK_KEY = 0x7472616365_01


@contextmanager
def leadership(engine: Engine, lock_dir: Path, *, wait: bool) -> Iterator[None]:
    """Hold the leader lock for the block; with ``wait=False`` raise Conflict if another worker holds it."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            fn = "pg_advisory_lock" if wait else "pg_try_advisory_lock"
            got = conn.execute(text(f"SELECT {fn}(:k)"), {"k": LEADER_LOCK_KEY}).scalar()
            if not wait and not got:
                raise Conflict("another anchoring worker is the leader")
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": LEADER_LOCK_KEY})
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
