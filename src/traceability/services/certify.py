"""Certify a lot with the officer's own key, and revoke a certification, write-ahead.

The officer's key signs EIP-712 typed data; the service only relays the signature to the contract (the
officer needs no ether). The signed data, the signature, the certification id (the EIP-712 digest) and the
whole ``certification`` event to record are committed as a chain op *before* the relay is sent; the event and
its :class:`~traceability.store.models.CertificationRecord` are written only once the certification is on
chain (:mod:`traceability.services.chainops`). A revocation is signed by the officer's key as a raw
transaction, kept in its intent the same way, and its ``revocation`` event is written once it is mined.

The key signs either here (``request_certification``: the keystore opened with the officer's passphrase) or
elsewhere, e.g. on a hardware wallet (``certification_request`` hands out the exact typed data to sign and
``request_signed_certification`` checks and relays what comes back).

**The certificate document.** The EIP-712 data has no room for a scope or a remark, so they live in the
certification event's ``note`` (:func:`certificate_note`), and ``certificateHash`` may be the SHA-256 of the
certificate document built from the event alone (:func:`certificate_document`: version, lot, authority,
standard, expires and note as JSON with sorted keys, no spaces, UTF-8): anyone holding the event can recompute
it and see that the officer signed exactly that standard, scope and remark.

``request_*`` record the intent and return its op id (the anchoring worker sends it); ``certify_lot``,
``relay_certification`` and ``revoke_certification`` also send it and return when it is done.

An officer's certifications are recorded one at a time (their row is locked, and on SQLite the write
transaction begins at once): two at once would take the same EIP-712 nonce, and a form posted twice with the
same ``event_id`` must find the first one's intent instead of signing a second certification.
"""

from __future__ import annotations

import hashlib
import json
import time
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from eth_account.signers.local import LocalAccount
from eth_utils.address import is_address, to_checksum_address
from eth_utils.hexadecimal import decode_hex, encode_hex
from pydantic import ValidationError
from sqlalchemy.orm import Session, sessionmaker

from traceability.chain.eip712 import (
    CertificationData,
    authority_id,
    lot_id,
    recover_signer,
    sign_certification,
    typed_data,
    typed_data_digest,
)
from traceability.chain.registry import TraceRegistry, as_bytes32
from traceability.domain.events import Certification, Place, Revocation
from traceability.domain.states import ChainOpKind, ChainOpStatus, PartyStatus
from traceability.errors import Conflict, Forbidden, InvalidInput, NotFound
from traceability.services.chainops import (
    UNFINISHED,
    allocate_nonces,
    certification_data,
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
CERTIFICATE_VERSION = 1
MAX_SCOPE_CHARS = 200
MAX_REMARK_CHARS = 280


@dataclass(frozen=True)
class CertifyResult:
    cert_id: str
    tx_hash: str | None  # None only if the relay that recorded it could not be found in the logs
    event: RecordedEvent


def certificate_note(scope: str | None, remark: str | None) -> str | None:
    """The certification event's ``note``: the scope, then the officer's remark (either may be missing)."""
    scope, remark = _clean(scope), _clean(remark)
    if len(scope) > MAX_SCOPE_CHARS or len(remark) > MAX_REMARK_CHARS:
        raise InvalidInput(
            f"the scope is limited to {MAX_SCOPE_CHARS} characters and the remark to {MAX_REMARK_CHARS}",
            code="note_too_long",
        )
    return " — ".join(part for part in (scope, remark) if part) or None


def certificate_document(
    *, lot_code: str, authority_code: str, standard: str, expires: int, note: str | None
) -> dict[str, Any]:
    """The certificate a certification signs, rebuilt from its event's fields (see the module docstring)."""
    return {
        "v": CERTIFICATE_VERSION,
        "lot": lot_code,
        "authority": authority_code,
        "standard": _clean(standard),
        "expires": expires,
        "note": _clean(note),
    }


def certificate_hash(document: dict[str, Any]) -> str:
    """0x SHA-256 of the document as JSON with sorted keys, no spaces, UTF-8 (Thai not escaped)."""
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "0x" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _clean(text: str | None) -> str:
    # As the event's free-text fields are normalised, so the document rebuilt from the event is the same.
    return unicodedata.normalize("NFC", text or "").strip()


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
    note: str | None = None,
    event_id: uuid.UUID | None = None,
    event_time: datetime | None = None,
    tz: str = DEFAULT_TIMEZONE,
    signature_window_s: int = SIGNATURE_WINDOW_S,
) -> int:
    """Sign the certification with the officer's key and commit it as a ``certify`` chain op; nothing is sent.
    Returns the op id. The event time carries the offset of ``tz`` (default Asia/Bangkok). Given an
    ``event_id`` (a form's one-time token) that an earlier call already recorded, returns that call's op and
    signs nothing."""
    require_sessionmaker(sessions, "certifying")
    when = local_time(event_time, tz)
    try:
        certificate = as_bytes32(certificate_hash)
    except ValueError as exc:
        raise InvalidInput("certificate_hash must be 32 bytes as 0x hex") from exc
    now = _chain_now(registry)
    _check_times(expires, now)
    with transaction(sessions) as session:
        # The keystore is opened (scrypt: slow by design) before the write lock is taken.
        account = _unlock(_active_officer(session, officer_username), passphrase)
    with transaction(sessions) as session:
        officer = _lock_officer(session, officer_username)
        if event_id is not None:
            earlier = _certify_op_of_event(session, event_id, lot_code)
            if earlier is not None:
                return earlier
        authority = _certifying_authority(session, registry, officer, lot_code, now)
        data = _unsigned(
            session,
            registry,
            lot_code,
            certificate,
            authority.code,
            account.address,
            expires,
            deadline=now + signature_window_s,
        )
        signature = encode_hex(sign_certification(account, data, registry.chain_id, registry.address))
        return _record_certify_op(
            session,
            registry,
            officer,
            data,
            signature,
            standard=standard,
            note=note,
            place_id=place_id,
            id_base=id_base,
            when=when,
            event_id=event_id,
        )


def _unsigned(
    session: Session,
    registry: TraceRegistry,
    lot_code: str,
    certificate: bytes,
    authority_code: str,
    officer: str,
    expires: int,
    *,
    deadline: int,
) -> CertificationData:
    """The typed data of a certification to sign now, with the officer's next unused nonce."""
    return CertificationData(
        lot_code=lot_code,
        certificate_hash=certificate,
        authority_code=authority_code,
        officer=officer,
        expires=expires,
        nonce=next_certification_nonce(session, registry, officer),
        deadline=deadline,
    )


def certification_request(
    sessions: sessionmaker[Session],
    registry: TraceRegistry,
    *,
    officer_username: str,
    lot_code: str,
    standard: str,
    expires: int = 0,
    note: str | None = None,
    signature_window_s: int = SIGNATURE_WINDOW_S,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """What an officer signs elsewhere (a hardware wallet): the full EIP-712 typed data of a certification of
    ``lot_code`` with their next nonce and a deadline ``signature_window_s`` ahead, and the certificate
    document whose hash it names. Checks everything the contract will (officer of the lot's authority, valid
    on chain now); records nothing."""
    now = _chain_now(registry)
    _check_times(expires, now)
    with transaction(sessions) as session:
        officer = _active_officer(session, officer_username)
        authority = _certifying_authority(session, registry, officer, lot_code, now)
        document = certificate_document(
            lot_code=lot_code, authority_code=authority.code, standard=standard, expires=expires, note=note
        )
        data = _unsigned(
            session,
            registry,
            lot_code,
            as_bytes32(certificate_hash(document)),
            authority.code,
            officer.address,
            expires,
            deadline=now + signature_window_s,
        )
        return typed_data(data, registry.chain_id, registry.address), document


def request_signed_certification(
    sessions: sessionmaker[Session],
    registry: TraceRegistry,
    *,
    officer_username: str,
    lot_code: str,
    certificate: dict[str, Any],
    message: dict[str, Any],
    signature: str,
    place_id: str,
    id_base: str,
    event_time: datetime | None = None,
    tz: str = DEFAULT_TIMEZONE,
) -> int:
    """Check a certification the officer signed elsewhere (the ``message`` of :func:`certification_request`'s
    typed data, its ``certificate`` document and the 65-byte ``signature``) and commit it as a ``certify``
    chain op; nothing is sent. Refused, with nothing written: a message for another lot (422
    ``message_mismatch``) or another authority (403 ``wrong_authority``), a document that does not hash to its
    ``certificateHash`` (422 ``certificate_mismatch``), a signature that is not the officer's (403
    ``invalid_signature``), one already relayed or with a nonce used (409 ``replayed_signature``), one past
    its deadline (422 ``signature_expired``) or ahead of the officer's next nonce (409 ``nonce_not_next``)."""
    require_sessionmaker(sessions, "certifying")
    when = local_time(event_time, tz)
    with transaction(sessions) as session:
        officer = _lock_officer(session, officer_username)
        now = _chain_now(registry)
        authority = _certifying_authority(session, registry, officer, lot_code, now)
        data = _signed_data(message, officer, lot_code, authority.code)
        _check_times(data.expires, now, deadline=data.deadline)
        if certificate_hash(_document(certificate)) != encode_hex(data.certificate_hash):
            raise InvalidInput(
                "the certificate document does not hash to the message's certificateHash",
                code="certificate_mismatch",
            )
        note = _document_note(certificate, data, authority.code)
        signed = _signature_bytes(signature)
        if _recovered(data, signed, registry) != officer.address:
            raise Forbidden(
                f"the signature is not officer {officer_username}'s ({officer.address})",
                code="invalid_signature",
            )
        cert_id = encode_hex(typed_data_digest(typed_data(data, registry.chain_id, registry.address)))
        ops = Repository(session).chain_ops_for(cert_id, kind=ChainOpKind.CERTIFY)
        if any(op.status != ChainOpStatus.FAILED for op in ops) or data.nonce < registry.nonce_of(
            officer.address
        ):
            raise Conflict(
                f"this signature (nonce {data.nonce}) was already used: ask for a new certification request",
                code="replayed_signature",
            )
        expected = next_certification_nonce(session, registry, officer.address)
        if data.nonce != expected:
            raise Conflict(
                f"nonce {data.nonce} is not the officer's next ({expected}): ask for a new certification "
                "request",
                code="nonce_not_next",
            )
        return _record_certify_op(
            session,
            registry,
            officer,
            data,
            encode_hex(signed),
            standard=str(certificate["standard"]),
            note=note,
            place_id=place_id,
            id_base=id_base,
            when=when,
            event_id=None,
        )


def relay_certification(
    sessions: sessionmaker[Session],
    registry: TraceRegistry,
    *,
    officer_username: str,
    lot_code: str,
    certificate: dict[str, Any],
    message: dict[str, Any],
    signature: str,
    place_id: str,
    id_base: str,
    event_time: datetime | None = None,
    tz: str = DEFAULT_TIMEZONE,
    timeout: float | None = None,
) -> CertifyResult:
    """:func:`request_signed_certification`, then relay it and return once it is on chain (as
    :func:`certify_lot`)."""
    op_id = request_signed_certification(
        sessions,
        registry,
        officer_username=officer_username,
        lot_code=lot_code,
        certificate=certificate,
        message=message,
        signature=signature,
        place_id=place_id,
        id_base=id_base,
        event_time=event_time,
        tz=tz,
    )
    return _settled_certification(sessions, registry, op_id, lot_code, timeout)


def _signed_data(
    message: dict[str, Any], officer: models.Officer, lot_code: str, authority_code: str
) -> CertificationData:
    """The signed message as the contract reads it, refused unless it names this lot, authority and
    officer."""
    try:
        if str(message["lot"]).lower() != encode_hex(lot_id(lot_code)):
            raise InvalidInput(f"the message is for another lot than {lot_code}", code="message_mismatch")
        if str(message["authority"]).lower() != encode_hex(authority_id(authority_code)):
            raise Forbidden(
                f"the message names another authority than the officer's ({authority_code})",
                code="wrong_authority",
            )
        signer = str(message["officer"])
        if not is_address(signer) or to_checksum_address(signer) != officer.address:
            raise Forbidden(
                f"the message names officer {signer}, not the signed-in officer {officer.address}",
                code="wrong_officer",
            )
        return CertificationData(
            lot_code=lot_code,
            certificate_hash=as_bytes32(str(message["certificateHash"])),
            authority_code=authority_code,
            officer=signer,
            expires=int(message["expires"]),
            nonce=int(message["nonce"]),
            deadline=int(message["deadline"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidInput(
            f"the signed message is not a certification: {exc}", code="invalid_message"
        ) from exc


def _document(certificate: dict[str, Any]) -> dict[str, Any]:
    try:
        return certificate_document(
            lot_code=str(certificate["lot"]),
            authority_code=str(certificate["authority"]),
            standard=str(certificate["standard"]),
            expires=int(certificate["expires"]),
            note=None if certificate.get("note") is None else str(certificate["note"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidInput(
            f"the certificate document is incomplete: {exc}", code="invalid_certificate"
        ) from exc


def _document_note(certificate: dict[str, Any], data: CertificationData, authority_code: str) -> str | None:
    """The event note of a document that names this lot, authority and expiry (and hashes to the message's
    ``certificateHash``, checked by the caller)."""
    document = _document(certificate)
    if (document["lot"], document["authority"], document["expires"]) != (
        data.lot_code,
        authority_code,
        data.expires,
    ):
        raise InvalidInput(
            "the certificate document names another lot, authority or expiry than the message",
            code="certificate_mismatch",
        )
    return str(document["note"]) or None


def _signature_bytes(signature: str) -> bytes:
    try:
        raw = decode_hex(signature)
    except (ValueError, TypeError) as exc:
        raise InvalidInput("the signature is not hex", code="invalid_signature") from exc
    if len(raw) != 65:
        raise InvalidInput("the signature must be 65 bytes (r, s, v)", code="invalid_signature")
    return bytes(raw)


def _recovered(data: CertificationData, signature: bytes, registry: TraceRegistry) -> str | None:
    try:
        return recover_signer(data, signature, registry.chain_id, registry.address)
    except (ValueError, TypeError):  # not a valid secp256k1 signature at all
        return None


def _chain_now(registry: TraceRegistry) -> int:
    # Block time, not this host's clock, decides whether the signature is still good when relayed.
    return max(chain_time(registry.w3), int(time.time()))


def _check_times(expires: int, now: int, *, deadline: int | None = None) -> None:
    if expires and expires <= now:
        raise InvalidInput("certification would already be expired", code="already_expired")
    if deadline is not None and deadline <= now:
        raise InvalidInput(
            "the signature's deadline has passed: ask for a new certification request",
            code="signature_expired",
        )


def _unlock(officer: models.Officer, passphrase: str) -> LocalAccount:
    try:
        return unlock_officer_key(officer, passphrase)
    except Forbidden as exc:
        raise Forbidden(exc.message, code="wrong_passphrase") from exc


def _lock_officer(session: Session, username: str) -> models.Officer:
    """The officer's row, active, and locked until the transaction ends (see the module docstring)."""
    repo = Repository(session)
    repo.begin_writing()  # SQLite: take the write lock now, before anything is read
    officer = _active_officer(session, username)
    locked = session.get(models.Officer, officer.id, with_for_update=True, populate_existing=True)
    assert locked is not None
    return locked


def _certify_op_of_event(session: Session, event_id: uuid.UUID, lot_code: str) -> int | None:
    """The op of a certification of ``lot_code`` already requested under ``event_id`` (unfinished or done),
    if any; the same ``event_id`` for another lot is a 409."""
    statuses = [*UNFINISHED, ChainOpStatus.DONE.value]
    for op in Repository(session).chain_ops_in(statuses, kind=ChainOpKind.CERTIFY):
        if str(op.payload["event"]["event_id"]) == str(event_id):  # type: ignore[index]
            if certification_data(op.payload).lot_code != lot_code:
                raise Conflict(
                    f"event id {event_id} was used for another certification", code="event_id_reused"
                )
            return op.id
    return None


def _certifying_authority(
    session: Session, registry: TraceRegistry, officer: models.Officer, lot_code: str, now: int
) -> models.Authority:
    """The officer's authority, once the lot is known to be of it and the officer valid on chain now."""
    repo = Repository(session)
    lot = repo.lot(lot_code)
    if lot is None:
        raise NotFound(f"unknown lot {lot_code}", code="unknown_lot")
    if lot.authority_id != officer.authority_id:
        raise Forbidden(
            f"officer {officer.username} may certify only lots of their own authority", code="not_your_lot"
        )
    authority = repo.authority(officer.authority_id)
    assert authority is not None
    # The row turns ``revoked`` only once a revocation is final; the chain may know sooner.
    if not registry.is_officer_at(authority_id(authority.code), officer.address, now):
        raise Forbidden(
            f"officer {officer.username} is not an officer of {authority.code} on chain now "
            "(revoked, or their term has not begun)",
            code="officer_not_valid",
        )
    return authority


def _record_certify_op(
    session: Session,
    registry: TraceRegistry,
    officer: models.Officer,
    data: CertificationData,
    signature: str,
    *,
    standard: str,
    note: str | None,
    place_id: str,
    id_base: str,
    when: datetime,
    event_id: uuid.UUID | None,
) -> int:
    """Commit-ahead the ``certify`` op: the signed data, the signature and the event to record once it is on
    chain."""
    document = typed_data(data, registry.chain_id, registry.address)
    cert_id = encode_hex(typed_data_digest(document))
    try:
        event = Certification(
            kind="certification",
            event_id=event_id or uuid.uuid4(),
            event_time=when,
            actor=officer_party(officer.id),
            place=Place(id=place_id),
            lot_code=data.lot_code,
            authority=data.authority_code,
            officer=data.officer.lower(),
            standard=standard,
            certificate_hash=encode_hex(data.certificate_hash),
            expires=data.expires,
            nonce=data.nonce,
            deadline=data.deadline,
            signature=signature,
            cert_id=cert_id,
            note=note,
        )
    except ValidationError as exc:
        raise InvalidInput(f"invalid certification: {exc.errors()[0]['msg']}") from exc
    op = Repository(session).add_chain_op(
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
    note: str | None = None,
    event_id: uuid.UUID | None = None,
    event_time: datetime | None = None,
    tz: str = DEFAULT_TIMEZONE,
    signature_window_s: int = SIGNATURE_WINDOW_S,
    timeout: float | None = None,
) -> CertifyResult:
    """Sign, commit the intent, relay from ``registry``'s key, and return once the certification is on chain
    and its event and record are written. If the chain does not answer in time the intent stays committed and
    a ChainError ``chain_op_pending`` is raised: the anchoring worker finishes it. The same ``event_id`` again
    (a form posted twice) waits for the first one's certification and returns it."""
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
        note=note,
        event_id=event_id,
        event_time=event_time,
        tz=tz,
        signature_window_s=signature_window_s,
    )
    return _settled_certification(sessions, registry, op_id, lot_code, timeout)


def _settled_certification(
    sessions: sessionmaker[Session], registry: TraceRegistry, op_id: int, lot_code: str, timeout: float | None
) -> CertifyResult:
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
        account = _unlock(officer, passphrase)
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
