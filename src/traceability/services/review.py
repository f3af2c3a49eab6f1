"""What an อปท. officer reviews: the queue of their authority's lots and one lot's whole history.

Both are read from the ledger alone (no chain call): a lot's certification status comes from its
``certification`` and ``revocation`` events, which are written only once the chain has them
(:mod:`traceability.services.chainops`). Verification against the chain is ``services.ledger.verify_lot``.
An officer sees only lots of their own authority: :func:`officer_lot` refuses another one's (403).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Literal

from sqlalchemy.orm import Session

from traceability.domain.epcis import normalise_id_base
from traceability.domain.events import (
    Certification,
    Cooling,
    Event,
    Grading,
    Harvest,
    Packing,
    Planting,
    Revocation,
    Transport,
    lots_touched,
)
from traceability.errors import Forbidden, NotFound
from traceability.services.history import CertState, certification_state, parsed_event, step_of
from traceability.services.identity import DEFAULT_ID_BASE, recorded_id_base
from traceability.store import models
from traceability.store.repository import Repository

LotCertState = Literal["none", "certified", "revoked", "expired"]


@dataclass(frozen=True)
class OfficerDesk:
    """The signed-in officer and their authority, as the pages name them."""

    username: str
    display_name: str
    authority_code: str
    authority_th: str
    authority_en: str


@dataclass(frozen=True)
class CertificationView:
    cert_id: str
    standard: str
    note: str | None
    issued: datetime
    expires: datetime | None
    state: CertState
    revoked_reason: str | None


@dataclass(frozen=True)
class HistoryEvent:
    """One event of a lot's lineage. ``step`` is the kind, a transport split into ``ship``/``receive`` and a
    rejecting grading as ``rejected``; ``quantity_kg`` is what it moved (for this lot where it names it)."""

    event_id: str
    step: str
    event_time: datetime
    lots: tuple[str, ...]
    quantity_kg: Decimal | None
    place: str
    village_th: str | None
    village_en: str | None
    anchored: bool
    block_number: int | None
    tx_hash: str | None
    detail: str | None  # a certification's standard, a revocation's reason, a grade


@dataclass(frozen=True)
class QueueLot:
    code: str
    product_th: str
    product_en: str
    village_th: str | None
    village_en: str | None
    last_step: str | None
    last_time: datetime | None
    waiting: int  # events not yet anchored
    certification: LotCertState
    certified_until: datetime | None  # of an active certification; None = no expiry

    @property
    def needs_review(self) -> bool:
        return self.certification != "certified" and self.last_step is not None


@dataclass(frozen=True)
class LotReview:
    code: str
    product_th: str
    product_en: str
    village_th: str | None
    village_en: str | None
    events: tuple[HistoryEvent, ...]
    certifications: tuple[CertificationView, ...]


def officer_desk(session: Session, officer_id: int) -> OfficerDesk:
    repo = Repository(session)
    officer = repo.officer(officer_id)
    if officer is None:
        raise NotFound("unknown officer", code="unknown_officer")
    authority = repo.authority(officer.authority_id)
    assert authority is not None  # a foreign key
    return OfficerDesk(
        officer.username, officer.display_name, authority.code, authority.name_th, authority.name_en
    )


def ledger_id_base(session: Session, configured: str | None) -> str:
    """The identifier base new events are recorded under: the ledger's own once it has one."""
    return recorded_id_base(session) or normalise_id_base(configured or DEFAULT_ID_BASE)


def review_queue(session: Session, authority_id: int, *, now: datetime | None = None) -> list[QueueLot]:
    """The authority's lots, those needing review (not certified now) first, then the latest activity."""
    repo = Repository(session)
    now = now or datetime.now(UTC)
    out = []
    for lot in repo.lots():
        if lot.authority_id != authority_id:
            continue
        history = repo.lot_history(lot.code)
        events = [parsed_event(row) for row, _status, _batch in history]
        certs = _certifications(events, now)
        state, until = _lot_state(certs)
        village = _village(repo, lot)
        last = history[-1][0] if history else None
        out.append(
            QueueLot(
                code=lot.code,
                product_th=lot.product_th,
                product_en=lot.product_en,
                village_th=village.village_th if village else None,
                village_en=village.village_en if village else None,
                last_step=step_of(last.kind, events[-1]) if last is not None else None,
                last_time=last.event_time if last is not None else None,
                waiting=sum(1 for _row, _status, batch in history if batch is None),
                certification=state,
                certified_until=until,
            )
        )
    latest = sorted(out, key=lambda q: q.last_time or datetime.min.replace(tzinfo=UTC), reverse=True)
    return sorted(latest, key=lambda q: not q.needs_review)


def officer_lot(
    session: Session, authority_id: int, lot_code: str, *, now: datetime | None = None
) -> LotReview:
    """A lot of the officer's authority with every event of its lineage (time order) and its
    certifications. Another authority's lot → Forbidden ``not_your_lot``."""
    repo = Repository(session)
    lot = repo.lot(lot_code.strip().upper())
    if lot is None:
        raise NotFound(f"unknown lot {lot_code}", code="unknown_lot")
    if lot.authority_id != authority_id:
        raise Forbidden(f"lot {lot.code} is not of your authority", code="not_your_lot")
    rows = repo.events_touching(sorted(repo.lineage_lots(lot.code)))
    anchors = repo.anchors_for([row.id for row in rows])
    history = []
    for row in sorted(rows, key=lambda r: r.event_time):
        event = parsed_event(row)
        batch = anchors[row.id][0] if row.id in anchors else None
        plot = repo.plot_by_code(event.place.id) if event is not None else None
        history.append(
            HistoryEvent(
                event_id=str(row.id),
                step=step_of(row.kind, event),
                event_time=row.event_time,
                lots=tuple(sorted(lots_touched(event))) if event is not None else (),
                quantity_kg=_quantity_for(event, lot.code),
                place=event.place.id if event is not None else "",
                village_th=plot.village_th if plot else None,
                village_en=plot.village_en if plot else None,
                anchored=batch is not None,
                block_number=batch.block_number if batch else None,
                tx_hash=batch.tx_hash if batch else None,
                detail=_detail(event),
            )
        )
    own = [parsed_event(row) for row, _status, _batch in repo.lot_history(lot.code)]
    village = _village(repo, lot)
    return LotReview(
        code=lot.code,
        product_th=lot.product_th,
        product_en=lot.product_en,
        village_th=village.village_th if village else None,
        village_en=village.village_en if village else None,
        events=tuple(history),
        certifications=tuple(_certifications(own, now or datetime.now(UTC))),
    )


def _detail(event: Event | None) -> str | None:
    if isinstance(event, Certification):
        return event.standard
    if isinstance(event, Revocation):
        return event.reason
    if isinstance(event, Grading):
        return event.grade
    if isinstance(event, Planting | Harvest):
        return event.variety
    return None


def _quantity_for(event: Event | None, lot_code: str) -> Decimal | None:
    if isinstance(event, Harvest | Cooling | Grading):
        return event.quantity.kg()
    if isinstance(event, Packing | Transport):
        items = (*event.outputs, *event.inputs) if isinstance(event, Packing) else event.items
        mine = [item.quantity.kg() for item in items if item.lot_code == lot_code]
        if mine:
            return mine[0]
        moved = event.inputs if isinstance(event, Packing) else event.items
        return sum((item.quantity.kg() for item in moved), Decimal(0))
    return None


def _village(repo: Repository, lot: models.Lot) -> models.Plot | None:
    """The plot the lot (or the first lot of its lineage that has one) was grown on."""
    if lot.plot_id is not None:
        return repo.plot(lot.plot_id)
    for ancestor in repo.lots_by_codes(sorted(repo.lineage_lots(lot.code))):
        if ancestor.plot_id is not None:
            return repo.plot(ancestor.plot_id)
    return None


def _certifications(events: list[Event | None], now: datetime) -> list[CertificationView]:
    revoked = {e.cert_id: e.reason for e in events if isinstance(e, Revocation)}
    out = []
    for event in events:
        if not isinstance(event, Certification):
            continue
        state, expires = certification_state(event, revoked, now)
        out.append(
            CertificationView(
                cert_id=event.cert_id,
                standard=event.standard,
                note=event.note,
                issued=event.event_time,
                expires=expires,
                state=state,
                revoked_reason=revoked.get(event.cert_id),
            )
        )
    return out


def _lot_state(certs: list[CertificationView]) -> tuple[LotCertState, datetime | None]:
    """Certified while any certification is active (until the latest expiry; None if one never expires)."""
    active = [c for c in certs if c.state == "active"]
    if active:
        if any(c.expires is None for c in active):
            return "certified", None
        return "certified", max(c.expires for c in active if c.expires is not None)
    if any(c.state == "revoked" for c in certs):
        return "revoked", None
    if certs:
        return "expired", None
    return "none", None
