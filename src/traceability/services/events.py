"""Record events: validate them against the ledger, link each into its lots' hash chains, store their EPCIS
bodies and CBV 2.0 hashes with outbox rows in the caller's transaction.

One path for one event and for a batch, in three steps:

1. load one snapshot of everything the events touch, in a few set-based queries (:func:`plan_events`): earlier
   events by id and by idempotency key, the lots with their heads, the plots named with their farmer's and
   อปท.'s codes, and the stored history of the lots whose mass balance the events need (parsed once);
2. let :func:`traceability.domain.ingest.decide` judge and map every event in order against it (pure code);
3. write what it accepted with one bulk INSERT per table (:func:`write_planned`).

The service completes what only the ledger knows before the body is built: ``prev`` (each lot's head) and,
for a planting, the อปท. (``authority``) its plot belongs to. A retry with the same ``event_id`` (or the same
``Idempotency-Key``) and the same content returns the stored event; different content is a 409 conflict. A
concurrent append to the same lot loses on the unique (lot, seq) and is a :class:`ChainConflict` (409, retry).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta

from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from traceability.domain import codec
from traceability.domain.epcis import from_epcis
from traceability.domain.events import EVENT_ADAPTER, Event, Harvest, Planting, lots_touched
from traceability.domain.ingest import (
    BALANCE_KINDS,
    Accepted,
    Ledger,
    Outcome,
    Refusal,
    Retry,
    Submitter,
    decide,
    needs_balance,
)
from traceability.domain.states import OutboxStatus, Role
from traceability.errors import BatchRejected, ChainConflict, InvalidEvent, TraceabilityError
from traceability.services.identity import ensure_id_base
from traceability.services.observability import count_recorded
from traceability.store import models
from traceability.store.repository import Repository, risk_fact_row


@dataclass(frozen=True)
class RecordedEvent:
    event_id: uuid.UUID
    hash: str
    kind: str
    lots: tuple[str, ...]
    created: bool


@dataclass(frozen=True)
class Plan:
    """What recording a batch would do: one outcome per event, in order; nothing written yet."""

    outcomes: tuple[Outcome, ...]

    @property
    def refusals(self) -> list[tuple[int, TraceabilityError]]:
        """(index, error) of every refused event."""
        return [(n, o.error) for n, o in enumerate(self.outcomes) if isinstance(o, Refusal)]


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


def record_event(
    session: Session,
    event: Event,
    *,
    id_base: str,
    idempotency_key: str | None = None,
    enforce_ownership: bool = True,
    submitter: Submitter | None = None,
) -> RecordedEvent:
    """Record one event, or return it as stored if this is a retry; a refusal raises the rule's own error."""
    plan = plan_events(
        session,
        [event],
        id_base=id_base,
        idempotency_keys=[idempotency_key],
        enforce_ownership=enforce_ownership,
        submitter=submitter,
    )
    outcome = plan.outcomes[0]
    if isinstance(outcome, Refusal):
        raise outcome.error
    return write_planned(session, plan)[0]


def record_events(
    session: Session,
    events: Sequence[Event],
    *,
    id_base: str,
    idempotency_keys: Sequence[str | None] | None = None,
    enforce_ownership: bool = True,
    submitter: Submitter | None = None,
) -> list[RecordedEvent]:
    """Record every event or none, in one snapshot, one pass and one bulk write. Later events may depend on
    earlier ones (a harvest after its planting in the same batch). If any is refused, :class:`BatchRejected`
    names each by its index and nothing is written."""
    plan = plan_events(
        session,
        events,
        id_base=id_base,
        idempotency_keys=idempotency_keys,
        enforce_ownership=enforce_ownership,
        submitter=submitter,
    )
    return write_planned(session, plan)


def batch_rejection(refusals: Sequence[tuple[int, TraceabilityError]], total: int) -> BatchRejected:
    """The error naming every refused item; its status is theirs if they all share one, else 422."""
    statuses = {error.status_code for _, error in refusals}
    return BatchRejected(
        f"{len(refusals)} of {total} events refused; nothing was stored",
        [{"index": n, "code": error.code, "message": error.message} for n, error in refusals],
        status_code=statuses.pop() if len(statuses) == 1 else 422,
    )


def plan_events(
    session: Session,
    events: Sequence[Event],
    *,
    id_base: str,
    idempotency_keys: Sequence[str | None] | None = None,
    enforce_ownership: bool = True,
    submitter: Submitter | None = None,
) -> Plan:
    """Judge ``events`` in order against one snapshot of the ledger; write nothing.

    ``submitter`` (API submissions) also checks the submitter's rights, against the ledger as the earlier
    events of the batch leave it."""
    keys = list(idempotency_keys) if idempotency_keys is not None else [None] * len(events)
    if len(keys) != len(events):
        raise ValueError("one idempotency key (or None) per event")
    ledger = _snapshot(
        Repository(session), events, keys, ensure_id_base(session, id_base), submitter=submitter
    )
    outcomes = decide(
        list(zip(events, keys, strict=True)), ledger, enforce_ownership=enforce_ownership, submitter=submitter
    )
    return Plan(tuple(outcomes))


def write_planned(session: Session, plan: Plan) -> list[RecordedEvent]:
    """Write the plan's new events with one bulk INSERT per table; :class:`BatchRejected` (nothing written)
    if it refused any. Returns every event, recorded now or found stored, in order."""
    if plan.refusals:
        raise batch_rejection(plan.refusals, len(plan.outcomes))
    accepted = [o for o in plan.outcomes if isinstance(o, Accepted)]
    if accepted:
        _write(Repository(session), accepted)
        count_recorded(o.event.kind for o in accepted)
    recorded: list[RecordedEvent] = []
    for outcome in plan.outcomes:
        if isinstance(outcome, Retry):
            recorded.append(RecordedEvent(outcome.event_id, outcome.hash, outcome.kind, outcome.lots, False))
        elif isinstance(outcome, Accepted):
            e = outcome.event
            recorded.append(RecordedEvent(e.event_id, outcome.hash, e.kind, outcome.lots, True))
    return recorded


def _snapshot(
    repo: Repository,
    events: Sequence[Event],
    keys: Sequence[str | None],
    id_base: str,
    *,
    submitter: Submitter | None,
) -> Ledger:
    """Everything ``events`` touch, in a few set-based queries whatever their number."""
    codes = list(dict.fromkeys(lot for event in events for lot in lots_touched(event)))
    by_id, by_key = repo.prior_events([e.event_id for e in events], [k for k in keys if k])
    lots, heads = repo.lots_with_heads(codes)
    parents: dict[str, frozenset[str]] = {}
    origin_ids: list[int] = []
    if submitter is not None and submitter.role == Role.FARMER:
        # A farmer's rights follow each lot's lineage back to its origin plots.
        parents = repo.lineage_parents(list(lots))
        ancestors = {p for ps in parents.values() for p in ps} - lots.keys()
        if ancestors:
            lots.update(repo.lots_with_heads(sorted(ancestors))[0])
        origin_ids = [lot.plot_id for lot in lots.values() if lot.plot_id is not None]
    plot_codes = [e.plot_id for e in events if isinstance(e, Planting | Harvest)]
    plots = repo.plots_with_owners(plot_codes, origin_ids) if plot_codes or origin_ids else {}
    # Only lots that exist have a stored history (lots created in the batch start empty), and only events
    # that move or check kilograms are parsed: parsing is most of what reading a lot's history costs.
    weighed = [lot for e in events if needs_balance(e) for lot in lots_touched(e) if lot in lots]
    bodies = repo.bodies_touching(weighed, BALANCE_KINDS) if weighed else []
    history = [from_epcis(codec.loads(body)) for body in bodies]
    return Ledger(id_base, lots, heads, plots, by_id, by_key, history, parents)


def _write(repo: Repository, accepted: Sequence[Accepted]) -> None:
    # recorded_at steps by a microsecond per event so that the batch's order stays the ledger's order. The
    # rows' created_at is given rather than left to the column default, which would be called row by row.
    now = models.utcnow()
    try:
        repo.insert_recorded(
            lots=[
                {
                    "code": lot.code,
                    "crop": lot.crop,
                    "product_th": lot.product_th,
                    "product_en": lot.product_en,
                    "gtin": lot.gtin,
                    "authority_id": lot.authority_id,
                    "plot_id": lot.plot_id,
                    "created_at": now,
                }
                for a in accepted
                for lot in a.new_lots
            ],
            events=[
                {
                    "id": a.event.event_id,
                    "kind": a.event.kind,
                    "event_time": a.event.event_time,
                    "recorded_at": now + timedelta(microseconds=n),
                    "actor": a.event.actor,
                    "body": a.body,
                    "hash": a.hash,
                    "idempotency_key": a.idempotency_key,
                }
                for n, a in enumerate(accepted)
            ],
            links=[
                {"event_id": a.event.event_id, "lot_code": link.lot_code, "seq": link.seq, "role": link.role}
                for a in accepted
                for link in a.links
            ],
            outbox=[
                {"event_id": a.event.event_id, "status": OutboxStatus.PENDING, "created_at": now}
                for a in accepted
            ],
            facts=[row for a in accepted if (row := risk_fact_row(a.event)) is not None],
        )
    except IntegrityError as exc:
        # Another transaction appended to one of these lots (or created one of them) first.
        raise ChainConflict("another event was recorded on this lot at the same time; retry") from exc
