"""Origin risk from the ledger: the signals of ``domain.risk`` over everything recorded, for a lot's verdict,
the officer's risk queue and the provenance page.

The signals learn from the whole ledger (a yield is judged against its district's season; a photo against
every other photo), so one assessment covers every lot. It is kept in this process while the ledger's
fingerprint (events, plots, places) is unchanged, for at most :data:`ASSESSMENT_TTL_S` seconds: a new event
is seen on the next request, and a quiet ledger is not re-read for every page view.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from sqlalchemy.orm import Session

from traceability.domain.events import Cooling, Grading, Harvest, Packing, Planting, Transport
from traceability.domain.lineage import LedgerEntry
from traceability.domain.risk import LotRisk, PlotFact, RiskAssessment, RiskLedger, RiskSettings, assess
from traceability.services.history import parsed_event
from traceability.services.photos import photo_hashes
from traceability.store.repository import Repository

ASSESSMENT_TTL_S: Final = 60.0
_NO_FILES: Final = Path("/nonexistent/evidence")
RISK_KINDS: Final = ("planting", "harvest", "cooling", "grading", "packing", "transport")
"""Certifications and revocations say nothing about where produce came from."""


def risk_ledger(session: Session, evidence_dir: Path | None) -> RiskLedger:
    """The ledger as the signals read it: every event that moves or describes produce, every enrolled plot
    (its farmer, area, district and coordinates), every known place, and every evidence photo's hash."""
    repo = Repository(session)
    entries: list[LedgerEntry] = []
    for row in repo.events_of_kinds(RISK_KINDS):
        event = parsed_event(row)
        if event is not None:  # an unreadable body is the verdict's finding, not a risk signal
            entries.append(LedgerEntry(row.hash, event))
    plots = {}
    places: dict[str, tuple[float, float]] = {}
    for plot, farmer_code, authority in repo.plot_facts():
        lat = float(plot.lat) if plot.lat is not None else None
        lon = float(plot.lon) if plot.lon is not None else None
        plots[plot.code] = PlotFact(
            plot.code,
            farmer_code,
            plot.area_rai,
            district=authority.district_th,
            authority=authority.code,
            lat=lat,
            lon=lon,
        )
        if lat is not None and lon is not None:
            places[plot.code] = (lat, lon)
    for code, lat, lon in repo.place_coordinates():
        places[code] = (float(lat), float(lon))
    shas = sorted({sha for e in entries for sha in e.event.evidence})
    # Without an evidence directory only hashes already stored are read (none is computed from a file).
    photos = photo_hashes(session, evidence_dir or _NO_FILES, shas) if shas else {}
    return RiskLedger(entries, plots, places, photos, "ledger")


@dataclass
class _Cached:
    fingerprint: tuple[Any, ...]
    until: float
    assessment: RiskAssessment


class AssessmentCache:
    """One assessment per database, kept while its fingerprint holds, for at most its TTL."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic, ttl_s: float = ASSESSMENT_TTL_S):
        self._clock = clock
        self._ttl_s = ttl_s
        self._lock = threading.Lock()
        self._entries: dict[str, _Cached] = {}

    def get(self, key: str, fingerprint: tuple[Any, ...]) -> RiskAssessment | None:
        with self._lock:
            found = self._entries.get(key)
            if found is None or found.fingerprint != fingerprint or found.until <= self._clock():
                return None
            return found.assessment

    def put(self, key: str, fingerprint: tuple[Any, ...], assessment: RiskAssessment) -> None:
        with self._lock:
            self._entries[key] = _Cached(fingerprint, self._clock() + self._ttl_s, assessment)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


ASSESSMENTS = AssessmentCache()


def ledger_assessment(
    session: Session,
    evidence_dir: Path | None,
    *,
    settings: RiskSettings | None = None,
    cache: AssessmentCache | None = ASSESSMENTS,
) -> RiskAssessment:
    """Every origin-risk signal in the ledger (from the cache while nothing has changed)."""
    bind = session.get_bind()
    key = bind.url.render_as_string(hide_password=True) if hasattr(bind, "url") else repr(bind)
    fingerprint = (*Repository(session).risk_fingerprint(), settings)
    if cache is not None and (found := cache.get(key, fingerprint)) is not None:
        return found
    assessment = assess(risk_ledger(session, evidence_dir), settings=settings)
    if cache is not None:
        cache.put(key, fingerprint, assessment)
    return assessment


def lot_risk(
    session: Session, lot_code: str, evidence_dir: Path | None, *, lineage: Sequence[str] | None = None
) -> LotRisk:
    """The origin risk of one lot: the signals on it and on every lot it was packed from."""
    lots = lineage if lineage is not None else sorted(Repository(session).lineage_lots(lot_code))
    return ledger_assessment(session, evidence_dir).for_lot(lot_code, lots)


@dataclass(frozen=True)
class QueueEntry:
    """One lot in an officer's risk queue."""

    lot_code: str
    product_th: str
    product_en: str
    risk: LotRisk


def risk_queue(session: Session, authority_id: int, evidence_dir: Path) -> list[QueueEntry]:
    """The authority's lots (planted on its plots, or packed from them), highest risk first, then by code."""
    repo = Repository(session)
    assessment = ledger_assessment(session, evidence_dir)
    entries = []
    for lot in repo.lots_of_authority(authority_id):
        risk = assessment.for_lot(lot.code)
        entries.append(QueueEntry(lot.code, lot.product_th, lot.product_en, risk))
    return sorted(entries, key=lambda e: (-e.risk.score, e.lot_code))


def bundle_risk(entries: Sequence[LedgerEntry], lot_code: str, lineage: Sequence[str]) -> LotRisk:
    """The origin risk a proof bundle shows by itself: its own events against the crop knowledge (no
    district history, no enrolled plot areas, no photos: those need the ledger)."""
    relevant = [e for e in entries if isinstance(e.event, _RISK_TYPES)]
    return assess(RiskLedger(relevant, basis="bundle")).for_lot(lot_code, lineage)


_RISK_TYPES = (Planting, Harvest, Cooling, Grading, Packing, Transport)
