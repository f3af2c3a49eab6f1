"""Certification by a key the server never holds (a hardware wallet): fetch the exact EIP-712 typed data,
sign it elsewhere, post the signature back to be checked and relayed on chain.

``GET /api/v1/lots/{lot_code}/certification-request`` and ``POST /api/v1/lots/{lot_code}/certifications``,
for an officer's bearer token (``POST /api/v1/auth/token`` with username + password).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from traceability.api.deps import CurrentPrincipal, RuntimeDep, SessionDep
from traceability.api.examples import (
    CERTIFICATE_EXAMPLE,
    MESSAGE_EXAMPLE,
    SIGNATURE_EXAMPLE,
    TYPED_DATA_EXAMPLE,
)
from traceability.api.schemas import ErrorRead
from traceability.domain.states import Role
from traceability.errors import Forbidden
from traceability.services.auth import Principal
from traceability.services.certify import certificate_note, certification_request, relay_certification
from traceability.services.review import ledger_id_base, officer_desk
from traceability.services.runtime import DbSession

router = APIRouter(prefix="/api/v1/lots", tags=["certifications"])

MAX_EXPIRES = 2**64 - 1


class CertificationRequestRead(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"typed_data": TYPED_DATA_EXAMPLE, "certificate": CERTIFICATE_EXAMPLE}]
        }
    )

    typed_data: dict[str, Any] = Field(
        description="The EIP-712 document to sign as is (eth_signTypedData_v4): types, primaryType, domain "
        "and message, with the officer's next nonce and the deadline (unix s) for relaying it"
    )
    certificate: dict[str, Any] = Field(
        description="The certificate document whose SHA-256 (JSON, sorted keys, no spaces, UTF-8) is the "
        "message's certificateHash; post it back unchanged"
    )


class CertificationCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "certificate": CERTIFICATE_EXAMPLE,
                    "message": MESSAGE_EXAMPLE,
                    "signature": SIGNATURE_EXAMPLE,
                }
            ]
        },
    )

    certificate: dict[str, Any] = Field(description="`certificate` from the certification request")
    message: dict[str, Any] = Field(description="`typed_data.message` from the certification request")
    signature: Annotated[str, Field(pattern=r"^0x[0-9a-fA-F]{130}$", description="65 bytes: r, s, v")]


class CertificationRead(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "cert_id": "0xc508adc62e8885fd43aa0f8a52e848ec49f844fcdc2c3818add0404969a93a45",
                    "lot_code": "NSN-VEG-2609-01",
                    "tx_hash": "0x73dbcc8ae82056822bc2c0a1585a3f49cb274c2e0337739a2bf81e4a1ba738c7",
                    "event_id": "8ffeafff-e1c6-4481-bef4-39ed49ff9c5c",
                }
            ]
        }
    )

    cert_id: str = Field(description="The certification's id on chain: the EIP-712 digest")
    lot_code: str
    tx_hash: str | None = Field(description="The relay transaction that recorded it")
    event_id: str = Field(description="The certification event recorded on the lot")


def _officer_username(session: DbSession, principal: Principal) -> str:
    if principal.role != Role.OFFICER or principal.officer_id is None:
        raise Forbidden("only an officer of a local authority can certify", code="officers_only")
    return officer_desk(session, principal.officer_id).username


@router.get(
    "/{lot_code}/certification-request",
    response_model=CertificationRequestRead,
    responses={
        401: {"model": ErrorRead},
        403: {"model": ErrorRead, "description": "not an officer, a lot of another authority, or revoked"},
        404: {"model": ErrorRead, "description": "unknown lot"},
        422: {"model": ErrorRead, "description": "an expiry in the past, or a scope or note too long"},
    },
)
def read_certification_request(
    lot_code: str,
    session: SessionDep,
    runtime: RuntimeDep,
    principal: CurrentPrincipal,
    standard: Annotated[str, Query(min_length=1, max_length=80, description="e.g. Organic Thailand")],
    expires: Annotated[int, Query(ge=0, le=MAX_EXPIRES, description="unix s it lapses; 0 = never")] = 0,
    scope: Annotated[str, Query(max_length=200)] = "",
    note: Annotated[str, Query(max_length=280)] = "",
) -> CertificationRequestRead:
    """What the signed-in officer signs to certify the lot with a key kept off this server.

    A GET, because it records nothing: it checks what the contract will check (the lot is of the officer's
    authority, the officer is valid on chain now) and returns the complete EIP-712 typed data with the
    officer's next nonce and a deadline one hour ahead, and the certificate document (lot, authority,
    standard, expiry and the scope and note as the event's note) whose SHA-256 is its `certificateHash`.
    Sign `typed_data` as is (`eth_signTypedData_v4`), then post `message`, `certificate` and the signature to
    `POST /api/v1/lots/{lot_code}/certifications` before the deadline. Asking again before posting gives the
    same nonce: only one of the signatures can ever be recorded."""
    typed, document = certification_request(
        runtime.sessions,
        runtime.registry,
        officer_username=_officer_username(session, principal),
        lot_code=lot_code.strip().upper(),
        standard=standard,
        expires=expires,
        note=certificate_note(scope, note),
    )
    return CertificationRequestRead(typed_data=typed, certificate=document)


@router.post(
    "/{lot_code}/certifications",
    status_code=201,
    response_model=CertificationRead,
    responses={
        202: {
            "model": ErrorRead,
            "description": "recorded, not yet final on chain (`chain_op_pending`)",
            "content": {
                "application/json": {
                    "example": {
                        "error": {
                            "code": "chain_op_pending",
                            "message": "certification of NSN-VEG-2609-01 is recorded (chain op #12) "
                            "but not yet final on chain; the anchoring worker finishes it (tx "
                            "0x73dbcc8ae82056822bc2c0a1585a3f49cb274c2e0337739a2bf81e4a1ba738c7)",
                        }
                    }
                }
            },
        },
        401: {"model": ErrorRead},
        403: {
            "model": ErrorRead,
            "description": "`invalid_signature` (not the officer's key), `wrong_officer`, `wrong_authority`, "
            "`not_your_lot`, `officer_not_valid` (revoked on chain), `officers_only`",
        },
        400: {"model": ErrorRead, "description": "a body that cannot be read (not UTF-8)"},
        404: {"model": ErrorRead, "description": "unknown lot"},
        409: {
            "model": ErrorRead,
            "description": "`replayed_signature` (already relayed, or its nonce used), `nonce_not_next`",
        },
        422: {
            "model": ErrorRead,
            "description": "`message_mismatch`, `certificate_mismatch`, `signature_expired`, "
            "`invalid_message`",
        },
    },
)
def create_certification(
    lot_code: str,
    body: CertificationCreate,
    session: SessionDep,
    runtime: RuntimeDep,
    principal: CurrentPrincipal,
) -> CertificationRead:
    """Record a certification the officer signed elsewhere: the signature must recover to the signed-in
    officer's registered address, the message must be the one from the certification request (this lot,
    their authority, their next unused nonce, before its deadline) and the certificate must hash to its
    `certificateHash`. It is committed before it is relayed to `TraceRegistry.certify`; the answer (201) comes
    once it is on chain, with its certification event recorded on the lot."""
    code = lot_code.strip().upper()
    result = relay_certification(
        runtime.sessions,
        runtime.registry,
        officer_username=_officer_username(session, principal),
        lot_code=code,
        certificate=body.certificate,
        message=body.message,
        signature=body.signature,
        place_id=officer_desk(session, principal.officer_id or 0).authority_code,
        id_base=ledger_id_base(session, runtime.settings.id_base),
        tz=runtime.settings.timezone,
    )
    return CertificationRead(
        cert_id=result.cert_id, lot_code=code, tx_hash=result.tx_hash, event_id=str(result.event.event_id)
    )
