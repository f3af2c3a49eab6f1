"""The anchoring worker process: one leader at a time, then the anchoring loop."""

from __future__ import annotations

import fcntl
import logging
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from sqlalchemy import Engine, text

from traceability.errors import Conflict
from traceability.services.anchoring import Anchorer, AnchorStats, run_forever
from traceability.services.runtime import Runtime

log = logging.getLogger(__name__)
# Any fixed 64-bit number, the same in every worker: "the anchoring leader".
LEADER_LOCK_KEY = 0x7472616365_01


@contextmanager
def leadership(engine: Engine, lock_dir: Path, *, wait: bool) -> Iterator[None]:
    """Hold the leader lock for the block: a Postgres advisory lock, or a file lock beside a SQLite file."""
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


def make_anchorer(rt: Runtime) -> Anchorer:
    s = rt.settings
    return Anchorer(
        rt.sessions,
        rt.registry,
        batch_max=s.batch_max,
        confirmations=s.confirmations,
        receipt_timeout_s=s.receipt_timeout_s,
        stuck_tx_s=s.stuck_tx_s,
    )


def run_worker(rt: Runtime, *, once: bool) -> AnchorStats:
    anchorer = make_anchorer(rt)
    with leadership(rt.engine, rt.settings.var_dir, wait=not once):
        if once:
            return anchorer.run_once()
        stopping = False

        def _stop(*_: object) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
        log.info(
            "anchoring worker leading: batch_max=%s interval=%ss",
            anchorer.batch_max,
            rt.settings.batch_interval_s,
        )
        run_forever(anchorer, interval_s=rt.settings.batch_interval_s, stop=lambda: stopping)
        return anchorer.stats
