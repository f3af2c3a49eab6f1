"""Health read-outs for operators: readiness (database and chain answer; how far anchoring lags) and the
outbox gauges behind ``/metrics``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from traceability.services.runtime import Runtime
from traceability.store.repository import Repository


@dataclass(frozen=True)
class OutboxGauges:
    pending_events: int
    # Age of the oldest event waiting to be anchored; 0 when none waits.
    anchor_lag_s: float


@dataclass(frozen=True)
class Readiness:
    database: str
    chain: dict[str, int] | str
    outbox: OutboxGauges | None

    @property
    def ready(self) -> bool:
        return self.database == "ok" and isinstance(self.chain, dict)

    def to_json(self) -> dict[str, Any]:
        checks: dict[str, Any] = {"database": self.database, "chain": self.chain}
        if self.outbox is not None:
            checks["pending_events"] = self.outbox.pending_events
            checks["anchor_lag_s"] = round(self.outbox.anchor_lag_s, 1)
        return {"status": "ready" if self.ready else "not_ready", "checks": checks}


def outbox_gauges(session: Session) -> OutboxGauges:
    repo = Repository(session)
    oldest = repo.oldest_pending_at()
    lag = 0.0 if oldest is None else (datetime.now(UTC) - oldest).total_seconds()
    return OutboxGauges(pending_events=repo.pending_count(), anchor_lag_s=lag)


def readiness(session: Session, runtime: Runtime) -> Readiness:
    """Ask the database and the chain; a failure of either is reported, never raised."""
    outbox: OutboxGauges | None = None
    try:
        session.execute(text("SELECT 1"))
        outbox = outbox_gauges(session)
        database = "ok"
    except Exception as exc:  # any driver error means "not ready"
        # Leave the session clean, so the request's commit at the end has nothing left to fail on.
        session.rollback()
        database = f"error: {type(exc).__name__}"
    chain: dict[str, int] | str
    try:
        chain = {"chain_id": runtime.chain_id, "head": int(runtime.w3.eth.block_number)}
    except Exception as exc:  # unreachable node, same reasoning
        chain = f"error: {type(exc).__name__}"
    return Readiness(database=database, chain=chain, outbox=outbox)
