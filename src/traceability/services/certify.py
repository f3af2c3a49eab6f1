"""Certify a lot with the officer's own key, and revoke a certification.

The officer's key signs EIP-712 typed data; the service only relays the signature to the contract (the
officer needs no ether) and records a ``certification`` event carrying the signed data.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from traceability.chain.eip712 import CertificationData, sign_certification, typed_data
from traceability.chain.registry import TraceRegistry
from traceability.domain.events import Certification, Place, Revocation
from traceability.errors import Forbidden, InvalidInput, NotFound
from traceability.services.events import RecordedEvent, record_event
from traceability.services.parties import officer as find_officer
from traceability.services.parties import unlock_officer_key
from traceability.store import models
from traceability.store.repository import Repository

SIGNATURE_WINDOW_S = 3600


@dataclass(frozen=True)
class CertifyResult:
    cert_id: str
    tx_hash: str
    event: RecordedEvent


def certify_lot(
    session: Session,
    registry: TraceRegistry,
    *,
    officer_username: str,
    passphrase: str,
    lot_code: str,
    standard: str,
    certificate_hash: str,
    place_id: str,
    id_base: str,
    expires: int = 0,
    event_time: datetime | None = None,
) -> CertifyResult:
    repo = Repository(session)
    officer = find_officer(session, officer_username)
    lot = repo.lot(lot_code)
    if lot is None:
        raise NotFound(f"unknown lot {lot_code}")
    if lot.authority_id != officer.authority_id:
        raise Forbidden(f"officer {officer_username} may certify only lots of their own authority")
    authority = repo.authority(officer.authority_id)
    assert authority is not None
    if expires and expires <= time.time():
        raise InvalidInput("certification would already be expired")

    account = unlock_officer_key(officer, passphrase)
    data = CertificationData(
        lot_code=lot_code,
        certificate_hash=bytes.fromhex(certificate_hash.removeprefix("0x")),
        authority_code=authority.code,
        officer=account.address,
        expires=expires,
        nonce=registry.nonce_of(account.address),
        deadline=int(time.time()) + SIGNATURE_WINDOW_S,
    )
    signature = sign_certification(account, data, registry.chain_id, registry.address)
    cert_id, receipt = registry.certify(data, signature)
    tx_hash = receipt.tx_hash

    event = Certification(
        kind="certification",
        event_id=uuid.uuid4(),
        event_time=event_time or datetime.now(UTC),
        actor=_officer_party(officer),
        place=Place(id=place_id),
        lot_code=lot_code,
        authority=authority.code,
        officer=account.address.lower(),
        standard=standard,
        certificate_hash=certificate_hash,
        expires=expires,
        nonce=data.nonce,
        deadline=data.deadline,
        signature="0x" + signature.hex(),
        cert_id=cert_id,
    )
    recorded = record_event(session, event, id_base=id_base)
    session.add(
        models.CertificationRecord(
            id=cert_id,
            event_id=recorded.event_id,
            lot_code=lot_code,
            authority_code=authority.code,
            officer_address=account.address,
            standard=standard,
            typed_data=typed_data(data, registry.chain_id, registry.address),
            signature="0x" + signature.hex(),
            tx_hash=tx_hash,
        )
    )
    session.flush()
    return CertifyResult(cert_id, tx_hash, recorded)


def revoke_certification(
    session: Session,
    registry: TraceRegistry,
    *,
    officer_username: str,
    passphrase: str,
    cert_id: str,
    reason: str,
    place_id: str,
    id_base: str,
) -> RecordedEvent:
    """Revoke on chain with the officer's own key, then record a ``revocation`` event on the lot."""
    repo = Repository(session)
    record = repo.certification(cert_id)
    if record is None:
        raise NotFound(f"unknown certification {cert_id}")
    officer = find_officer(session, officer_username)
    authority = repo.authority(officer.authority_id)
    if authority is None or authority.code != record.authority_code:
        raise Forbidden("only an officer of the issuing authority may revoke this certification")
    account = unlock_officer_key(officer, passphrase)
    TraceRegistry(registry.w3, registry.address, account).revoke(bytes.fromhex(cert_id[2:]), reason)
    event = Revocation(
        kind="revocation",
        event_id=uuid.uuid4(),
        event_time=datetime.now(UTC),
        actor=_officer_party(officer),
        place=Place(id=place_id),
        lot_code=record.lot_code,
        cert_id=cert_id,
        reason=reason,
    )
    return record_event(session, event, id_base=id_base)


def _officer_party(officer: models.Officer) -> str:
    # Pseudonymous: the officer's row id, never their name.
    return f"OFF-{officer.id:04d}"
