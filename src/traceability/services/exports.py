"""The EPCIS 2.0 JSON-LD export of a lot's lineage (the FSMA 204 spreadsheet is ``services/fsma204.py``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from traceability.domain import codec
from traceability.domain.epcis import epcis_document, with_event_hash_id
from traceability.errors import NotFound
from traceability.services.identifiers import master_data
from traceability.store.repository import Repository


def _lineage_rows(session: Session, lot_code: str) -> list[dict[str, Any]]:
    repo = Repository(session)
    if repo.lot(lot_code) is None:
        raise NotFound(f"unknown lot {lot_code}")
    return [codec.loads(r.body) for r in repo.events_touching(sorted(repo.lineage_lots(lot_code)))]


def export_epcis(session: Session, lot_code: str) -> dict[str, Any]:
    """The lot's whole lineage as one EPCIS 2.0 ``EPCISDocument``, with the master data of what it names.

    Lineage: the lot, every lot it was packed, split or merged from (back to each planting and harvest), and
    every lot made from it (forward through every packing); the events are every event touching one of
    those lots (so every shipment and receipt), in the order they happened. Each ``eventID`` is the event's
    CBV 2.0 Event Hash ID, the hash that is anchored: an importer's EPCIS repository finds the event on
    chain by its ID, and GS1's reference tool recomputes the ID from the exported event. The stored
    ``urn:uuid`` is not carried (an extension member would be hashed); the proof bundle keeps it.
    ``epcisHeader.epcisMasterData`` describes every place, party and lot class named
    (``services.identifiers.master_data``).
    """
    repo = Repository(session)
    if repo.lot(lot_code) is None:
        raise NotFound(f"unknown lot {lot_code}")
    lots = repo.lineage_lots(lot_code) | repo.descendant_lots(lot_code)
    events = [with_event_hash_id(codec.loads(r.body), r.hash) for r in repo.events_touching(sorted(lots))]
    return epcis_document(events, created=datetime.now(UTC), master_data=master_data(session, events))
