"""The public address of a lot, as printed in its QR code: a GS1 Digital Link URI on this service's host.

A lot packed under a product's GTIN is ``{TRACE_PUBLIC_BASE_URL}/01/{GTIN-14}/10/{lot}`` — the form GS1
Digital Link defines, so any GS1-aware scanner reads the GTIN and lot from it, and our resolver answers it.
A lot without a GTIN (not packed yet, or sold loose) is ``{TRACE_PUBLIC_BASE_URL}/p/{lot}``, its
provenance page.
Lot codes are restricted (``domain.events.LotCode``) to characters that need no escaping in either form.
"""

from __future__ import annotations

from traceability.domain.gs1 import gtin14
from traceability.errors import NotFound
from traceability.services.runtime import DbSession
from traceability.store.repository import Repository


def lot_link(session: DbSession, lot_code: str, public_base_url: str) -> str:
    """The URI a lot's QR code carries; 404 ``unknown_lot`` for a lot the ledger does not hold."""
    lot = Repository(session).lot(lot_code)
    if lot is None:
        raise NotFound(f"no lot {lot_code}", code="unknown_lot")
    base = public_base_url.rstrip("/")
    if lot.gtin:
        return f"{base}/01/{gtin14(lot.gtin)}/10/{lot.code}"
    return f"{base}/p/{lot.code}"
