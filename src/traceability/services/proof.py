"""The proof bundle: one self-contained JSON document per lot that another implementation can check against
the chain alone (see DESIGN.md §7 and docs/proof-bundle.md)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from traceability.domain import codec
from traceability.domain.epcis import EPCIS_CONTEXT
from traceability.errors import NotFound
from traceability.store.repository import Repository

BUNDLE_FORMAT = "thai-trace-proof-bundle/1"


def build_bundle(session: Session, lot_code: str, *, chain_id: int, contract: str) -> dict[str, Any]:
    repo = Repository(session)
    if repo.lot(lot_code) is None:
        raise NotFound(f"unknown lot {lot_code}")
    lots = repo.lineage_lots(lot_code)
    rows = repo.events_touching(sorted(lots))
    anchors = repo.anchors_for([r.id for r in rows])
    events: list[dict[str, Any]] = []
    for row in rows:
        anchor = anchors.get(row.id)
        events.append(
            {
                "epcis": codec.loads(row.body),
                "hash": row.hash,
                "anchor": None
                if anchor is None
                else {
                    "root": anchor[0].root,
                    "proof": anchor[1],
                    "tx_hash": anchor[0].tx_hash,
                    "block_number": anchor[0].block_number,
                    "block_hash": anchor[0].block_hash,
                },
            }
        )
    certifications = [
        {
            "id": c.id,
            "lot_code": c.lot_code,
            "authority": c.authority_code,
            "officer": c.officer_address,
            "standard": c.standard,
            "typed_data": c.typed_data,
            "signature": c.signature,
            "tx_hash": c.tx_hash,
        }
        for c in repo.certifications_for(sorted(lots))
    ]
    return {
        "format": BUNDLE_FORMAT,
        "chain_id": chain_id,
        "contract": contract,
        "lot_code": lot_code,
        "lineage_lots": sorted(lots),
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "@context": EPCIS_CONTEXT,
        "hash_algorithm": "GS1 CBV 2.0 Event Hash ID (sha-256), anchored as bytes32",
        "merkle": "OpenZeppelin MerkleProof: leaf = keccak256(keccak256(abi.encode(bytes32))), sorted pairs",
        "events": events,
        "certifications": certifications,
    }
