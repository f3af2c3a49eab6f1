"""What a farmer may choose from when recording a step: their own plots, their own lots (with what is left
in each), the plot they used last and the places they have been. Forms offer only these, so a farmer never
types a code; the submission service still checks rights, since a form can be crafted by hand.

``available_kg`` is the ledger's own mass balance (``domain.lineage.apply_event`` replayed over the lots'
events, as ``services.events`` checks a new event), so a form can say "at most 950 kg left" before the
service would refuse more.

Two helpers serve the forms that use these choices: :func:`new_lot_code` (the code a new planting's lot will
have, shown on the form) and :func:`record_step` (a form's event and its photo, all or nothing).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

from sqlalchemy.orm import Session

from traceability.domain.events import Event, Harvest, Planting, Transport, lots_touched
from traceability.domain.lineage import Balance, apply_event
from traceability.errors import ChainConflict, NotFound
from traceability.services.auth import Principal
from traceability.services.events import RecordedEvent, stored_event
from traceability.services.evidence import store_evidence
from traceability.services.lots import farmer_lot_rows
from traceability.services.photos import record_photo_hash
from traceability.services.submissions import submit_event
from traceability.store import models
from traceability.store.repository import Repository


@dataclass(frozen=True)
class PlotChoice:
    """A plot of the farmer's. ``name`` (what the farmer calls it) and ``crop`` (what it is enrolled for) are
    None for plots enrolled before the อปท. recorded them."""

    code: str
    village_th: str
    village_en: str
    area_rai: Decimal
    lat: Decimal | None
    lon: Decimal | None
    authority: str
    name: str | None = None
    crop: str | None = None


@dataclass(frozen=True)
class LotChoice:
    """A lot the farmer may record a step for. ``plot`` is None for a lot packed from others; ``stage`` is
    the kind of its last event (``planting``, ``harvest``, ``cooling``, ``grading``, ``packing``,
    ``transport``)."""

    code: str
    product_th: str
    product_en: str
    crop: str
    plot: str | None
    available_kg: Decimal
    stage: str


@dataclass(frozen=True)
class FarmerChoices:
    plots: tuple[PlotChoice, ...]
    lots: tuple[LotChoice, ...]
    last_plot: str | None
    places: tuple[str, ...]

    def plot(self, code: str) -> PlotChoice | None:
        return next((p for p in self.plots if p.code == code), None)

    def lot(self, code: str) -> LotChoice | None:
        return next((lot for lot in self.lots if lot.code == code), None)


def farmer_choices(session: Session, farmer_id: int) -> FarmerChoices:
    """The farmer's plots, lots (newest first, as on "My lots"), last plot and known places."""
    repo = Repository(session)
    if repo.farmer(farmer_id) is None:
        raise NotFound("unknown farmer", code="unknown_farmer")
    plot_rows = repo.plots_of_farmer(farmer_id)
    plots = tuple(_plot_choice(repo, p) for p in plot_rows)
    plot_codes = {p.id: p.code for p in plot_rows}
    lots = farmer_lot_rows(repo, farmer_id)
    codes = {lot.code for lot in lots}
    events = [stored_event(row) for row in repo.events_touching(sorted(codes))] if codes else []
    balance = Balance.empty()
    last_kind: dict[str, str] = {}
    for event in events:  # in event-time order, as the service replays them
        apply_event(balance, event, codes)
        for code in lots_touched(event):
            last_kind[code] = event.kind
    return FarmerChoices(
        plots=plots,
        lots=tuple(
            LotChoice(
                code=lot.code,
                product_th=lot.product_th,
                product_en=lot.product_en,
                crop=lot.crop,
                plot=plot_codes.get(lot.plot_id) if lot.plot_id is not None else None,
                available_kg=balance.held[lot.code],
                stage=last_kind.get(lot.code, "planting"),
            )
            for lot in lots
        ),
        last_plot=_last_plot(events, set(plot_codes.values())),
        places=_places([p.code for p in plots], events),
    )


def _plot_choice(repo: Repository, plot: models.Plot) -> PlotChoice:
    authority = repo.authority(plot.authority_id)
    assert authority is not None  # a foreign key
    return PlotChoice(
        plot.code,
        plot.village_th,
        plot.village_en,
        plot.area_rai,
        plot.lat,
        plot.lon,
        authority.code,
        name=plot.name,
        crop=plot.crop,
    )


def _last_plot(events: Sequence[Event], own: set[str]) -> str | None:
    """The plot of the latest planting or harvest on one of the farmer's own plots."""
    for event in reversed(events):
        if isinstance(event, Planting | Harvest) and event.plot_id in own:
            return event.plot_id
    return None


def _places(plots: Sequence[str], events: Sequence[Event]) -> tuple[str, ...]:
    """The farmer's plots first, then every place their lots' events name (where they happened, and where a
    shipment came from and went to), most recently seen first."""
    seen: list[str] = []
    for event in reversed(events):
        seen.append(event.place.id)
        if isinstance(event, Transport):
            seen += [event.destination, event.source]
    return tuple(dict.fromkeys([*plots, *seen]))


# --- where the lots are: for the ship and receive forms ---------------------------------------------------


@dataclass(frozen=True)
class Shipment:
    """What the last ship leg of one of the farmer's lots carried and no receive leg has taken back yet
    (``in_transit_kg``, by the ledger's mass balance), with that leg's own route and documents: a receive
    repeats them, so an importer sees both legs of one shipment under the same bill of lading."""

    lot_code: str
    product_th: str
    product_en: str
    in_transit_kg: Decimal
    source: str
    destination: str
    vehicle: str | None
    documents: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Whereabouts:
    """Where each of the farmer's lots is now (``here``: lot code → place code, the ship form's default
    origin) and the shipments still on their way (the receive form's choices)."""

    here: dict[str, str]
    shipments: tuple[Shipment, ...]


def farmer_whereabouts(session: Session, farmer_id: int) -> Whereabouts:
    """Replay the farmer's lots' events, as ``farmer_choices`` does, following places instead of stock."""
    repo = Repository(session)
    lots = farmer_lot_rows(repo, farmer_id)
    codes = {lot.code for lot in lots}
    balance = Balance.empty()
    here: dict[str, str] = {}
    shipped: dict[str, Transport] = {}
    for row in repo.events_touching(sorted(codes)) if codes else ():
        event = stored_event(row)
        apply_event(balance, event, codes)
        for code in lots_touched(event):
            here[code] = _place_after(event)
            if isinstance(event, Transport) and event.leg == "ship":
                shipped[code] = event
    shipments = tuple(
        Shipment(
            lot_code=lot.code,
            product_th=lot.product_th,
            product_en=lot.product_en,
            in_transit_kg=balance.in_transit[lot.code],
            source=ship.source,
            destination=ship.destination,
            vehicle=ship.vehicle,
            documents=tuple((doc.type, doc.number) for doc in ship.documents),
        )
        for lot in lots
        if (ship := shipped.get(lot.code)) is not None and balance.in_transit[lot.code] > 0
    )
    return Whereabouts(here=here, shipments=shipments)


def _place_after(event: Event) -> str:
    """Where a lot's stock is after ``event``: a received lot at its destination; a shipped one's remainder
    still where it left from; otherwise where the event happened."""
    if isinstance(event, Transport):
        return event.destination if event.leg == "receive" else event.source
    return event.place.id


BUDDHIST_ERA_OFFSET = 543
MAX_STEM = 8
RETRIES_ON_CHAIN_CONFLICT = 3


def new_lot_code(session: Session, party: str, day: date) -> str:
    """A free lot code for a farmer's new planting: their code, the day in the Buddhist era and a counter
    (``F0001-691122-01`` for F-0001's first lot of 22 Nov 2569), so a farmer can read it off a sack. It is
    rendered into the form, so a resend of that form names the same lot; two forms opened at once may get the
    same code, and the second one sent is then refused with ``lot_exists`` and offered a new code."""
    repo = Repository(session)
    stem = re.sub(r"[^A-Z0-9]", "", party.upper())[:MAX_STEM] or "LOT"
    prefix = f"{stem}-{(day.year + BUDDHIST_ERA_OFFSET) % 100:02d}{day.month:02d}{day.day:02d}"
    counter = 1
    while repo.lot(f"{prefix}-{counter:02d}") is not None:
        counter += 1
    return f"{prefix}-{counter:02d}"


def record_step(
    session: Session,
    principal: Principal,
    data: Mapping[str, object],
    *,
    id_base: str | None,
    evidence_dir: Path,
    photo: bytes | None = None,
) -> RecordedEvent:
    """Record a farmer's form (``data`` is the event without ``actor``, its ``event_id`` the Idempotency-Key)
    and keep its photo, or nothing at all: it runs in a savepoint, so a refusal (a mass balance, a photo that
    is not an image) leaves no lot row behind in the request's transaction, which the page then commits with
    its error message. Two sends of one form racing each other meet at the unique key: the loser retries and
    gets the winner's event."""
    attempt = 1
    while True:
        savepoint = session.begin_nested()
        try:
            recorded = submit_event(
                session, principal, data, id_base=id_base, idempotency_key=str(data["event_id"])
            )
            if photo is not None:
                stored = store_evidence(photo, evidence_dir=evidence_dir)
                record_photo_hash(session, stored.sha256, photo)  # for the photo_reused risk signal
        except ChainConflict:
            savepoint.rollback()
            if attempt == RETRIES_ON_CHAIN_CONFLICT:
                raise
            attempt += 1
            continue
        except BaseException:
            savepoint.rollback()
            raise
        savepoint.commit()
        return recorded
