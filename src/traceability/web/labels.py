"""Printable A4 label sheets for a packing house: ``GET /labels/{lot_code}`` (one lot, a full sheet or
``?copies=N``) and ``GET /labels?lot=A&lot=B…`` (a packing run's output lots, one label each or ``copies``
each).

The sheet is laid out for a stock a packing house can buy anywhere: A4, 3 × 7 labels of 63.5 × 38.1 mm
(Avery L7160 and its equivalents), 15.15 mm top and bottom, 7.25 mm left and right, 2.5 mm between columns.
Everything is in millimetres with ``@page { size: A4; margin: 0 }``, so the sheet on screen is the sheet on
paper: printed from a browser at 100 % the labels land on the stock, and no browser header or footer is
printed across the top row. ``?start=N`` skips the first N-1 positions so that a half-used sheet is not
wasted.

Each label carries its lot's QR code (``web/qr.py``, level H, drawn at 28 mm with its quiet zone, so the
symbol itself is over 20 mm and a phone reads it through a plastic bag), the lot code in large monospace,
the product in Thai and in English whatever the page language (packs cross borders), the GTIN when the lot
has one, and a short "scan me" line. Each lot's code is drawn once per page as an SVG ``<symbol>`` that
every copy ``<use>``-s: a full sheet stays small. No script and no external request: a label sheet is
printed in packing sheds with poor connections.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Final
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from traceability.api.deps import RuntimeDep, SessionDep
from traceability.api.ratelimit import limiter
from traceability.errors import RateLimited
from traceability.services.labels import LabelItem, UnknownLot, label_items, normalise_codes
from traceability.web.i18n import pick_lang, translations
from traceability.web.pages import render
from traceability.web.qr import qr_svg
from traceability.web.session import ClientDep

router = APIRouter(tags=["labels"], include_in_schema=False)

STOCK: Final = "Avery L7160"
COLUMNS: Final = 3
ROWS: Final = 7
PER_SHEET: Final = COLUMNS * ROWS
MAX_COPIES: Final = 60
MAX_LOTS: Final = 24
MAX_SHEETS: Final = 6
MAX_LABELS: Final = MAX_SHEETS * PER_SHEET
CACHE: Final = "public, max-age=3600"
SVG_NS: Final = "{http://www.w3.org/2000/svg}"


@dataclass(frozen=True)
class QrSymbol:
    """A lot's QR code as an SVG symbol: ``viewBox`` in modules (quiet zone included) and one path."""

    id: str
    view_box: str
    path: str


@dataclass(frozen=True)
class Label:
    code: str
    product_th: str
    product_en: str
    gtin: str | None
    link: str
    symbol: str


@dataclass(frozen=True)
class Sheet:
    """One A4 page: ``cells`` in reading order, None for a position left blank (``?start``)."""

    cells: tuple[Label | None, ...]


def qr_symbol(symbol_id: str, data: str) -> QrSymbol:
    """``data``'s QR code (``web.qr.qr_svg``) taken apart into its viewBox and its single path."""
    root = ET.fromstring(qr_svg(data))
    path = root.find(f"{SVG_NS}path")
    if path is None:  # qr_svg draws one path; anything else is a bug there, not bad input
        raise ValueError("qr_svg drew no path")
    return QrSymbol(id=symbol_id, view_box=root.attrib["viewBox"], path=path.attrib["d"])


def lay_out(items: Sequence[LabelItem], copies: int, start: int) -> tuple[list[Sheet], dict[str, QrSymbol]]:
    """``copies`` labels of each item, in order, from position ``start`` (1-based) of the first sheet."""
    symbols = {item.code: qr_symbol(f"qr{n}", item.link) for n, item in enumerate(items, 1)}
    cells: list[Label | None] = [None] * (start - 1)
    for item in items:
        label = Label(
            code=item.code,
            product_th=item.product_th,
            product_en=item.product_en,
            gtin=item.gtin,
            link=item.link,
            symbol=symbols[item.code].id,
        )
        cells.extend([label] * copies)
    sheets = [Sheet(tuple(cells[i : i + PER_SHEET])) for i in range(0, len(cells), PER_SHEET)]
    return sheets, symbols


def _whole(value: str | None, default: int, low: int, high: int) -> int | None:
    """A whole number in ``[low, high]`` from a query parameter (``default`` when absent), None if not."""
    if value is None or not value.strip():
        return default
    text = value.strip()
    if not text.isascii() or not text.isdigit() or len(text) > 6:
        return None
    number = int(text)
    return number if low <= number <= high else None


def _switch_url(request: Request, other: str) -> str:
    """This page in the other language, keeping its lots and options."""
    kept = [(k, v) for k, v in request.query_params.multi_items() if k != "lang"]
    return f"{request.url.path}?{urlencode([*kept, ('lang', other)])}"


def _problem(
    request: Request,
    lang: str,
    status_code: int,
    title: str,
    message: str,
    headers: dict[str, str] | None = None,
) -> Response:
    """A short page saying what went wrong, in the page's language (never the API's JSON)."""
    page = render(
        request,
        "labels_error.html",
        lang,
        {"title": title, "message": message, "switch_url": request.url.path},
        status_code=status_code,
    )
    page.headers["Cache-Control"] = "no-store"
    for name, value in (headers or {}).items():
        page.headers[name] = value
    return page


def _sheet_page(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    client: str,
    codes: Sequence[str],
    copies_text: str | None,
    start_text: str | None,
    lang: str | None,
    *,
    multi: bool,
) -> Response:
    language = pick_lang(lang)
    _ = translations(language).gettext
    rate = runtime.settings.public_rate_per_min
    try:
        limiter(request, "labels", rate, max(10, rate // 10)).check(client, "label sheets")
    except RateLimited as exc:
        return _problem(
            request,
            language,
            429,
            _("Please wait a moment"),
            _("Too many label sheets were asked for from this address. Please wait a minute and try again."),
            exc.headers,
        )
    wanted = normalise_codes(codes)
    start = _whole(start_text, 1, 1, PER_SHEET)
    # One lot fills the rest of the sheet by default; a packing run gets one label of each lot.
    default_copies = 1 if multi or start is None else PER_SHEET - (start - 1)
    copies = _whole(copies_text, default_copies, 1, MAX_COPIES)
    if not wanted:
        problem = _("Name at least one lot, e.g. /labels?lot=LOT-CODE.")
    elif len(wanted) > MAX_LOTS:
        problem = _("At most %(count)s lots fit on one print run.") % {"count": MAX_LOTS}
    elif copies is None:
        problem = _("The number of copies must be a whole number from 1 to %(max)s.") % {"max": MAX_COPIES}
    elif start is None:
        problem = _("The first label position must be a whole number from 1 to %(max)s.") % {"max": PER_SHEET}
    elif start - 1 + copies * len(wanted) > MAX_LABELS:
        problem = _("At most %(count)s labels (%(sheets)s sheets) can be printed at once.") % {
            "count": MAX_LABELS,
            "sheets": MAX_SHEETS,
        }
    else:
        problem = None
    if problem is not None or copies is None or start is None:
        return _problem(request, language, 422, _("This label sheet cannot be made"), problem or "")
    try:
        items = label_items(session, wanted, runtime.settings.public_base_url)
    except UnknownLot as exc:
        return _problem(
            request,
            language,
            404,
            _("No lot with this code"),
            _("There is no lot with the code %(code)s. Check the code on the lot's page.")
            % {"code": exc.lot_code[:40]},
        )
    sheets, symbols = lay_out(items, copies, start)
    context = {
        "sheets": sheets,
        "symbols": list(symbols.values()),
        "lots": items,
        "labels": copies * len(items),
        "stock": STOCK,
        "copies": copies,
        "max_copies": MAX_COPIES,
        "start": start,
        "multi": multi,
        "switch": _switch_url(request, "en" if language == "th" else "th"),
    }
    page = render(request, "labels.html", language, context)
    page.headers["Cache-Control"] = CACHE
    return page


@router.get("/labels/{lot_code}")
def lot_labels(
    request: Request,
    lot_code: str,
    session: SessionDep,
    runtime: RuntimeDep,
    client: ClientDep,
    copies: str | None = None,
    start: str | None = None,
    lang: str | None = None,
) -> Response:
    """An A4 sheet of one lot's labels: the rest of the sheet from position ``start`` (1–21, default 1), or
    ``copies`` (1–60, over more sheets)."""
    return _sheet_page(request, session, runtime, client, [lot_code], copies, start, lang, multi=False)


@router.get("/labels")
def run_labels(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    client: ClientDep,
    lot: Annotated[list[str] | None, Query()] = None,
    copies: str | None = None,
    start: str | None = None,
    lang: str | None = None,
) -> Response:
    """Labels of up to 24 lots (a packing run's output), ``copies`` of each (default one), in order."""
    return _sheet_page(request, session, runtime, client, lot or [], copies, start, lang, multi=True)
