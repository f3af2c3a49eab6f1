"""Build a lot's proof bundle (``traceability.domain.bundle.ProofBundle``) from the database."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.orm import Session

from traceability.domain import codec
from traceability.domain.bundle import BundleAnchor, BundleCertification, BundleEvent, ProofBundle
from traceability.domain.epcis import EPCIS_CONTEXT
from traceability.errors import NotFound
from traceability.store.repository import Repository


def build_bundle(session: Session, lot_code: str, *, chain_id: int, contract: str) -> ProofBundle:
    """Every event touching the lot or a lot it was packed from, each with its anchor, and the signed
    certifications of those lots."""
    repo = Repository(session)
    if repo.lot(lot_code) is None:
        raise NotFound(f"unknown lot {lot_code}")
    lots = repo.lineage_lots(lot_code)
    rows = repo.events_touching(sorted(lots))
    anchors = repo.anchors_for([r.id for r in rows])
    events = []
    for row in rows:
        anchor = anchors.get(row.id)
        events.append(
            BundleEvent(
                epcis=codec.loads(row.body),
                hash=row.hash,
                anchor=None
                if anchor is None
                else BundleAnchor(
                    root=anchor[0].root,
                    proof=anchor[1],
                    tx_hash=anchor[0].tx_hash or "",
                    block_number=anchor[0].block_number or 0,
                    block_hash=anchor[0].block_hash or "",
                ),
            )
        )
    certifications = [
        BundleCertification(
            id=c.id,
            lot_code=c.lot_code,
            authority=c.authority_code,
            officer=c.officer_address,
            standard=c.standard,
            typed_data=c.typed_data,
            signature=c.signature,
            tx_hash=c.tx_hash,
        )
        for c in repo.certifications_for(sorted(lots))
    ]
    return ProofBundle(
        chain_id=chain_id,
        contract=contract,
        lot_code=lot_code,
        lineage_lots=sorted(lots),
        generated_at=datetime.now(UTC).replace(microsecond=0),
        context=EPCIS_CONTEXT,
        events=events,
        certifications=certifications,
    )
