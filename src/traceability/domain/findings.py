"""Verification findings and verdicts: machine-readable codes with Thai and English text.

Every finding code belongs to one check group (``Code.check``): the verdict's summary marks a group failed or
warned by the worst finding in it. Codes and groups are part of the API (importers' systems read them): add,
never rename. ``docs/verification.md`` lists every code with its meaning, and the evidence a verdict carries
(``domain.evidence``) with every field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from traceability.domain.evidence import Evidence, RegistryRef, iso_utc

if TYPE_CHECKING:  # domain.risk imports this module (through lineage)
    from traceability.domain.risk import LotRisk


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    OK = "ok"


class Check(StrEnum):
    """The checks a verdict summarises, in the order they are reported."""

    REGISTRY = "registry"
    HASHES = "hashes"
    ANCHORS = "anchors"
    PREV_LINKS = "prev_links"
    MASS_BALANCE = "mass_balance"
    YIELD = "yield"
    CERTIFICATIONS = "certifications"
    ORIGIN_RISK = "origin_risk"


class Code(StrEnum):
    """A finding's stable code. ``check`` is the group it counts against."""

    # the registry the bundle names is not the one trusted
    UNKNOWN_REGISTRY = "unknown_registry"
    # hashes
    HASH_MISMATCH = "hash_mismatch"
    EVENT_UNREADABLE = "event_unreadable"
    # anchors
    NOT_ANCHORED = "not_anchored"
    MERKLE_PROOF = "merkle_proof"
    ANCHOR_MISSING = "anchor_missing"
    ANCHOR_BLOCK_MISMATCH = "anchor_block_mismatch"
    UNCONFIRMED = "unconfirmed"
    CHAIN_UNAVAILABLE = "chain_unavailable"
    CHAIN_NOT_CHECKED = "chain_not_checked"
    # hash chains and lineage
    BROKEN_PREV_LINK = "broken_prev_link"
    FORKED_CHAIN = "forked_chain"
    LOT_ORIGIN_MISSING = "lot_origin_missing"
    LOT_CREATED_TWICE = "lot_created_twice"
    LOT_MISSING = "lot_missing"
    EVENT_OUTSIDE_LINEAGE = "event_outside_lineage"
    # quantities
    MASS_BALANCE = "mass_balance"
    IMPLAUSIBLE_YIELD = "implausible_yield"
    HARVEST_PLOT_MISMATCH = "harvest_plot_mismatch"
    HARVEST_CROP_MISMATCH = "harvest_crop_mismatch"
    # certifications
    NOT_CERTIFIED = "not_certified"
    CERTIFICATION_UNCHECKED = "certification_unchecked"
    CERTIFICATION_DIGEST = "certification_digest"
    CERTIFICATION_SIGNATURE = "certification_signature"
    CERTIFICATION_INVALID = "certification_invalid"
    CERTIFICATION_REVOKED = "certification_revoked"
    CERTIFICATION_WRONG_AUTHORITY = "certification_wrong_authority"
    OFFICER_AFTER_ADMIN_CHANGE = "officer_after_admin_change"
    CERTIFICATION_EXPIRED = "certification_expired"
    # origin risk (domain.risk.RiskCode): what a record false when written leaves behind; always warnings
    YIELD_OUTLIER = "yield_outlier"
    CAPACITY_EXCEEDED = "capacity_exceeded"
    TOO_EARLY_HARVEST = "too_early_harvest"
    OFF_SEASON_HARVEST = "off_season_harvest"
    IMPOSSIBLE_TRANSPORT = "impossible_transport"
    COLD_CHAIN_EXCURSION = "cold_chain_excursion"
    PHOTO_REUSED = "photo_reused"
    UNUSUAL_PATTERN = "unusual_pattern"

    @property
    def check(self) -> Check:
        return _CHECK_OF[self]


_CHECK_OF: dict[Code, Check] = {
    Code.UNKNOWN_REGISTRY: Check.REGISTRY,
    Code.HASH_MISMATCH: Check.HASHES,
    Code.EVENT_UNREADABLE: Check.HASHES,
    Code.NOT_ANCHORED: Check.ANCHORS,
    Code.MERKLE_PROOF: Check.ANCHORS,
    Code.ANCHOR_MISSING: Check.ANCHORS,
    Code.ANCHOR_BLOCK_MISMATCH: Check.ANCHORS,
    Code.UNCONFIRMED: Check.ANCHORS,
    Code.CHAIN_UNAVAILABLE: Check.ANCHORS,
    Code.CHAIN_NOT_CHECKED: Check.ANCHORS,
    Code.BROKEN_PREV_LINK: Check.PREV_LINKS,
    Code.FORKED_CHAIN: Check.PREV_LINKS,
    Code.LOT_ORIGIN_MISSING: Check.PREV_LINKS,
    Code.LOT_CREATED_TWICE: Check.PREV_LINKS,
    Code.LOT_MISSING: Check.PREV_LINKS,
    Code.EVENT_OUTSIDE_LINEAGE: Check.PREV_LINKS,
    Code.MASS_BALANCE: Check.MASS_BALANCE,
    Code.IMPLAUSIBLE_YIELD: Check.YIELD,
    Code.HARVEST_PLOT_MISMATCH: Check.YIELD,
    Code.HARVEST_CROP_MISMATCH: Check.YIELD,
    Code.NOT_CERTIFIED: Check.CERTIFICATIONS,
    Code.CERTIFICATION_UNCHECKED: Check.CERTIFICATIONS,
    Code.CERTIFICATION_DIGEST: Check.CERTIFICATIONS,
    Code.CERTIFICATION_SIGNATURE: Check.CERTIFICATIONS,
    Code.CERTIFICATION_INVALID: Check.CERTIFICATIONS,
    Code.CERTIFICATION_REVOKED: Check.CERTIFICATIONS,
    Code.CERTIFICATION_WRONG_AUTHORITY: Check.CERTIFICATIONS,
    Code.OFFICER_AFTER_ADMIN_CHANGE: Check.CERTIFICATIONS,
    Code.CERTIFICATION_EXPIRED: Check.CERTIFICATIONS,
    Code.YIELD_OUTLIER: Check.ORIGIN_RISK,
    Code.CAPACITY_EXCEEDED: Check.ORIGIN_RISK,
    Code.TOO_EARLY_HARVEST: Check.ORIGIN_RISK,
    Code.OFF_SEASON_HARVEST: Check.ORIGIN_RISK,
    Code.IMPOSSIBLE_TRANSPORT: Check.ORIGIN_RISK,
    Code.COLD_CHAIN_EXCURSION: Check.ORIGIN_RISK,
    Code.PHOTO_REUSED: Check.ORIGIN_RISK,
    Code.UNUSUAL_PATTERN: Check.ORIGIN_RISK,
}


class Status(StrEnum):
    VERIFIED = "verified"
    WARNING = "warning"
    FAILED = "failed"


@dataclass(frozen=True)
class Finding:
    code: Code
    severity: Severity
    th: str
    en: str
    event_id: str | None = None
    lot_code: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code.value,
            "check": self.code.check.value,
            "severity": self.severity.value,
            "event_id": self.event_id,
            "lot_code": self.lot_code,
            "message": {"th": self.th, "en": self.en},
            "detail": self.detail,
        }


def worst(findings: list[Finding]) -> Severity:
    """ERROR if any finding is an error, else WARNING if there is any finding, else OK."""
    if any(f.severity is Severity.ERROR for f in findings):
        return Severity.ERROR
    return Severity.WARNING if findings else Severity.OK


_STATUS_OF = {Severity.ERROR: Status.FAILED, Severity.WARNING: Status.WARNING, Severity.OK: Status.VERIFIED}


@dataclass(frozen=True)
class CheckResult:
    """One line of a verdict's summary: a check group, how it went, what was checked."""

    check: Check
    severity: Severity
    th: str
    en: str
    detail: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.check.value,
            "severity": self.severity.value,
            "message": {"th": self.th, "en": self.en},
            "detail": self.detail,
        }


def check_result(check: Check, th: str, en: str, findings: list[Finding], **detail: Any) -> CheckResult:
    """The summary line of ``check``: as severe as the worst finding that counts against it."""
    return CheckResult(check, worst([f for f in findings if f.code.check is check]), th, en, detail)


@dataclass(frozen=True)
class Verdict:
    """The outcome (``status``), what is wrong (``findings``), a line per check (``checks``), and what was
    looked at (``evidence``), against which registry (``registry``, the trusted one) and when."""

    lot_code: str
    status: Status
    findings: tuple[Finding, ...]
    checks: tuple[CheckResult, ...]
    evidence: Evidence = field(default_factory=Evidence)
    registry: RegistryRef | None = None
    checked_at: datetime | None = None
    risk: LotRisk | None = None  # the origin-risk score and its signals (domain.risk)

    @classmethod
    def of(
        cls,
        lot_code: str,
        findings: list[Finding],
        checks: list[CheckResult],
        *,
        evidence: Evidence | None = None,
        registry: RegistryRef | None = None,
        checked_at: datetime | None = None,
        risk: LotRisk | None = None,
    ) -> Verdict:
        return cls(
            lot_code,
            _STATUS_OF[worst(findings)],
            tuple(findings),
            tuple(checks),
            evidence or Evidence(),
            registry,
            checked_at,
            risk,
        )

    @property
    def ok(self) -> bool:
        return self.status is Status.VERIFIED

    def to_json(self) -> dict[str, Any]:
        return {
            "lot_code": self.lot_code,
            "status": self.status.value,
            "reasons": [f.to_json() for f in self.findings],
            "checks": [c.to_json() for c in self.checks],
            "registry": (self.registry or RegistryRef(None, None)).to_json(),
            "checked_at": iso_utc(self.checked_at),
            "risk": self.risk.to_json() if self.risk is not None else None,
            "evidence": self.evidence.to_json(),
        }
