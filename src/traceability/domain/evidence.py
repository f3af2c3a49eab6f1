"""What a verdict checked, check by check: the values an importer needs to re-check it by hand. Pure data.

A verdict's ``reasons`` say what is wrong; its ``evidence`` says what was looked at, so a compliance system
can store and audit the check itself, not only its outcome (``docs/verification.md`` describes every field).
``domain.lineage`` builds the hash-chain, mass-balance and yield evidence while it checks; ``services.verify``
builds the event, anchor and certification evidence from the chain answers it already fetched.

In the JSON, quantities are exact decimal strings in kilograms (``"1190"``, ``"2.5"``: a float cannot hold
every decimal) and times are ISO 8601 in UTC with a ``Z``. A value that was not checked is ``null``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from traceability.domain.ids import hash_ni


def iso_utc(moment: datetime | None) -> str | None:
    """``2026-10-23T01:30:00Z``: ISO 8601 in UTC (fractions of a second kept when there are any)."""
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def from_unix(seconds: int) -> datetime | None:
    """A chain timestamp (unix seconds) as an aware datetime; 0 (the contract's "none") as None."""
    return datetime.fromtimestamp(seconds, UTC) if seconds else None


def kg_text(value: Decimal | None) -> str | None:
    """An exact decimal without exponent or trailing zeros: ``Decimal("4500.0")`` → ``"4500"``."""
    if value is None:
        return None
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "") else text


# --- events and anchors ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PrevLink:
    """One hash-chain link an event makes. For every lot of the lineage the event continues (touches without
    creating it): the hash of the lot's previous event that it names, found in the bundle (``hash`` None and
    ``found`` False when it names none there). A hash it names that is no event of the bundle appears with
    ``lot_code`` None and ``found`` False (normal for a lot outside the lineage carried on the same truck)."""

    event_id: str
    lot_code: str | None
    hash: str | None
    found: bool

    def to_json(self) -> dict[str, Any]:
        return {"lot_code": self.lot_code, "hash": self.hash, "found": self.found}


@dataclass(frozen=True)
class AnchorEvidence:
    """Where the bundle says an event's batch root was anchored, and what the chain said about it.

    ``merkle_ok``: the proof leads from the event's recomputed hash to ``root`` (checked locally);
    ``block_time``: the contract's ``anchoredAt(root)``, the time of the block that anchored it (None if the
    chain was not asked or does not know the root); ``included``: the root is anchored in the block named,
    that block is canonical, and the contract's ``verifyEvent`` accepts the proof (None: not checked)."""

    root: str
    proof: tuple[str, ...]
    tx_hash: str
    block_number: int
    block_hash: str
    merkle_ok: bool
    block_time: datetime | None = None
    included: bool | None = None
    confirmations: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "root": self.root,
            "proof": list(self.proof),
            "tx_hash": self.tx_hash,
            "block_number": self.block_number,
            "block_hash": self.block_hash,
            "block_time": iso_utc(self.block_time),
            "merkle_ok": self.merkle_ok,
            "included": self.included,
            "confirmations": self.confirmations,
        }


@dataclass(frozen=True)
class EventEvidence:
    """One event of the bundle: the hash claimed and the hash recomputed from its EPCIS body (CBV 2.0), its
    hash-chain links and its anchor. ``kind`` and ``event_time`` are None when the body cannot be read."""

    event_id: str
    kind: str | None
    lots: tuple[str, ...]
    event_time: datetime | None
    hash: str
    recomputed: str | None
    prev: tuple[PrevLink, ...] = ()
    anchor: AnchorEvidence | None = None
    in_lineage: bool = True

    @property
    def hash_id(self) -> str | None:
        """The CBV 2.0 Event Hash ID of the body as it is in the bundle (``ni:///sha-256;…?ver=CBV2.0``)."""
        return hash_ni(self.recomputed) if self.recomputed else None

    def to_json(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "kind": self.kind,
            "lots": list(self.lots),
            "event_time": iso_utc(self.event_time),
            "hash": self.hash,
            "recomputed": self.recomputed,
            "hash_ok": self.recomputed == self.hash,
            "hash_id": self.hash_id,
            "in_lineage": self.in_lineage,
            "prev": [p.to_json() for p in self.prev],
            "anchor": self.anchor.to_json() if self.anchor is not None else None,
        }


# --- quantities --------------------------------------------------------------------------------------------


class MovementKind(StrEnum):
    """What an event does to the kilograms of its lots (``MassBalanceEntry.kind``)."""

    HARVEST = "harvest"  # adds to the lot
    COOLING = "cooling"  # observes part of the lot: no more than it holds
    GRADING = "grading"  # a conformant grading: observes, as cooling
    GRADING_REJECT = "grading_reject"  # a non-conformant grading: the rejected kg leave the lot
    TRANSFORMATION = "transformation"  # packing: inputs taken from their lots, outputs created
    SHIPPING = "shipping"  # taken from the lot into transit
    RECEIVING = "receiving"  # taken from transit back into the lot


@dataclass(frozen=True)
class LotKg:
    """A lot's part in a movement. For an input: ``kg`` taken (or observed) and ``available_kg``, what the
    lot held (in transit, for a receipt) just before; ``checked`` False for a lot outside the lineage, whose
    history is not in view. For an output: ``kg`` created or received, ``available_kg`` None."""

    lot_code: str
    kg: Decimal
    available_kg: Decimal | None = None
    checked: bool = True

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"lot_code": self.lot_code, "kg": kg_text(self.kg)}
        if self.available_kg is not None or not self.checked:
            out["available_kg"] = kg_text(self.available_kg)
            out["checked"] = self.checked
        return out


@dataclass(frozen=True)
class MassBalanceEntry:
    """One event's effect on the lineage's kilograms, applied in event-time order: what it took from each
    input lot against what that lot held just before, what it created, and whether it adds up."""

    event_id: str
    kind: MovementKind
    event_time: datetime
    inputs: tuple[LotKg, ...]
    outputs: tuple[LotKg, ...]
    ok: bool

    @property
    def input_kg(self) -> Decimal:
        return sum((i.kg for i in self.inputs), Decimal(0))

    @property
    def output_kg(self) -> Decimal:
        return sum((o.kg for o in self.outputs), Decimal(0))

    def to_json(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "kind": self.kind.value,
            "event_time": iso_utc(self.event_time),
            "inputs": [i.to_json() for i in self.inputs],
            "outputs": [o.to_json() for o in self.outputs],
            "input_kg": kg_text(self.input_kg),
            "output_kg": kg_text(self.output_kg),
            "ok": self.ok,
        }


@dataclass(frozen=True)
class YieldEvidence:
    """One harvest against its planting: the lot's harvests so far per planted rai, against the crop's
    plausible ceiling times the tolerance. ``ok`` None when it could not be judged (no planting in view, or a
    crop without a ceiling); False when a yield, plot or crop check failed."""

    event_id: str
    lot_code: str
    plot_id: str
    crop: str
    harvest_kg: Decimal
    lot_harvest_kg: Decimal
    area_rai: Decimal | None
    planted_plot_id: str | None
    planted_crop: str | None
    kg_per_rai: Decimal | None
    ceiling_kg_per_rai: Decimal | None
    ok: bool | None

    def to_json(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "lot_code": self.lot_code,
            "plot_id": self.plot_id,
            "crop": self.crop,
            "area_rai": kg_text(self.area_rai),
            "harvest_kg": kg_text(self.harvest_kg),
            "lot_harvest_kg": kg_text(self.lot_harvest_kg),
            "kg_per_rai": kg_text(self.kg_per_rai),
            "ceiling_kg_per_rai": kg_text(self.ceiling_kg_per_rai),
            "planted_plot_id": self.planted_plot_id,
            "planted_crop": self.planted_crop,
            "ok": self.ok,
        }


# --- certifications ----------------------------------------------------------------------------------------


class CertStatus(StrEnum):
    VALID = "valid"
    REVOKED = "revoked"
    EXPIRED = "expired"
    INVALID = "invalid"
    UNCHECKED = "unchecked"


@dataclass(frozen=True)
class CertificationEvidence:
    """One certification event of the lineage: who signed (an address, never a name), whose key the EIP-712
    signature recovers to, when the chain recorded it, until when it holds, and its status. ``issued`` is the
    chain's record (None if not recorded or not asked); ``expires`` None means it never expires."""

    cert_id: str
    event_id: str
    lot_code: str
    standard: str
    authority: str
    officer: str
    recovered_signer: str | None
    issued: datetime | None
    expires: datetime | None
    tx_hash: str | None
    status: CertStatus
    revoked: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "cert_id": self.cert_id,
            "event_id": self.event_id,
            "lot_code": self.lot_code,
            "standard": self.standard,
            "authority": self.authority,
            "officer": self.officer,
            "recovered_signer": self.recovered_signer,
            "issued": iso_utc(self.issued),
            "expires": iso_utc(self.expires),
            "revoked": iso_utc(self.revoked),
            "tx_hash": self.tx_hash,
            "status": self.status.value,
        }


# --- all of it ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RegistryRef:
    """The registry a verdict was checked against: the one the verifier trusts (pinned), not the bundle's."""

    chain_id: int | None
    contract: str | None

    def to_json(self) -> dict[str, Any]:
        return {"chain_id": self.chain_id, "contract": self.contract}


@dataclass(frozen=True)
class Evidence:
    """Every check's evidence, one list per check (empty when the check did not run)."""

    events: tuple[EventEvidence, ...] = ()
    mass_balance: tuple[MassBalanceEntry, ...] = ()
    yields: tuple[YieldEvidence, ...] = ()
    certifications: tuple[CertificationEvidence, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "events": [e.to_json() for e in self.events],
            "mass_balance": [m.to_json() for m in self.mass_balance],
            "yield": [y.to_json() for y in self.yields],
            "certifications": [c.to_json() for c in self.certifications],
        }


__all__ = [
    "AnchorEvidence",
    "CertStatus",
    "CertificationEvidence",
    "EventEvidence",
    "Evidence",
    "LotKg",
    "MassBalanceEntry",
    "MovementKind",
    "PrevLink",
    "RegistryRef",
    "YieldEvidence",
    "from_unix",
    "iso_utc",
    "kg_text",
]
