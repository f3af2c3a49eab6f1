"""Request and response bodies of the JSON API: separate from the ORM models, named …Create / …Read."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from traceability.api import examples as ex
from traceability.domain.states import Role


class FarmerTokenCreate(BaseModel):
    """A farmer signs in with the phone number they were enrolled with and their PIN."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"phone": "0811111111", "pin": "1234"}]}
    )

    phone: str = Field(min_length=9, max_length=20, examples=["0811111111"])
    pin: str = Field(min_length=4, max_length=12)


class OfficerTokenCreate(BaseModel):
    """An อปท. officer signs in with username and password."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"username": "officer.nongsanit", "password": "correct-horse-battery"}]
        },
    )

    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class TokenRead(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "access_token": "q3Vb0m3oTzR0kq2oX1m6rJtq9d0F1yqf3bJk0yVvQm8",
                    "token_type": "bearer",
                    "expires_in": 43200,
                    "role": "farmer",
                    "party": "F-0001",
                }
            ]
        }
    )

    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="seconds")
    role: Role
    party: str = Field(description="the pseudonymous party code events carry as their actor")


EVENT_READ_EXAMPLE: dict[str, Any] = {
    "event_id": "8d921836-8980-4507-b251-50da5e388b44",
    "hash": "0x1858c409d12491386f0568653c29e2fbaa8067c2fef13ebe337a9231db26caca",
    "kind": "harvest",
    "lots": ["NSN-VEG-2609-01"],
    "created": True,
}


class EventRead(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [EVENT_READ_EXAMPLE]})

    event_id: str
    hash: str = Field(description="the CBV 2.0 event hash as 0x hex (what is anchored)")
    kind: str
    lots: list[str]
    created: bool = Field(description="false when this answers a retry of an event already stored")


class BatchRead(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "events": [
                        {
                            "event_id": "0b06adc7-f898-44d6-9e3b-89c823d0f32f",
                            "hash": "0x0ebd564c6a93d036c82e605b09fd7938bb6fb286e0fa9b9e2c9761d9a2c2be84",
                            "kind": "planting",
                            "lots": ["NSN-VEG-2609-01"],
                            "created": True,
                        },
                        EVENT_READ_EXAMPLE,
                    ]
                }
            ]
        }
    )

    events: list[EventRead]


class AnchorRead(BaseModel):
    status: Literal["pending", "anchored"]
    block_number: int | None = None
    tx_hash: str | None = None
    block_time: datetime | None = None


class LotEventRead(BaseModel):
    event_id: str
    kind: str
    event_time: datetime
    hash: str
    anchor: AnchorRead


class ProductRead(BaseModel):
    th: str
    en: str


LOT_READ_EXAMPLE: dict[str, Any] = {
    "lot_code": "NSN-VEG-2609-01",
    "product": {"th": "ผักอินทรีย์", "en": "Organic vegetables"},
    "gtin": None,
    "status": "anchored",
    "events": [
        {
            "event_id": "0b06adc7-f898-44d6-9e3b-89c823d0f32f",
            "kind": "planting",
            "event_time": "2026-09-08T01:30:00Z",
            "hash": "0x0ebd564c6a93d036c82e605b09fd7938bb6fb286e0fa9b9e2c9761d9a2c2be84",
            "anchor": {
                "status": "anchored",
                "block_number": 7,
                "tx_hash": "0xe1c2faaba0583553e7efeba3e51bba31c7e597b57b22153ec3c5fd4858be304f",
                "block_time": "2026-11-22T15:58:20Z",
            },
        },
        {
            "event_id": "8d921836-8980-4507-b251-50da5e388b44",
            "kind": "harvest",
            "event_time": "2026-10-22T23:30:00Z",
            "hash": "0x1858c409d12491386f0568653c29e2fbaa8067c2fef13ebe337a9231db26caca",
            "anchor": {
                "status": "pending",
                "block_number": None,
                "tx_hash": None,
                "block_time": None,
            },
        },
    ],
}


class LotRead(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [LOT_READ_EXAMPLE]})

    lot_code: str
    product: ProductRead
    gtin: str | None
    status: Literal["empty", "pending", "anchored"]
    events: list[LotEventRead]


class ErrorBody(BaseModel):
    code: str
    message: str
    items: list[dict[str, Any]] | None = None


class ErrorRead(BaseModel):
    error: ErrorBody


# --- importer endpoints -------------------------------------------------------------------------------------


class TextRead(BaseModel):
    """The same message in Thai and English."""

    th: str
    en: str


class ReasonRead(BaseModel):
    """Something a verification found wrong (``severity`` ``error``) or worth a look (``warning``)."""

    code: str = Field(
        description="stable machine-readable code (`docs/verification.md` lists them): e.g. `hash_mismatch`, "
        "`not_anchored`, `broken_prev_link`, `mass_balance`, `implausible_yield`, `not_certified`, "
        "`certification_revoked`, `unknown_registry`",
        examples=["hash_mismatch"],
    )
    check: str = Field(
        description="the check it counts against (one of `checks[].code`)", examples=["hashes"]
    )
    severity: Literal["error", "warning"]
    event_id: str | None = Field(description="the event it is about (UUID), if any")
    lot_code: str | None = Field(description="the lot it is about, if any")
    message: TextRead
    detail: dict[str, Any] = Field(description="the values behind it (hashes, kilograms as decimal strings)")


class CheckRead(BaseModel):
    """One line of the verdict's summary: a check and how it went."""

    code: Literal[
        "registry",
        "hashes",
        "anchors",
        "prev_links",
        "mass_balance",
        "yield",
        "certifications",
        "origin_risk",
    ]
    severity: Literal["ok", "warning", "error"]
    message: TextRead
    detail: dict[str, Any]


class RegistryRefRead(BaseModel):
    """The TraceRegistry the verdict was checked against: this service's own (pinned), never the bundle's."""

    chain_id: int | None = Field(examples=[31337])
    contract: str | None = Field(examples=["0x5fbdb2315678afecb367f032d93f642f64180aa3"])


class VerdictRead(BaseModel):
    """A lot's verdict: `verified` (every check passed), `warning` (nothing is false, but look at the
    reasons, e.g. no valid certification) or `failed` (something does not hold: do not accept the lot as
    labelled)."""

    model_config = ConfigDict(json_schema_extra={"examples": [ex.VERDICT_VERIFIED]})

    lot_code: str
    status: Literal["verified", "warning", "failed"]
    reasons: list[ReasonRead]
    checks: list[CheckRead]
    registry: RegistryRefRead
    checked_at: str | None = Field(description="when it was checked (ISO 8601, UTC)")
    evidence: dict[str, Any] = Field(
        description="What was looked at, check by check: `events` (each event's claimed and recomputed CBV "
        "2.0 hash, its Event Hash ID, `prev` links, and anchor: Merkle root and proof, transaction, block "
        "number, hash and time, whether the contract's `verifyEvent` accepts it), `mass_balance` (kilograms "
        "in and out of every transformation and shipment), `yield` (kg per rai against the crop's plausible "
        "ceiling) and `certifications` (signer recovered from the EIP-712 signature, issuing authority, "
        "issued, expiry, revocation, status). Quantities are exact decimal strings in kilograms."
    )


class RegistryInfoRead(BaseModel):
    """The registry this service anchors in and verifies against. Pin these two values (chain id and address)
    in your own verifier: a proof bundle naming any other registry proves nothing."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "chain_id": 31337,
                    "contract": "0x5FbDB2315678afecb367f032d93F642f64180aa3",
                    "contract_name": "TraceRegistry",
                    "functions": [
                        "anchoredAt(bytes32) returns (uint64)",
                        "verifyEvent(bytes32,bytes32[],bytes32) returns (bool)",
                        "isValid(bytes32) returns (bool)",
                    ],
                    "pin": {
                        "th": "บันทึกหมายเลขเชน 31337 และที่อยู่ "
                        "0x5FbDB2315678afecb367f032d93F642f64180aa3 ไว้ในระบบของท่าน "
                        "แล้วตรวจหลักฐานทุกชุดกับทะเบียนนี้เท่านั้น",
                        "en": "Record chain id 31337 and address "
                        "0x5FbDB2315678afecb367f032d93F642f64180aa3 in your own system and check every "
                        "bundle against this registry only.",
                    },
                    "verify_offline": "trace verify --bundle bundle.json --rpc https://rpc.example "
                    "--registry 0x5FbDB2315678afecb367f032d93F642f64180aa3",
                    "proof_bundle_schema": "docs/proof-bundle.schema.json",
                }
            ]
        }
    )

    chain_id: int
    contract: str = Field(description="the TraceRegistry contract's address (EIP-55 checksum)")
    contract_name: Literal["TraceRegistry"] = "TraceRegistry"
    functions: list[str] = Field(description="the contract's read functions a verifier calls")
    pin: TextRead = Field(description="how to pin the registry, in Thai and English")
    verify_offline: str = Field(description="the command that checks a bundle with no database")
    proof_bundle_schema: str = Field(description="where the proof bundle's JSON Schema is published")
