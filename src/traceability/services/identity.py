"""The identifier base: fixed for the life of a ledger.

Lot, place and party URIs inside hashed events are ``{id_base}/lot/…``, ``{id_base}/place/…`` and
``{id_base}/party/…`` (docs/identifiers.md). Changing the base would change what every new event hashes to and
split one lot's history across two names, so the base is recorded in the database (``ledger_meta``) when the
first event is recorded and any other base is refused afterwards. ``TRACE_PUBLIC_BASE_URL`` (QR codes, pages)
is a different setting and may change freely.
"""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from traceability.domain.epcis import normalise_id_base
from traceability.errors import ConfigurationError
from traceability.store import models
from traceability.store.repository import Repository

ID_BASE_KEY = "id_base"
DEFAULT_ID_BASE = "http://127.0.0.1:8000"
"""The demo's base: identifiers then resolve on the local server. Production sets ``TRACE_ID_BASE`` once, to
an address the organisation will keep serving (e.g. ``https://id.example.or.th``)."""


def recorded_id_base(session: Session) -> str | None:
    """The base recorded on first use, or None while the ledger is empty."""
    row = session.get(models.LedgerMeta, ID_BASE_KEY)
    return row.value if row is not None else None


def ensure_id_base(session: Session, requested: str | None) -> str:
    """The ledger's identifier base: the recorded one; else ``requested`` (or the default), now recorded.

    ``requested`` None means "whatever is recorded". A requested base that differs from the recorded one is a
    configuration error: hashes already anchored depend on the old one.
    """
    recorded = recorded_id_base(session)
    if recorded is not None:
        if requested is not None and normalise_id_base(requested) != recorded:
            raise ConfigurationError(
                f"TRACE_ID_BASE is {requested!r} but this ledger's identifiers were issued under "
                f"{recorded!r}; the identifier base can never change (unset TRACE_ID_BASE or set it back)",
                code="id_base_changed",
            )
        return recorded
    base = normalise_id_base(requested or DEFAULT_ID_BASE)
    # Several first events may arrive at once on a new ledger: whichever commits its row first fixes the base;
    # the others find the row taken (unique key) and use what it says, in a savepoint so their own
    # transaction carries on. (The write transaction is opened first: on SQLite a savepoint taken before any
    # write would itself be the transaction, and its release would commit.)
    Repository(session).begin_writing()
    try:
        with session.begin_nested():
            session.add(models.LedgerMeta(key=ID_BASE_KEY, value=base))
    except IntegrityError:
        session.expire_all()
        return ensure_id_base(session, requested)
    return base
