"""Events submitted over the API by a signed-in farmer or officer: one at a time, or an all-or-nothing batch.

The client sends the event's own JSON without ``actor``: the actor is the party the token speaks for. The
submitter's rights are checked against the ledger in the same pass that judges the events
(:mod:`traceability.domain.ingest`, before the ledger's own rules): a farmer writes only for their own plots
and for lots whose every origin plot is theirs; an officer only for plots and lots of their own อปท.
Certification and revocation are refused here: they carry an officer's own EIP-712 signature and go through
:mod:`traceability.services.certify`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.orm import Session

from traceability.domain import codec
from traceability.domain.events import Event
from traceability.domain.ingest import Submitter
from traceability.domain.states import Role
from traceability.errors import InvalidEvent, InvalidInput, TraceabilityError
from traceability.services.auth import Principal
from traceability.services.events import (
    RecordedEvent,
    batch_rejection,
    parse_event,
    plan_events,
    record_event,
    write_planned,
)
from traceability.services.identity import ensure_id_base

MAX_BATCH = 500
SIGNED_KINDS = ("certification", "revocation")


def read_json(raw: bytes) -> Any:
    """A request body as JSON with exact decimals; malformed JSON or float-style numbers are a 422."""
    try:
        return codec.loads_input(raw)
    except UnicodeDecodeError as exc:
        raise InvalidInput("the body is not UTF-8", code="invalid_json") from exc
    except ValueError as exc:  # json.JSONDecodeError is one
        raise InvalidInput(f"the body is not valid JSON: {exc}", code="invalid_json") from exc


def submit_event(
    session: Session,
    principal: Principal,
    data: Any,
    *,
    id_base: str | None,
    idempotency_key: str | None = None,
) -> RecordedEvent:
    """Record one event for ``principal``: 201-worthy when ``created``, a stored retry otherwise."""
    event = _event_for(principal, data)
    return record_event(
        session,
        event,
        id_base=ensure_id_base(session, id_base),
        idempotency_key=idempotency_key,
        # A farmer's plots are checked again by the ledger; an officer's actor code owns no plot.
        enforce_ownership=principal.role == Role.FARMER,
        submitter=_submitter(principal),
    )


def submit_batch(
    session: Session, principal: Principal, items: Any, *, id_base: str | None
) -> list[RecordedEvent]:
    """Record every event or none. Every item is parsed, then all are judged in one pass over one snapshot of
    the ledger (:func:`traceability.services.events.plan_events`), rights included, so that one refusal does
    not stop the others being checked: if any is refused, :class:`BatchRejected` names each by its index and
    nothing is written. Later items may depend on earlier ones (a harvest after its planting in the same
    batch): they are checked in order against the ledger as it would then be."""
    if not isinstance(items, Sequence) or isinstance(items, str | bytes):
        raise InvalidInput("events must be a list", code="invalid_batch")
    if not 1 <= len(items) <= MAX_BATCH:
        raise InvalidInput(f"a batch holds 1 to {MAX_BATCH} events, not {len(items)}", code="invalid_batch")
    refused: list[tuple[int, TraceabilityError]] = []
    parsed: list[tuple[int, Event]] = []
    for index, data in enumerate(items):
        try:
            parsed.append((index, _event_for(principal, data)))
        except TraceabilityError as exc:
            refused.append((index, exc))
    plan = plan_events(
        session,
        [event for _, event in parsed],
        id_base=ensure_id_base(session, id_base),
        enforce_ownership=principal.role == Role.FARMER,
        submitter=_submitter(principal),
    )
    refused += [(parsed[n][0], error) for n, error in plan.refusals]
    if refused:
        raise batch_rejection(sorted(refused, key=lambda item: item[0]), len(items))
    return write_planned(session, plan)


def _submitter(principal: Principal) -> Submitter:
    return Submitter(principal.role, principal.authority_id, principal.farmer_id)


def _event_for(principal: Principal, data: Any) -> Event:
    if not isinstance(data, Mapping):
        raise InvalidEvent("an event is a JSON object")
    kind = data.get("kind")
    if kind in SIGNED_KINDS:
        raise InvalidEvent(
            f"{kind} events carry an officer's own signature: they are made with `trace certify`/the "
            "certification service, not posted here",
            code="kind_not_allowed",
        )
    if "actor" in data:
        raise InvalidEvent("leave out actor: it is the party your token speaks for", code="actor_not_allowed")
    return parse_event({**data, "actor": principal.party})
