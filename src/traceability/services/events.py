"""Record an event: validate it against the ledger, link it into each lot's hash chain, store its EPCIS body
and CBV 2.0 hash with an outbox row in the same transaction.

The service completes what only the ledger knows before the body is built: ``prev`` (each lot's head) and,
for a planting, the อปท. (``authority``) its plot belongs to. A retry with the same ``event_id`` (or the same
``Idempotency-Key``) and the same content returns the stored event; different content is a 409 conflict.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from traceability.domain import codec
from traceability.domain.catalog import crop
from traceability.domain.epcis import from_epcis, in_canonical_order, to_epcis
from traceability.domain.events import (
    EVENT_ADAPTER,
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
from traceability.domain.hashing import event_hash, hash_hex
from traceability.domain.lineage import Balance, apply_event, created_lots
from traceability.domain.states import LotRole, OutboxStatus
from traceability.errors import ChainConflict, Conflict, Forbidden, InvalidEvent, NotFound
from traceability.services.identity import ensure_id_base
from traceability.store import models
from traceability.store.repository import Repository


@dataclass(frozen=True)
class RecordedEvent:
    event_id: uuid.UUID
    hash: str
    kind: str
    lots: tuple[str, ...]
    created: bool


def parse_event(data: Mapping[str, object]) -> Event:
    """Validate raw input into an event; pydantic's errors become one InvalidEvent (HTTP 422)."""
    try:
        return EVENT_ADAPTER.validate_python(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()[:10]
        )
        raise InvalidEvent(f"invalid event: {problems}") from exc


def stored_event(row: models.Event) -> Event:
    return from_epcis(codec.loads(row.body))


def _existing(row: models.Event, event: Event, lots: tuple[str, ...]) -> RecordedEvent:
    """The stored event, if ``event`` says the same thing; a 409 if it is another event under the same id."""
    stored = stored_event(row)
    filled: dict[str, object] = {"prev": ()}
    if isinstance(event, Planting) and event.authority is None:
        filled["authority"] = None  # the service filled it in when it was first recorded
    if stored.model_copy(update=filled) != event.model_copy(update={"prev": ()}):
        raise Conflict(
            f"event {event.event_id} was already recorded with different content", code="event_conflict"
        )
    return RecordedEvent(row.id, row.hash, row.kind, lots, created=False)


def record_event(
    session: Session,
    event: Event,
    *,
    id_base: str,
    idempotency_key: str | None = None,
    enforce_ownership: bool = True,
) -> RecordedEvent:
    repo = Repository(session)
    id_base = ensure_id_base(session, id_base)
    touched = lots_touched(event)

    # A retry (same key, or the same client-made event id) returns what the first attempt stored.
    if idempotency_key:
        prior = repo.event_by_key(idempotency_key)
        if prior is not None:
            if prior.id != event.event_id:
                raise Conflict(
                    "Idempotency-Key was already used for a different event", code="idempotency_conflict"
                )
            return _existing(prior, event, touched)
    prior = repo.event(event.event_id)
    if prior is not None:
        return _existing(prior, event, touched)

    new_lots = set(created_lots(event))
    event, gtins = _check_against_ledger(repo, event, new_lots, enforce_ownership=enforce_ownership)

    heads = {lot: repo.head(lot) for lot in touched if lot not in new_lots}
    missing = [lot for lot, h in heads.items() if h is None]
    if missing:
        raise InvalidEvent(f"lot has no history yet: {', '.join(missing)}", code="unknown_lot")
    # Lots packed by one event share it as their head: a merge of them names it once (prev may not repeat).
    prev = tuple(dict.fromkeys(h[1] for lot in touched if (h := heads.get(lot)) is not None))
    event = event.model_copy(update={"prev": prev})

    body = in_canonical_order(to_epcis(event, id_base=id_base, gtins=gtins))
    digest = hash_hex(event_hash(body))
    row = models.Event(
        id=event.event_id,
        kind=event.kind,
        event_time=event.event_time,
        actor=event.actor,
        body=codec.dumps(body),
        hash=digest,
        idempotency_key=idempotency_key,
    )
    session.add(row)
    for lot in touched:
        head = heads.get(lot)
        role = LotRole.SUBJECT
        if lot in new_lots:
            role = LotRole.OUT
        elif isinstance(event, Packing):
            role = LotRole.IN
        session.add(
            models.EventLot(event_id=row.id, lot_code=lot, seq=(head[0] + 1) if head else 1, role=role)
        )
    session.add(models.Outbox(event_id=row.id, status=OutboxStatus.PENDING))
    try:
        session.flush()
    except IntegrityError as exc:
        # Another request appended to one of these lots first: its head moved under us.
        raise ChainConflict("another event was recorded on this lot at the same time; retry") from exc
    return RecordedEvent(row.id, digest, row.kind, touched, created=True)


def _check_against_ledger(
    repo: Repository, event: Event, new_lots: set[str], *, enforce_ownership: bool
) -> tuple[Event, dict[str, str]]:
    """Refuse what the ledger says cannot be true; create lot rows for new lots. Returns the event completed
    with what the ledger knows (a planting's authority) and lot → GTIN."""
    for lot in new_lots:
        if repo.lot(lot) is not None:
            raise InvalidEvent(f"lot {lot} already exists", code="lot_exists")
    gtins: dict[str, str] = {}
    for lot in lots_touched(event):
        if lot in new_lots:
            continue
        existing = repo.lot(lot)
        if existing is None:
            raise NotFound(f"unknown lot {lot}")
        if existing.gtin:
            gtins[lot] = existing.gtin

    if isinstance(event, Planting):
        plot = _plot_of(repo, event.plot_id, event.actor, enforce_ownership)
        authority = repo.authority(plot.authority_id)
        assert authority is not None  # a foreign key
        if event.authority is not None and event.authority != authority.code:
            raise InvalidEvent(
                f"plot {event.plot_id} belongs to {authority.code}, not {event.authority}",
                code="authority_mismatch",
            )
        event = event.model_copy(update={"authority": authority.code})
        c = crop(event.crop)
        repo.session.add(
            models.Lot(
                code=event.lot_code,
                crop=event.crop,
                product_th=c.name_th,
                product_en=c.name_en,
                authority_id=plot.authority_id,
                plot_id=plot.id,
            )
        )
    elif isinstance(event, Harvest):
        lot_row = repo.lot(event.lot_code)
        plot = _plot_of(repo, event.plot_id, event.actor, enforce_ownership)
        if lot_row is not None and lot_row.plot_id != plot.id:
            raise InvalidEvent(
                f"lot {event.lot_code} was not planted on plot {event.plot_id}", code="plot_mismatch"
            )
        if lot_row is not None and lot_row.crop != event.crop:
            raise InvalidEvent(
                f"lot {event.lot_code} was planted as {lot_row.crop}, not {event.crop}", code="crop_mismatch"
            )
    elif isinstance(event, Packing):
        first = repo.lot(event.inputs[0].lot_code)
        assert first is not None  # checked above
        for out in event.outputs:
            if event.gtin:
                gtins[out.lot_code] = event.gtin
            repo.session.add(
                models.Lot(
                    code=out.lot_code,
                    crop=first.crop,
                    product_th=first.product_th,
                    product_en=first.product_en,
                    gtin=event.gtin,
                    authority_id=first.authority_id,
                    plot_id=None,
                )
            )
    elif isinstance(event, Certification | Revocation):
        pass  # signatures and officer rights are checked by the certification service

    _check_balance(repo, event)
    return event, gtins


def _plot_of(repo: Repository, plot_code: str, actor: str, enforce_ownership: bool) -> models.Plot:
    """The plot, which a farmer may write events for only if it is theirs."""
    plot = repo.plot_by_code(plot_code)
    if plot is None:
        raise NotFound(f"unknown plot {plot_code}")
    farmer = repo.session.get(models.Farmer, plot.farmer_id)
    if enforce_ownership and (farmer is None or farmer.code != actor):
        raise Forbidden(f"plot {plot_code} does not belong to {actor}")
    return plot


def _check_balance(repo: Repository, event: Event) -> None:
    """Replay the touched lots' history and refuse an event that takes out more than they hold."""
    if not isinstance(event, Cooling | Grading | Packing | Transport):
        return  # planting, harvest, certification and revocation neither take out nor observe quantities
    lots = list(lots_touched(event))
    balance = Balance.empty()
    for row in repo.events_touching(lots):
        apply_event(balance, stored_event(row), set(lots))
    problems = apply_event(balance, event, set(lots))
    if problems:
        raise InvalidEvent(problems[0].en, code="mass_balance")
