"""The states rows move through and the roles they play, as enums. The migration turns each into a CHECK
constraint (``traceability/migrations``), so a typo in a status can never reach the database."""

from __future__ import annotations

from enum import StrEnum


class OutboxStatus(StrEnum):
    """An event's way to the chain: waiting → in a batch → its batch is final."""

    PENDING = "pending"
    BATCHED = "batched"
    ANCHORED = "anchored"


class BatchStatus(StrEnum):
    """A Merkle batch: row and root written ahead → receipt seen → confirmations reached."""

    SENDING = "sending"
    MINED = "mined"
    ANCHORED = "anchored"


class LotRole(StrEnum):
    """What an event does to a lot: creates it (``out``), consumes it (``in``) or acts on it (``subject``)."""

    IN = "in"
    OUT = "out"
    SUBJECT = "subject"


class ChainOpKind(StrEnum):
    """Chain writes other than anchoring that the database must agree with (write-ahead, like batches)."""

    ADD_AUTHORITY = "add_authority"
    ADD_OFFICER = "add_officer"
    REVOKE_OFFICER = "revoke_officer"
    CERTIFY = "certify"
    REVOKE_CERTIFICATION = "revoke_certification"


class ChainOpStatus(StrEnum):
    """intent recorded and committed → claimed and sent (hash recorded once known) → result recorded; or
    failed."""

    INTENT = "intent"
    SENT = "sent"
    DONE = "done"
    FAILED = "failed"


class PartyStatus(StrEnum):
    """An authority or officer row: ``pending`` until its chain registration is final."""

    PENDING = "pending"
    ACTIVE = "active"
    REVOKED = "revoked"


class Role(StrEnum):
    """Who a bearer token speaks for."""

    FARMER = "farmer"
    OFFICER = "officer"


def check_in(column: str, enum: type[StrEnum]) -> str:
    """The SQL of a CHECK constraint that ``column`` holds one of ``enum``'s values."""
    return f"{column} IN ({', '.join(repr(m.value) for m in enum)})"
