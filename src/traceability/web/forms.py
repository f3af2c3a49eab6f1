"""What every farmer's event form shares: its one-time token, its time field and the units farmers use.

**Exactly once.** A form is rendered with a fresh UUID in a hidden ``event_id`` field and the moment it was
opened in its ``event_time`` field. The event is recorded under that ``event_id`` with the same value as its
``Idempotency-Key``: a double tap, a browser's retry or a resend from the phone's offline queue posts the same
body again and gets the same event back (``services.events.record_event``), never a second one; the same token
with different content is refused (409), never a silent overwrite.

**Units.** Farmers weigh in kilograms (กก.) or tonnes (ตัน) and measure land in ไร่, งาน and ตารางวา
(1 ไร่ = 4 งาน = 400 ตารางวา). Quantities go into events in their own unit (UN/CEFACT ``KGM``/``TNE``);
areas in rai.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Final
from zoneinfo import ZoneInfo

from traceability.errors import InvalidInput

MASS_UNITS: Final = {"kg": "KGM", "t": "TNE"}
"""Form value → UN/CEFACT code: กิโลกรัม and ตัน."""

NGAN_PER_RAI: Final = Decimal(4)
SQUARE_WA_PER_RAI: Final = Decimal(400)
MAX_NUMBER_CHARS: Final = 16
MAX_NUMBER: Final = Decimal(10) ** 9  # far above any farm's kg or rai; keeps arithmetic exact and bounded
LOCAL_TIME_FORMAT: Final = "%Y-%m-%dT%H:%M"


def new_form_token() -> str:
    """The hidden ``event_id`` of a freshly rendered form."""
    return str(uuid.uuid4())


def form_token(value: str | None) -> str:
    """A posted form's token, checked to be a UUID (it becomes the event's id)."""
    try:
        return str(uuid.UUID(str(value or "")))
    except ValueError:
        raise InvalidInput("the form has no valid token: open it again", code="invalid_form_token") from None


def number(value: str | None, what: str) -> Decimal:
    """A decimal typed by a person: spaces, thousands separators and a decimal comma tolerated."""
    text = (value or "").strip().replace(" ", "").replace(",", "")
    if not text or len(text) > MAX_NUMBER_CHARS:
        raise InvalidInput(f"{what} is missing or too long", code="invalid_number")
    try:
        parsed = Decimal(text)
    except InvalidOperation:
        raise InvalidInput(f"{what} is not a number: {value!r}", code="invalid_number") from None
    if not parsed.is_finite() or parsed < 0:
        raise InvalidInput(f"{what} must be a positive number", code="invalid_number")
    if parsed > MAX_NUMBER:
        raise InvalidInput(f"{what} is far too large", code="invalid_number")
    return parsed


def mass(value: str | None, unit: str | None) -> dict[str, str]:
    """An event's ``quantity`` (``{value, uom}``) from a number and a unit of the form (``kg`` or ``t``)."""
    uom = MASS_UNITS.get(unit or "kg")
    if uom is None:
        raise InvalidInput(f"unknown unit {unit!r}: kg or t", code="invalid_unit")
    return {"value": str(number(value, "the quantity")), "uom": uom}


def area_rai(rai: str | None, ngan: str | None = None, square_wa: str | None = None) -> Decimal:
    """An area in rai from ไร่, งาน and ตารางวา fields (empty ones count as 0)."""
    parts = [(rai, Decimal(1), "rai"), (ngan, NGAN_PER_RAI, "ngan"), (square_wa, SQUARE_WA_PER_RAI, "wa")]
    total = sum((number(text, what) / per for text, per, what in parts if text and text.strip()), Decimal(0))
    if total <= 0:
        raise InvalidInput("the area must be more than 0", code="invalid_number")
    return total.quantize(Decimal("0.001"))


def local_now(tz: str) -> str:
    """Now as a ``datetime-local`` field's value, in the service's time zone."""
    return datetime.now(ZoneInfo(tz)).strftime(LOCAL_TIME_FORMAT)


def local_time(value: str | None, tz: str) -> datetime:
    """A ``datetime-local`` field's value (``2026-11-22T10:30``) as an aware time in the service's zone."""
    try:
        naive = datetime.strptime((value or "").strip()[:16], LOCAL_TIME_FORMAT)
    except ValueError:
        raise InvalidInput("the date and time are not valid", code="invalid_time") from None
    return naive.replace(tzinfo=ZoneInfo(tz))
