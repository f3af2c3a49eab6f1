"""QR codes for labels: ``GET /qr/{lot_code}.svg`` and ``.png``, carrying the lot's public link
(``services.links.lot_link``).

Error correction is level H: up to about 30 % of the symbol can be scuffed, torn or covered by a price
sticker and it still reads — a label on a crate of produce lives a hard life. The SVG is a single path
(small, sharp at any print size); the PNG is 10 pixels per module with the 4-module quiet zone the standard
asks for. A code never changes for a lot, so both are cached for a day by browsers and proxies.
"""

from __future__ import annotations

import io
from typing import Final

import qrcode
import qrcode.image.svg
from fastapi import APIRouter
from fastapi.responses import Response

from traceability.api.deps import RuntimeDep, SessionDep
from traceability.services.links import lot_link

router = APIRouter(tags=["labels"])

BOX_PX: Final = 10
QUIET_ZONE: Final = 4
CACHE: Final = "public, max-age=86400"


def _code(data: str) -> qrcode.QRCode:
    code = qrcode.QRCode(
        error_correction=qrcode.constants.ERROR_CORRECT_H, box_size=BOX_PX, border=QUIET_ZONE
    )
    code.add_data(data)
    code.make(fit=True)
    return code


def qr_svg(data: str) -> bytes:
    """``data`` as an SVG QR code (one path)."""
    buffer = io.BytesIO()
    _code(data).make_image(image_factory=qrcode.image.svg.SvgPathImage).save(buffer)
    return buffer.getvalue()


def qr_png(data: str) -> bytes:
    """``data`` as a black-on-white PNG QR code."""
    buffer = io.BytesIO()
    _code(data).make_image(fill_color="black", back_color="white").save(buffer, format="PNG")
    return buffer.getvalue()


@router.get(
    "/qr/{lot_code}.svg",
    response_class=Response,
    responses={
        200: {
            "description": "An SVG image (a single path, level H) to print on a label",
            "content": {
                "image/svg+xml": {
                    "schema": {"type": "string"},
                    "example": '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 41 41">'
                    '<path d="M4 4h7v1h-7z…" fill="#000"/></svg>',
                }
            },
        },
        404: {"description": "unknown lot"},
    },
)
def lot_qr_svg(lot_code: str, session: SessionDep, runtime: RuntimeDep) -> Response:
    """The lot's QR code as SVG, carrying its GS1 Digital Link URI (or its provenance page without a GTIN)."""
    link = lot_link(session, lot_code, runtime.settings.public_base_url)
    return Response(qr_svg(link), media_type="image/svg+xml", headers={"Cache-Control": CACHE})


@router.get(
    "/qr/{lot_code}.png",
    response_class=Response,
    responses={
        200: {
            "description": "A black-on-white PNG image (level H)",
            "content": {
                "image/png": {"schema": {"type": "string", "format": "binary"}, "example": "(PNG bytes)"}
            },
        },
        404: {"description": "unknown lot"},
    },
)
def lot_qr_png(lot_code: str, session: SessionDep, runtime: RuntimeDep) -> Response:
    """The lot's QR code as PNG, carrying the same URI as the SVG."""
    link = lot_link(session, lot_code, runtime.settings.public_base_url)
    return Response(qr_png(link), media_type="image/png", headers={"Cache-Control": CACHE})
