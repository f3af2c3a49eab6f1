"""Read-side use cases: lot listing, verification of a lot from the database, reconciliation."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from traceability.chain.registry import TraceRegistry
from traceability.domain import codec
from traceability.domain.findings import Verdict
from traceability.domain.hashing import event_hash, hash_hex
from traceability.domain.ids import from_hex, to_hex
from traceability.domain.merkle import MerkleTree
from traceability.domain.states import BatchStatus
from traceability.errors import ChainError
from traceability.services.chainops import chain_op_problems
from traceability.services.proof import build_bundle
from traceability.services.risk import lot_risk
from traceability.services.verify import verify_bundle
from traceability.store.repository import Repository


@dataclass(frozen=True)
class LotSummary:
    code: str
    product_th: str
    product_en: str
    gtin: str | None
    events: int
    anchored: int

    @property
    def status(self) -> str:
        if self.events == 0:
            return "empty"
        return "anchored" if self.anchored == self.events else "pending"

    def to_json(self) -> dict[str, Any]:
        return {
            "lot_code": self.code,
            "product": {"th": self.product_th, "en": self.product_en},
            "gtin": self.gtin,
            "events": self.events,
            "anchored": self.anchored,
            "status": self.status,
        }


def list_lots(session: Session) -> list[LotSummary]:
    repo = Repository(session)
    counts = repo.lot_anchor_counts()
    return [
        LotSummary(lot.code, lot.product_th, lot.product_en, lot.gtin, *counts.get(lot.code, (0, 0)))
        for lot in repo.lots()
    ]


def verify_lot(
    session: Session,
    registry: TraceRegistry,
    lot_code: str,
    *,
    confirmations: int,
    yield_tolerance: Decimal = Decimal("1.5"),
    evidence_dir: Path | None = None,
) -> Verdict:
    """The lot's verdict: its proof bundle checked as an importer would, plus the origin risk learned from
    the whole ledger (photos are read from ``evidence_dir``; without it only hashes already stored)."""
    bundle = build_bundle(session, lot_code, chain_id=registry.chain_id, contract=registry.address)
    risk = lot_risk(session, lot_code, evidence_dir, lineage=bundle.lineage_lots)
    return verify_bundle(
        bundle, registry, confirmations=confirmations, yield_tolerance=yield_tolerance, risk=risk
    )


@dataclass(frozen=True)
class Discrepancy:
    code: str
    message: str
    event_id: str | None = None
    batch_id: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "message": self.message,
            "event_id": self.event_id,
            "batch_id": self.batch_id,
        }


def reconcile(session: Session, registry: TraceRegistry) -> tuple[list[Discrepancy], dict[str, int]]:
    """Compare the SQL mirror with itself and with the chain: every stored body must still hash to its
    stored hash, every batch root must be the Merkle root of its events, every anchored root must be on
    chain in the block recorded, and every chain operation (enrolment, certification) must be finished with
    its effect on chain."""
    repo = Repository(session)
    problems: list[Discrepancy] = []
    events = repo.all_events()
    for row in events:
        try:
            recomputed = hash_hex(event_hash(codec.loads(row.body)))
        except (ValueError, KeyError, TypeError) as exc:
            problems.append(
                Discrepancy("body_unreadable", f"event {row.id}: body cannot be hashed: {exc}", str(row.id))
            )
            continue
        if recomputed != row.hash:
            problems.append(
                Discrepancy(
                    "hash_mismatch",
                    f"event {row.id} ({row.kind}): stored body hashes to {recomputed}, recorded {row.hash}",
                    str(row.id),
                )
            )
    batches = repo.batches_in(list(BatchStatus))
    for batch in batches:
        members = repo.batch_events(batch.id)
        hashes = [from_hex(h) for _, h in members]
        if not hashes or to_hex(MerkleTree(hashes).root) != batch.root:
            problems.append(
                Discrepancy(
                    "root_mismatch",
                    f"batch {batch.id}: its events no longer make root {batch.root}",
                    batch_id=batch.id,
                )
            )
        if batch.status != BatchStatus.ANCHORED:
            continue
        try:
            on_chain = registry.anchored_at(from_hex(batch.root))
            canonical = registry.block_hash(batch.block_number or 0)
        except ChainError as exc:
            problems.append(Discrepancy("chain_unavailable", str(exc), batch_id=batch.id))
            break
        if not on_chain:
            problems.append(
                Discrepancy(
                    "anchor_missing",
                    f"batch {batch.id}: root {batch.root} is not anchored on chain",
                    batch_id=batch.id,
                )
            )
        elif canonical != batch.block_hash:
            problems.append(
                Discrepancy(
                    "block_reorged",
                    f"batch {batch.id}: block {batch.block_number} is no longer canonical",
                    batch_id=batch.id,
                )
            )
    # Enrolments, certifications and revocations sent write-ahead: none may be left half-done.
    for op in chain_op_problems(session, registry):
        problems.append(Discrepancy(op.code, op.message))
    stats = {"events": len(events), "batches": len(batches), **repo.outbox_counts()}
    return problems, stats
