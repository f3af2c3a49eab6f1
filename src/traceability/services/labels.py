"""What a printed label of a lot carries: its code, its product in Thai and English, its GTIN and the URI its
QR code encodes (``services.links.lot_link``).

A label is stuck on a pack that may cross a border, so both languages are printed on every label whatever
the language of the page that prints it. Nothing personal is printed: the lot code and the product only,
the same as the public provenance page shows.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from traceability.domain.events import LOT_CODE_RE
from traceability.domain.gs1 import gtin14
from traceability.errors import NotFound
from traceability.services.links import lot_link
from traceability.services.runtime import DbSession
from traceability.store.repository import Repository


@dataclass(frozen=True)
class LabelItem:
    """One lot as its labels show it. ``gtin`` is the GTIN-14 (None for a lot sold without one)."""

    code: str
    product_th: str
    product_en: str
    gtin: str | None
    link: str


class UnknownLot(NotFound):
    """404 ``unknown_lot``, keeping the code that was not found so that a page can name it."""

    code = "unknown_lot"

    def __init__(self, lot_code: str) -> None:
        super().__init__(f"no lot {lot_code}")
        self.lot_code = lot_code


def normalise_codes(codes: Iterable[str]) -> list[str]:
    """Lot codes as the ledger writes them (upper case, trimmed), blanks dropped, each once, in order: a
    packing run's list pasted twice still prints each lot's labels once."""
    seen: dict[str, None] = {}
    for code in codes:
        cleaned = code.strip().upper()
        if cleaned:
            seen.setdefault(cleaned, None)
    return list(seen)


def label_items(session: DbSession, codes: Iterable[str], public_base_url: str) -> list[LabelItem]:
    """The labels' data of ``codes`` in the order given (see ``normalise_codes``); 404 ``unknown_lot``
    naming the first code the ledger does not hold, so a sheet is never printed with a lot missing."""
    repo = Repository(session)
    items = []
    for code in normalise_codes(codes):
        # A code no lot can have (too long, odd characters) is unknown without asking the database.
        lot = repo.lot(code) if re.fullmatch(LOT_CODE_RE, code) else None
        if lot is None:
            raise UnknownLot(code)
        items.append(
            LabelItem(
                code=lot.code,
                product_th=lot.product_th,
                product_en=lot.product_en,
                gtin=gtin14(lot.gtin) if lot.gtin else None,
                # The lot is in the session's identity map now: this looks it up without a second query.
                link=lot_link(session, lot.code, public_base_url),
            )
        )
    return items
