"""``GET /api/v1/lots/{lot_code}``: a lot and its events with their anchoring state."""

from __future__ import annotations

from fastapi import APIRouter

from traceability.api.deps import CurrentPrincipal, SessionDep
from traceability.api.schemas import AnchorRead, ErrorRead, LotEventRead, LotRead, ProductRead
from traceability.services.lots import lot_view

router = APIRouter(prefix="/api/v1/lots", tags=["lots"])


@router.get(
    "/{lot_code}",
    response_model=LotRead,
    responses={401: {"model": ErrorRead}, 404: {"model": ErrorRead, "description": "unknown lot"}},
)
def read_lot(lot_code: str, session: SessionDep, principal: CurrentPrincipal) -> LotRead:
    """A lot for any signed-in farmer or officer: product (Thai and English), GTIN, status (`pending` until
    every event is anchored), and its events in hash-chain order, each with its CBV 2.0 hash and anchoring
    state (`pending`, or `anchored` with block number and transaction hash). No personal data."""
    view = lot_view(session, lot_code)
    return LotRead(
        lot_code=view.code,
        product=ProductRead(th=view.product_th, en=view.product_en),
        gtin=view.gtin,
        status=view.status,
        events=[
            LotEventRead(
                event_id=e.event_id,
                kind=e.kind,
                event_time=e.event_time,
                hash=e.hash,
                anchor=AnchorRead(
                    status="anchored" if e.anchored else "pending",
                    block_number=e.block_number,
                    tx_hash=e.tx_hash,
                    block_time=e.block_time,
                ),
            )
            for e in view.events
        ],
    )
