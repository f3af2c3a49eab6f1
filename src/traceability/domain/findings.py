"""Verification findings and verdicts: machine-readable codes with Thai and English text."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    OK = "ok"


class Status(StrEnum):
    VERIFIED = "verified"
    WARNING = "warning"
    FAILED = "failed"


@dataclass(frozen=True)
class Finding:
    code: str
    severity: Severity
    th: str
    en: str
    event_id: str | None = None
    lot_code: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
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
class Verdict:
    lot_code: str
    status: Status
    findings: tuple[Finding, ...]
    checks: tuple[Finding, ...]

    @classmethod
    def of(cls, lot_code: str, findings: list[Finding], checks: list[Finding]) -> Verdict:
        status = {
            Severity.ERROR: Status.FAILED,
            Severity.WARNING: Status.WARNING,
            Severity.OK: Status.VERIFIED,
        }
        return cls(lot_code, status[worst(findings)], tuple(findings), tuple(checks))

    @property
    def ok(self) -> bool:
        return self.status is Status.VERIFIED

    def to_json(self) -> dict[str, Any]:
        return {
            "lot_code": self.lot_code,
            "status": self.status.value,
            "reasons": [f.to_json() for f in self.findings],
            "checks": [c.to_json() for c in self.checks],
        }
