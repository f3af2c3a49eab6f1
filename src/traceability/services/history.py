"""How a stored event reads on the pages: parsed back from its EPCIS body, named by its step, and — for a
certification — whether it stands now. One rule for the farmer's, the officer's and the buyer's pages."""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime
from typing import Literal

from pydantic import ValidationError

from traceability.domain import codec
from traceability.domain.epcis import from_epcis
from traceability.domain.events import Certification, Event, Grading, Transport
from traceability.store import models

CertState = Literal["active", "revoked", "expired"]


def parsed_event(row: models.Event) -> Event | None:
    """The event a row stores, or None for a body that no longer reads (the page shows it by its kind alone;
    `trace reconcile` and the verdict report it)."""
    try:
        return from_epcis(codec.loads(row.body))
    except (ValueError, KeyError, TypeError, ValidationError):
        return None


def step_of(kind: str, event: Event | None) -> str:
    """The step a page names: the event's kind, a transport as ``ship``/``receive``, a rejecting grading as
    ``rejected``."""
    if isinstance(event, Transport):
        return event.leg
    if isinstance(event, Grading) and event.disposition == "non_conformant":
        return "rejected"
    return kind


def certification_state(
    cert: Certification, revoked: Collection[str], now: datetime
) -> tuple[CertState, datetime | None]:
    """(state, expiry) of a certification: revoked once a revocation event names it, else expired once its
    expiry has passed, else active. The chain's ``isValid`` is the verdict's judge; this is what the ledger's
    events say, for pages that must not wait on the chain."""
    expires = datetime.fromtimestamp(cert.expires, UTC) if cert.expires else None
    if cert.cert_id in revoked:
        return "revoked", expires
    if expires is not None and expires <= now:
        return "expired", expires
    return "active", expires
