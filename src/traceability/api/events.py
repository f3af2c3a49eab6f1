"""``POST /api/v1/events`` and ``POST /api/v1/events/batch``: farmers and officers record events."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse

from traceability.api.deps import BearerToken, RuntimeDep, in_unit_of_work
from traceability.api.schemas import BatchRead, ErrorRead, EventRead
from traceability.errors import InvalidInput
from traceability.services.auth import authenticate
from traceability.services.events import RecordedEvent
from traceability.services.runtime import DbSession
from traceability.services.submissions import MAX_BATCH, read_json, submit_batch, submit_event

router = APIRouter(prefix="/api/v1/events", tags=["events"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorRead, "description": "no valid bearer token"},
    403: {"model": ErrorRead, "description": "not your plot or lot"},
    404: {"model": ErrorRead, "description": "an unknown plot, lot or place"},
    409: {"model": ErrorRead, "description": "a different event under the same event_id or Idempotency-Key"},
    413: {"model": ErrorRead, "description": "body over 1 MiB"},
    422: {"model": ErrorRead, "description": "invalid event, or a kind not accepted here"},
}
_EVENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "A domain event without `actor` (planting, harvest, cooling, grading, packing or "
    "transport).",
    "required": ["kind", "event_id", "event_time", "place"],
    "properties": {
        "kind": {
            "type": "string",
            "enum": ["planting", "harvest", "cooling", "grading", "packing", "transport"],
        },
        "event_id": {"type": "string", "format": "uuid"},
        "event_time": {"type": "string", "format": "date-time"},
        "place": {"type": "object"},
    },
    "additionalProperties": True,
}
_PLANTING_EXAMPLE: dict[str, Any] = {
    "kind": "planting",
    "event_id": "0b06adc7-f898-44d6-9e3b-89c823d0f32f",
    "event_time": "2026-09-08T08:30:00+07:00",
    "place": {"id": "PLOT-NSN-01", "lat": "15.1108", "lon": "103.6163"},
    "lot_code": "NSN-VEG-2609-01",
    "plot_id": "PLOT-NSN-01",
    "crop": "organic-veg",
    "variety": "ผักคะน้าและผักกาดหอม",
    "area_rai": "2.5",
}
_HARVEST_EXAMPLE: dict[str, Any] = {
    "kind": "harvest",
    "event_id": "8d921836-8980-4507-b251-50da5e388b44",
    "event_time": "2026-10-23T06:30:00+07:00",
    "place": {"id": "FARM-NSN-01", "lat": "15.1108", "lon": "103.6163"},
    "lot_code": "NSN-VEG-2609-01",
    "plot_id": "PLOT-NSN-01",
    "crop": "organic-veg",
    "quantity": {"value": "1250", "uom": "KGM"},
}
_EVENT_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": _EVENT_SCHEMA,
                "examples": {
                    "harvest": {"summary": "a harvest of 1,250 kg from a plot", "value": _HARVEST_EXAMPLE},
                    "planting": {"summary": "planting a lot on a plot", "value": _PLANTING_EXAMPLE},
                },
            }
        },
    }
}


def _answer(recorded: RecordedEvent) -> dict[str, Any]:
    """A recorded event as :class:`EventRead` says it is sent."""
    return {
        "event_id": str(recorded.event_id),
        "hash": recorded.hash,
        "kind": recorded.kind,
        "lots": list(recorded.lots),
        "created": recorded.created,
    }


@router.post(
    "",
    response_model=EventRead,
    status_code=201,
    responses={200: {"model": EventRead, "description": "a retry: the event already stored"}, **_ERRORS},
    openapi_extra=_EVENT_BODY,
)
async def create_event(
    request: Request,
    runtime: RuntimeDep,
    token: BearerToken,
    idempotency_key: Annotated[
        str | None, Header(alias="Idempotency-Key", min_length=1, max_length=128)
    ] = None,
) -> JSONResponse:
    """Record one event for the signed-in farmer or officer.

    The body is the event's own JSON (`kind`, `event_id`, `event_time` with a time zone, `place` `{id, lat,
    lon}`, and the kind's fields, e.g. `lot_code`, `plot_id`, `quantity` `{value, uom}`) **without `actor`**,
    which is the party the token speaks for. Numbers are read exactly as decimals: send `"12.5"` or `12.5`;
    floating-point forms (`1.25e1`, `NaN`) are refused. Farmers write only for their own plots and lots,
    officers for those of their อปท.; `certification` and `revocation` are made by the certification service,
    not here (422).

    Retries are safe: send the same `Idempotency-Key` (or the same `event_id`) with the same body and get the
    stored event back with 200; the first time answers 201; the same key or id with another body is 409."""
    raw = await request.body()

    def record(session: DbSession) -> RecordedEvent:
        # The token first, as CurrentPrincipal would: a body is judged only for whom may send it.
        principal = authenticate(session, token)
        return submit_event(
            session,
            principal,
            read_json(raw),
            id_base=runtime.settings.id_base,
            idempotency_key=idempotency_key,
        )

    # One unit of work on one worker thread: authenticate, record, commit (see in_unit_of_work).
    recorded = await in_unit_of_work(runtime, record)
    return JSONResponse(_answer(recorded), status_code=201 if recorded.created else 200)


@router.post(
    "/batch",
    response_model=BatchRead,
    status_code=201,
    responses=_ERRORS,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["events"],
                        "properties": {
                            "events": {
                                "type": "array",
                                "minItems": 1,
                                "maxItems": MAX_BATCH,
                                "items": _EVENT_SCHEMA,
                            }
                        },
                    },
                    "example": {"events": [_PLANTING_EXAMPLE, _HARVEST_EXAMPLE]},
                }
            },
        }
    },
)
async def create_events(request: Request, runtime: RuntimeDep, token: BearerToken) -> JSONResponse:
    """Record up to 500 events, **all or nothing**, in one transaction.

    Items are recorded in order, so a batch may hold a lot's planting and then its harvest. If any item is
    invalid or refused, nothing at all is stored and the answer (422, or 403/409 when every refusal is of
    that kind) names every refused item by its index:
    `{"error": {"code": "invalid_batch", "message", "items": [{"index", "code", "message"}]}}`. Fix those
    items and resend the whole batch: items already stored by an earlier attempt are matched by `event_id`
    and answered as stored (`created: false`)."""
    raw = await request.body()

    def record(session: DbSession) -> list[RecordedEvent]:
        principal = authenticate(session, token)  # the token first, as for one event
        body = read_json(raw)
        if not isinstance(body, dict) or set(body) != {"events"}:
            raise InvalidInput('the body is {"events": [...]}', code="invalid_batch")
        return submit_batch(session, principal, body["events"], id_base=runtime.settings.id_base)

    recorded = await in_unit_of_work(runtime, record)  # authenticate, record, commit: one thread hop
    created = any(r.created for r in recorded)
    # Plain dicts of BatchRead's shape (the response_model documents it): 500 models built and dumped per
    # batch cost about a twentieth of the request.
    return JSONResponse({"events": [_answer(r) for r in recorded]}, status_code=201 if created else 200)
