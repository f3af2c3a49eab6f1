"""Read-side use cases: lot listing, verification of a lot from the database, reconciliation."""

from __future__ import annotations

from collections.abc import Sequence
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
from traceability.store.models import Batch
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
    root: str | None = None

    @property
    def not_final(self) -> bool:
        """A finding that says "not yet" rather than "wrong": it clears by itself once blocks come."""
        return self.code in NOT_FINAL_CODES

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "message": self.message,
            "event_id": self.event_id,
            "batch_id": self.batch_id,
            "root": self.root,
        }


#: Findings of anchoring still under way (``trace reconcile`` exits 3 when these are all it found).
NOT_FINAL_CODES = frozenset({"anchor_not_final"})


def reconcile(
    session: Session,
    registry: TraceRegistry,
    *,
    confirmations: int | None = None,
    logs_from_block: int | None = None,
) -> tuple[list[Discrepancy], dict[str, int]]:
    """Compare the SQL mirror with itself and with the chain: every stored body must still hash to its
    stored hash, every batch root must be the Merkle root of its events, every anchored root must be on
    chain in the block recorded, and every chain operation (enrolment, certification) must be finished with
    its effect on chain. Also: no event row may be missing (a batch short of its events, a ``prev`` naming no
    stored event), every batch must be final (``confirmations``: blocks on top of an anchored one), and,
    given ``logs_from_block``, every root the registry's ``Anchored`` logs hold from there must be a batch's
    (a root none explains was anchored by someone else holding the anchor key)."""
    repo = Repository(session)
    problems: list[Discrepancy] = []
    events = repo.all_events()
    stored_hashes = {row.hash for row in events}
    for row in events:
        try:
            body = codec.loads(row.body)
            recomputed = hash_hex(event_hash(body))
        except (ValueError, KeyError, TypeError) as exc:
            problems.append(
                Discrepancy("body_unreadable", f"event {row.id}: body cannot be hashed: {exc}", str(row.id))
            )
            continue
        problems += _missing_prev(row.id, row.kind, body, stored_hashes)
        if recomputed != row.hash:
            problems.append(
                Discrepancy(
                    "hash_mismatch",
                    f"event {row.id} ({row.kind}): stored body hashes to {recomputed}, recorded {row.hash}",
                    str(row.id),
                )
            )
    batches = repo.batches_in(list(BatchStatus))
    orphans: dict[int, list[str]] = {}
    for batch_id, event_id in repo.orphan_batch_events():
        orphans.setdefault(batch_id, []).append(str(event_id))
    for batch in batches:
        members = repo.batch_events(batch.id)
        problems += _missing_members(batch.id, batch.event_count, len(members), orphans.get(batch.id, []))
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
    problems += _not_final(batches, registry, confirmations)
    if logs_from_block is not None:
        problems += _unexplained_roots(batches, registry, logs_from_block)
    # Enrolments, certifications and revocations sent write-ahead: none may be left half-done.
    for op in chain_op_problems(session, registry):
        problems.append(Discrepancy(op.code, op.message))
    stats = {"events": len(events), "batches": len(batches), **repo.outbox_counts()}
    return problems, stats


def _missing_prev(event_id: Any, kind: str, body: Any, stored: set[str]) -> list[Discrepancy]:
    """A gap in a lot's hash chain: ``tt:prev`` names an event no row holds (deleted from the mirror)."""
    missing = []
    named = body.get("tt:prev", []) if isinstance(body, dict) else []
    for ni in named if isinstance(named, list) else []:
        try:
            previous = hash_hex(ni)
        except (ValueError, TypeError):
            continue  # a body edited into nonsense: its hash no longer matches, reported as such
        if previous not in stored:
            missing.append(
                Discrepancy(
                    "event_missing",
                    f"event {event_id} ({kind}) names previous event {previous}, which no row holds",
                    str(event_id),
                )
            )
    return missing


def _missing_members(batch_id: int, expected: int, present: int, orphans: list[str]) -> list[Discrepancy]:
    """A batch whose event rows are fewer than it was built from (each leaf with no row named by its id)."""
    out = [
        Discrepancy(
            "event_missing", f"batch {batch_id}: its event {event_id} has no event row", event_id, batch_id
        )
        for event_id in orphans
    ]
    if present < expected and not orphans:  # the leaf rows went with the events: only the count is left
        out.append(
            Discrepancy(
                "event_missing",
                f"batch {batch_id}: {expected - present} of its {expected} event rows are missing",
                batch_id=batch_id,
            )
        )
    return out


def _not_final(
    batches: Sequence[Batch], registry: TraceRegistry, confirmations: int | None
) -> list[Discrepancy]:
    """Batches not final yet: written ahead and not mined, mined and not marked anchored, or (given
    ``confirmations``) anchored with fewer blocks on top than now required."""
    out = []
    head: int | None = None
    for batch in batches:
        if batch.status == BatchStatus.SENDING:
            sent = f", tx {batch.tx_hash}" if batch.tx_hash else ", not sent yet"
            out.append(_not_final_finding(batch, f"written ahead, not mined{sent}"))
            continue
        if batch.block_number is None or (batch.status == BatchStatus.ANCHORED and not confirmations):
            continue
        if head is None:
            try:
                head = registry.head()
            except ChainError:
                return out  # the anchor checks above have said the chain is unavailable
        have = head - batch.block_number
        if batch.status == BatchStatus.MINED:
            wanted = f" of {confirmations}" if confirmations is not None else ""
            out.append(
                _not_final_finding(
                    batch,
                    f"mined in block {batch.block_number}, {have}{wanted} confirmation(s), not final",
                )
            )
        elif confirmations is not None and have < confirmations:
            out.append(
                _not_final_finding(
                    batch,
                    f"anchored in block {batch.block_number}, now {have} of the {confirmations} "
                    "confirmations TRACE_CONFIRMATIONS asks",
                )
            )
    return out


def _not_final_finding(batch: Batch, why: str) -> Discrepancy:
    return Discrepancy("anchor_not_final", f"batch {batch.id} (root {batch.root}): {why}", batch_id=batch.id)


def _unexplained_roots(
    batches: Sequence[Batch], registry: TraceRegistry, from_block: int
) -> list[Discrepancy]:
    """Roots on chain that no batch row holds: anchored by another holder of the anchor key (stolen, or a
    second installation writing to this registry), or batch rows lost from the database."""
    known = {batch.root.lower() for batch in batches}
    try:
        logs = registry.anchored_logs(from_block)
    except ChainError as exc:
        return [Discrepancy("chain_unavailable", f"cannot read the registry's Anchored logs: {exc.message}")]
    return [
        Discrepancy(
            "unexplained_root",
            f"root {log.root} ({log.count} events) was anchored in block {log.block_number} by tx "
            f"{log.tx_hash}, and no batch row holds it",
            root=log.root,
        )
        for log in logs
        if log.root.lower() not in known
    ]
