"""Events submitted over the API by a signed-in farmer or officer: one at a time, or an all-or-nothing batch.

The client sends the event's own JSON without ``actor``: the actor is the party the token speaks for. Before
the event is recorded (:func:`traceability.services.events.record_event`), the submitter's rights are
checked against the ledger: a farmer writes only for their own plots and for lots whose every origin plot is
theirs; an officer only for plots and lots of their own อปท. Certification and revocation are refused here:
they carry an officer's own EIP-712 signature and go through :mod:`traceability.services.certify`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.orm import Session

from traceability.domain import codec
from traceability.domain.events import Event, Harvest, Planting, lots_touched
from traceability.domain.states import Role
from traceability.errors import BatchRejected, Forbidden, InvalidEvent, InvalidInput, TraceabilityError
from traceability.services.auth import Principal
from traceability.services.events import RecordedEvent, parse_event, record_event
from traceability.services.identity import ensure_id_base
from traceability.store.repository import Repository

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
    _authorise(Repository(session), principal, event)
    return record_event(
        session,
        event,
        id_base=ensure_id_base(session, id_base),
        idempotency_key=idempotency_key,
        # A farmer's plots are checked again by the ledger; an officer's actor code owns no plot.
        enforce_ownership=principal.role == Role.FARMER,
    )


def submit_batch(
    session: Session, principal: Principal, items: Any, *, id_base: str | None
) -> list[RecordedEvent]:
    """Record every event or none. Each item is tried in a savepoint so that one refusal does not stop the
    others being checked; if any is refused, :class:`BatchRejected` names each by its index and the caller's
    transaction (the request's) rolls back everything. Later items may depend on earlier ones (a harvest after
    its planting in the same batch): they are checked in order against the ledger as it would then be."""
    if not isinstance(items, Sequence) or isinstance(items, str | bytes):
        raise InvalidInput("events must be a list", code="invalid_batch")
    if not 1 <= len(items) <= MAX_BATCH:
        raise InvalidInput(f"a batch holds 1 to {MAX_BATCH} events, not {len(items)}", code="invalid_batch")
    repo = Repository(session)
    repo.begin_writing()
    base = ensure_id_base(session, id_base)
    recorded: list[RecordedEvent] = []
    refused: list[dict[str, Any]] = []
    statuses: set[int] = set()
    for index, data in enumerate(items):
        savepoint = session.begin_nested()
        try:
            recorded.append(submit_event(session, principal, data, id_base=base))
        except TraceabilityError as exc:
            savepoint.rollback()
            refused.append({"index": index, "code": exc.code, "message": exc.message})
            statuses.add(exc.status_code)
        else:
            savepoint.commit()
    if refused:
        status = statuses.pop() if len(statuses) == 1 else 422
        raise BatchRejected(
            f"{len(refused)} of {len(items)} events refused; nothing was stored", refused, status_code=status
        )
    return recorded


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


def _authorise(repo: Repository, principal: Principal, event: Event) -> None:
    """403 unless ``principal`` may write ``event``: a farmer for their own plots and lots, an officer for
    plots and lots of their อปท. Unknown plots and lots are left to the ledger's own 404."""
    if isinstance(event, Planting | Harvest):
        plot = repo.plot_by_code(event.plot_id)
        if plot is not None and not _owns_plot(principal, plot.farmer_id, plot.authority_id):
            raise Forbidden(f"plot {event.plot_id} is not yours to write for", code="not_your_plot")
    for code in lots_touched(event):
        lot = repo.lot(code)
        if lot is None:
            continue
        if principal.role == Role.OFFICER:
            allowed = lot.authority_id == principal.authority_id
        else:
            allowed = _farmer_owns_lineage(repo, principal, code)
        if not allowed:
            raise Forbidden(f"lot {code} is not yours to write for", code="not_your_lot")


def _owns_plot(principal: Principal, farmer_id: int, authority_id: int) -> bool:
    if principal.role == Role.OFFICER:
        return authority_id == principal.authority_id
    return farmer_id == principal.farmer_id


def _farmer_owns_lineage(repo: Repository, principal: Principal, lot_code: str) -> bool:
    """A farmer's lot is one whose every origin plot is theirs (a merge with another farmer's produce is
    the packing house's or the officer's to write for)."""
    origins = 0
    for code in sorted(repo.lineage_lots(lot_code)):
        lot = repo.lot(code)
        if lot is None or lot.plot_id is None:
            continue
        plot = repo.plot(lot.plot_id)
        if plot is None or plot.farmer_id != principal.farmer_id:
            return False
        origins += 1
    return origins > 0
