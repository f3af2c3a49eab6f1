"""Certify a lot with the officer's own key, and revoke a certification, write-ahead.

The officer's key signs EIP-712 typed data; the service only relays the signature to the contract (the
officer needs no ether). The signed data, the signature, the certification id (the EIP-712 digest) and the
whole ``certification`` event to record are committed as a chain op *before* the relay is sent; the event and
its :class:`~traceability.store.models.CertificationRecord` are written only once the certification is on
chain (:mod:`traceability.services.chainops`). A revocation is signed by the officer's key as a raw
transaction, kept in its intent the same way, and its ``revocation`` event is written once it is mined.

``request_*`` record the intent and return its op id (the anchoring worker sends it); ``certify_lot`` and
``revoke_certification`` also send it and return when it is done.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from eth_utils.hexadecimal import encode_hex
from pydantic import ValidationError
from sqlalchemy.orm import Session, sessionmaker

from traceability.chain.eip712 import (
    CertificationData,
    authority_id,
    sign_certification,
    typed_data,
    typed_data_digest,
)
from traceability.chain.registry import TraceRegistry, as_bytes32
from traceability.domain.events import Certification, Place, Revocation
from traceability.domain.states import ChainOpKind, ChainOpStatus, PartyStatus
from traceability.errors import Conflict, Forbidden, InvalidInput, NotFound
from traceability.services.chainops import (
    allocate_nonces,
    chain_time,
    contract_call,
    head_block,
    next_certification_nonce,
    presign,
    raise_unless_done,
    recorded_event,
    require_sessionmaker,
    settle_chain_op,
)
from traceability.services.events import RecordedEvent
from traceability.services.parties import officer as find_officer
from traceability.services.parties import officer_party, unlock_officer_key
from traceability.store import models
from traceability.store.database import transaction
from traceability.store.repository import Repository

SIGNATURE_WINDOW_S = 3600
DEFAULT_TIMEZONE = "Asia/Bangkok"


@dataclass(frozen=True)
class CertifyResult:
    cert_id: str
    tx_hash: str | None  # None only if the relay that recorded it could not be found in the logs
    event: RecordedEvent


def request_certification(
    sessions: sessionmaker[Session],
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
    tz: str = DEFAULT_TIMEZONE,
    signature_window_s: int = SIGNATURE_WINDOW_S,
) -> int:
    """Sign the certification with the officer's key and commit it as a ``certify`` chain op; nothing is sent.
    Returns the op id. The event time carries the offset of ``tz`` (default Asia/Bangkok)."""
    require_sessionmaker(sessions, "certifying")
    when = local_time(event_time, tz)
    try:
        certificate = as_bytes32(certificate_hash)
    except ValueError as exc:
        raise InvalidInput("certificate_hash must be 32 bytes as 0x hex") from exc
    # Block time, not this host's clock, decides whether the signature is still good when relayed.
    now = max(chain_time(registry.w3), int(time.time()))
    if expires and expires <= now:
        raise InvalidInput("certification would already be expired")
    with transaction(sessions) as session:
        repo = Repository(session)
        officer = _active_officer(session, officer_username)
        lot = repo.lot(lot_code)
        if lot is None:
            raise NotFound(f"unknown lot {lot_code}")
        if lot.authority_id != officer.authority_id:
            raise Forbidden(f"officer {officer_username} may certify only lots of their own authority")
        authority = repo.authority(officer.authority_id)
        assert authority is not None
        # The row turns ``revoked`` only once a revocation is final; the chain may know sooner.
        if not registry.is_officer_at(authority_id(authority.code), officer.address, now):
            raise Forbidden(
                f"officer {officer_username} is not an officer of {authority.code} on chain now "
                "(revoked, or their term has not begun)"
            )
        account = unlock_officer_key(officer, passphrase)
        data = CertificationData(
            lot_code=lot_code,
            certificate_hash=certificate,
            authority_code=authority.code,
            officer=account.address,
            expires=expires,
            nonce=next_certification_nonce(session, registry, account.address),
            deadline=now + signature_window_s,
        )
        signature = encode_hex(sign_certification(account, data, registry.chain_id, registry.address))
        document = typed_data(data, registry.chain_id, registry.address)
        cert_id = encode_hex(typed_data_digest(document))
        try:
            event = Certification(
                kind="certification",
                event_id=uuid.uuid4(),
                event_time=when,
                actor=officer_party(officer.id),
                place=Place(id=place_id),
                lot_code=lot_code,
                authority=authority.code,
                officer=account.address.lower(),
                standard=standard,
                certificate_hash=encode_hex(certificate),
                expires=expires,
                nonce=data.nonce,
                deadline=data.deadline,
                signature=signature,
                cert_id=cert_id,
            )
        except ValidationError as exc:
            raise InvalidInput(f"invalid certification: {exc.errors()[0]['msg']}") from exc
        op = repo.add_chain_op(
            ChainOpKind.CERTIFY,
            cert_id,
            {
                "cert": {
                    "lot_code": data.lot_code,
                    "certificate_hash": encode_hex(data.certificate_hash),
                    "authority_code": data.authority_code,
                    "officer": data.officer,
                    "expires": data.expires,
                    "nonce": data.nonce,
                    "deadline": data.deadline,
                },
                "typed_data": document,
                "signature": signature,
                "event": event.model_dump(mode="json"),
                "id_base": id_base,
                "from_block": head_block(registry),
            },
        )
        return op.id


def certify_lot(
    sessions: sessionmaker[Session],
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
    tz: str = DEFAULT_TIMEZONE,
    signature_window_s: int = SIGNATURE_WINDOW_S,
    timeout: float | None = None,
) -> CertifyResult:
    """Sign, commit the intent, relay from ``registry``'s key, and return once the certification is on chain
    and its event and record are written. If the chain does not answer in time the intent stays committed and
    a ChainError ``chain_op_pending`` is raised: the anchoring worker finishes it."""
    op_id = request_certification(
        sessions,
        registry,
        officer_username=officer_username,
        passphrase=passphrase,
        lot_code=lot_code,
        standard=standard,
        certificate_hash=certificate_hash,
        place_id=place_id,
        id_base=id_base,
        expires=expires,
        event_time=event_time,
        tz=tz,
        signature_window_s=signature_window_s,
    )
    report = settle_chain_op(sessions, registry, op_id, timeout=timeout)
    raise_unless_done(report, f"certification of lot {lot_code}")
    with transaction(sessions) as session:
        record = Repository(session).certification(report.subject)
        if record is None:
            raise NotFound(f"certification {report.subject} is done but has no record")
        return CertifyResult(record.id, record.tx_hash, recorded_event(session, record.event_id, (lot_code,)))


def request_revocation(
    sessions: sessionmaker[Session],
    registry: TraceRegistry,
    *,
    officer_username: str,
    passphrase: str,
    cert_id: str,
    reason: str,
    place_id: str,
    id_base: str,
    event_time: datetime | None = None,
    tz: str = DEFAULT_TIMEZONE,
) -> int:
    """Sign the revocation with the officer's own key (a raw transaction with an explicit nonce) and commit it
    as a ``revoke_certification`` chain op; nothing is sent. Returns the op id."""
    require_sessionmaker(sessions, "revoking")
    when = local_time(event_time, tz)
    with transaction(sessions) as session:
        repo = Repository(session)
        record = repo.certification(cert_id)
        if record is None:
            raise NotFound(f"unknown certification {cert_id}")
        officer = _active_officer(session, officer_username)
        authority = repo.authority(officer.authority_id)
        if authority is None or authority.code != record.authority_code:
            raise Forbidden("only an officer of the issuing authority may revoke this certification")
        earlier = [
            op
            for op in repo.chain_ops_for(record.id, kind=ChainOpKind.REVOKE_CERTIFICATION)
            if op.status != ChainOpStatus.FAILED
        ]
        if earlier:
            raise Conflict(f"certification {cert_id} is revoked or being revoked (chain op #{earlier[0].id})")
        try:
            event = Revocation(
                kind="revocation",
                event_id=uuid.uuid4(),
                event_time=when,
                actor=officer_party(officer.id),
                place=Place(id=place_id),
                lot_code=record.lot_code,
                cert_id=record.id,
                reason=reason,
            )
        except ValidationError as exc:
            raise InvalidInput(f"invalid revocation: {exc.errors()[0]['msg']}") from exc
        account = unlock_officer_key(officer, passphrase)
        signer = TraceRegistry(registry.w3, registry.address, account)
        [nonce] = allocate_nonces(session, registry.w3, account.address, 1)
        raw = presign(signer, "revoke", contract_call(signer, "revoke", as_bytes32(record.id), reason), nonce)
        op = repo.add_chain_op(
            ChainOpKind.REVOKE_CERTIFICATION,
            record.id,
            {
                "event": event.model_dump(mode="json"),
                "id_base": id_base,
                "txs": [raw.to_json()],
                "from_block": head_block(registry),
            },
        )
        return op.id


def revoke_certification(
    sessions: sessionmaker[Session],
    registry: TraceRegistry,
    *,
    officer_username: str,
    passphrase: str,
    cert_id: str,
    reason: str,
    place_id: str,
    id_base: str,
    event_time: datetime | None = None,
    tz: str = DEFAULT_TIMEZONE,
    timeout: float | None = None,
) -> RecordedEvent:
    """Revoke on chain with the officer's own key, then record a ``revocation`` event on the lot (write-ahead:
    the signed transaction is committed before it is broadcast)."""
    op_id = request_revocation(
        sessions,
        registry,
        officer_username=officer_username,
        passphrase=passphrase,
        cert_id=cert_id,
        reason=reason,
        place_id=place_id,
        id_base=id_base,
        event_time=event_time,
        tz=tz,
    )
    report = settle_chain_op(sessions, registry, op_id, timeout=timeout)
    raise_unless_done(report, f"revocation of certification {cert_id}")
    with transaction(sessions) as session:
        op = Repository(session).chain_op(op_id)
        assert op is not None
        event = Revocation.model_validate(op.payload["event"])
        return recorded_event(session, event.event_id, (event.lot_code,))


def local_time(when: datetime | None, tz: str = DEFAULT_TIMEZONE) -> datetime:
    """``when`` (default now) in time zone ``tz``: events carry the local offset where they happened."""
    try:
        zone = ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidInput(f"unknown time zone {tz!r}") from exc
    if when is None:
        return datetime.now(zone)
    if when.tzinfo is None or when.utcoffset() is None:
        raise InvalidInput("event time needs a time zone")
    return when.astimezone(zone)


def _active_officer(session: Session, username: str) -> models.Officer:
    row = find_officer(session, username)
    if row.status == PartyStatus.REVOKED:
        raise Forbidden(f"officer {username} is revoked: their key can no longer certify or revoke")
    if row.status != PartyStatus.ACTIVE:
        raise Conflict(f"officer {username} is {row.status}: their key is not registered on chain")
    return row
