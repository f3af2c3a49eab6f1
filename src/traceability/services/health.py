"""Health read-outs for operators: readiness (database and chain answer; how far anchoring lags) and the
outbox gauges behind ``/metrics``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from traceability.chain.registry import RegistryGone
from traceability.domain.states import BatchStatus
from traceability.errors import ConfigurationError
from traceability.services.runtime import Runtime
from traceability.store import models
from traceability.store.repository import Repository


@dataclass(frozen=True)
class OutboxGauges:
    pending_events: int
    # Age of the oldest event waiting to be anchored; 0 when none waits.
    anchor_lag_s: float


@dataclass(frozen=True)
class BatchGauges:
    by_status: dict[str, int]
    gas_used: int


@dataclass(frozen=True)
class Signer:
    """The anchor account's balance against the threshold below which anchoring is about to stall."""

    address: str
    balance_wei: int
    min_balance_wei: int

    @property
    def low(self) -> bool:
        return self.balance_wei < self.min_balance_wei


@dataclass(frozen=True)
class Readiness:
    database: str
    chain: dict[str, int] | str
    outbox: OutboxGauges | None
    # None with no chain; the error's name when the balance could not be read (no anchor key, say).
    signer: Signer | str | None = None

    @property
    def ready(self) -> bool:
        return self.database == "ok" and isinstance(self.chain, dict)

    def to_json(self) -> dict[str, Any]:
        checks: dict[str, Any] = {"database": self.database, "chain": self.chain}
        if self.outbox is not None:
            checks["pending_events"] = self.outbox.pending_events
            checks["anchor_lag_s"] = round(self.outbox.anchor_lag_s, 1)
        if isinstance(self.signer, Signer):
            checks["signer"] = {"address": self.signer.address, "balance_wei": self.signer.balance_wei}
            # Still ready when low (anchoring goes on until the balance runs out), but it says so.
            checks["low_balance"] = self.signer.low
        elif self.signer is not None:
            checks["signer"] = self.signer
        return {"status": "ready" if self.ready else "not_ready", "checks": checks}


def outbox_gauges(session: Session) -> OutboxGauges:
    repo = Repository(session)
    oldest = repo.oldest_pending_at()
    lag = 0.0 if oldest is None else (datetime.now(UTC) - oldest).total_seconds()
    return OutboxGauges(pending_events=repo.pending_count(), anchor_lag_s=lag)


def batch_gauges(session: Session) -> BatchGauges:
    """Batches by status and the gas all of them used: one grouped read of the (small) batches table."""
    rows = session.execute(
        select(models.Batch.status, func.count(), func.coalesce(func.sum(models.Batch.gas_used), 0)).group_by(
            models.Batch.status
        )
    ).all()
    by_status = {str(status): 0 for status in BatchStatus}
    gas = 0
    for status, count, used in rows:
        by_status[str(status)] = int(count)
        gas += int(used or 0)
    return BatchGauges(by_status=by_status, gas_used=gas)


def _head(runtime: Runtime) -> int:
    """The chain's head, read with a probe that the deployed registry still answers there (one round trip):
    a node restarted without its state answers blocks but holds no registry. With none deployed yet (before
    ``trace deploy``), the head alone."""
    try:
        registry = runtime.registry
    except ConfigurationError:
        return int(runtime.w3.eth.block_number)
    return registry.head_checked()


def signer_balance(runtime: Runtime) -> Signer:
    address = runtime.account.address
    balance = int(runtime.w3.eth.get_balance(address))
    return Signer(address=address, balance_wei=balance, min_balance_wei=runtime.settings.min_balance_wei)


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
        chain = {"chain_id": runtime.chain_id, "head": _head(runtime)}
    except RegistryGone as exc:  # a chain reset: nothing can be anchored or verified until `trace deploy`
        chain = f"error: RegistryGone: {exc.message}"
    except Exception as exc:  # unreachable node, same reasoning
        chain = f"error: {type(exc).__name__}"
    signer: Signer | str | None = None
    if isinstance(chain, dict):
        try:
            signer = signer_balance(runtime)
        except Exception as exc:  # no anchor key configured, or the node failed just now: said, not raised
            signer = f"error: {type(exc).__name__}"
    return Readiness(database=database, chain=chain, outbox=outbox, signer=signer)
