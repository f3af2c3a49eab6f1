"""Enrol the parties: authorities (อปท.), farmers and their plots, officers with their own keys.

Registering an authority or an officer on chain is write-ahead (:mod:`traceability.services.chainops`): the
row is written with status ``pending`` (an officer's with its encrypted keystore, so the key is never lost)
together with the transactions signed by the registrar's or the authority admin's key, and committed before
anything is broadcast; the row becomes ``active`` only once the registration is on chain. Revoking an officer
is write-ahead the same way, and the row becomes ``revoked`` once the revocation is on chain.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from argon2 import PasswordHasher
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils.address import is_address, to_checksum_address
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from traceability.chain.registry import OfficerStatus, TraceRegistry, authority_id
from traceability.domain.catalog import BusinessKind, FarmingStandard, LocationKind
from traceability.domain.geo import check_plot_area
from traceability.domain.states import ChainOpKind, PartyStatus
from traceability.errors import Conflict, Forbidden, InvalidInput, NotFound
from traceability.services.chainops import (
    UNFINISHED,
    allocate_nonces,
    chain_time,
    contract_call,
    head_block,
    presign,
    raise_unless_done,
    require_sessionmaker,
    settle_chain_op,
)
from traceability.store import models
from traceability.store.database import transaction
from traceability.store.repository import Repository

_hasher = PasswordHasher()
# Enough for a few revocations (about 40k gas each) at a generous 10 gwei.
OFFICER_GAS_ALLOWANCE_WEI = 10**16


def officer_party(officer_id: int) -> str:
    """An officer's pseudonymous party code in events and tokens: the row id, never their name (PDPA)."""
    return f"OFF-{officer_id:04d}"


def hash_secret(secret: str) -> str:
    return _hasher.hash(secret)


def enrol_authority(
    sessions: Session | sessionmaker[Session],
    *,
    code: str,
    name_th: str,
    name_en: str,
    district_th: str,
    province_th: str,
    admin_address: str,
    registrar: TraceRegistry | None = None,
    timeout: float | None = None,
) -> models.Authority:
    """An authority. With ``registrar`` (a client with the registrar's key) it is registered on chain
    write-ahead and returned once ``active``; that needs the sessionmaker, since the intent is committed
    before anything is sent. Without, the row alone is written (active, never on chain: e.g. for a
    benchmark), in the caller's session or in a transaction of its own."""
    if registrar is None:
        if isinstance(sessions, Session):
            return _authority_row(sessions, code, name_th, name_en, district_th, province_th, admin_address)
        with transaction(sessions) as session:
            return _authority_row(session, code, name_th, name_en, district_th, province_th, admin_address)
    if isinstance(sessions, Session):
        raise TypeError("registering an authority on chain commits its intent first: pass the sessionmaker")
    op_id = request_authority(
        sessions,
        registrar,
        code=code,
        name_th=name_th,
        name_en=name_en,
        district_th=district_th,
        province_th=province_th,
        admin_address=admin_address,
    )
    raise_unless_done(settle_chain_op(sessions, registrar, op_id, timeout=timeout), f"registration of {code}")
    with transaction(sessions) as session:
        row = Repository(session).authority_by_code(code)
        assert row is not None
        return row


def request_authority(
    sessions: sessionmaker[Session],
    registrar: TraceRegistry,
    *,
    code: str,
    name_th: str,
    name_en: str,
    district_th: str,
    province_th: str,
    admin_address: str,
) -> int:
    """Write the authority ``pending`` with its ``addAuthority`` transaction signed by the registrar's key, as
    an ``add_authority`` chain op; commit; send nothing. Returns the op id."""
    require_sessionmaker(sessions, "registering an authority on chain")
    if registrar.account is None:
        raise Forbidden("registering an authority needs the registrar's key")
    admin = checked_address(admin_address, "the authority's admin")
    if not registrar.has_role("registrar", registrar.account.address):
        raise Forbidden(
            f"the registrar key ({registrar.account.address}) does not hold REGISTRAR_ROLE on registry "
            f"{registrar.address}"
        )
    with transaction(sessions) as session:
        row = _authority_row(
            session, code, name_th, name_en, district_th, province_th, admin, status=PartyStatus.PENDING
        )
        [nonce] = allocate_nonces(session, registrar.w3, registrar.account.address, 1)
        call = contract_call(registrar, "addAuthority", authority_id(code), admin)
        raw = presign(registrar, "add_authority", call, nonce)
        op = Repository(session).add_chain_op(
            ChainOpKind.ADD_AUTHORITY,
            code,
            {
                "authority_id": row.id,
                "code": code,
                "admin": admin,
                "txs": [raw.to_json()],
                "from_block": head_block(registrar),
            },
        )
        return op.id


def checked_address(value: str, what: str) -> str:
    """``value`` checksummed; InvalidInput if it is not an address, or is the zero address."""
    if not is_address(value) or int(value, 16) == 0:
        raise InvalidInput(
            f"{what} is not an address: {value!r} (0x and 40 hex digits, not zero; mixed case must be the "
            "EIP-55 checksum)"
        )
    return to_checksum_address(value)


def authority_by_code(session: Session, code: str) -> models.Authority:
    row = Repository(session).authority_by_code(code)
    if row is None:
        raise NotFound(f"unknown authority {code}")
    return row


def officer_term(registry: TraceRegistry, authority_code: str, address: str) -> OfficerStatus:
    """The officer's term for the authority as the chain records it."""
    return registry.officer_status(authority_id(authority_code), address)


def _authority_row(
    session: Session,
    code: str,
    name_th: str,
    name_en: str,
    district_th: str,
    province_th: str,
    admin_address: str,
    *,
    status: PartyStatus = PartyStatus.ACTIVE,
) -> models.Authority:
    if Repository(session).authority_by_code(code) is not None:
        raise Conflict(f"authority {code} already exists")
    row = models.Authority(
        code=code,
        name_th=name_th,
        name_en=name_en,
        district_th=district_th,
        province_th=province_th,
        admin_address=admin_address,
        status=status,
    )
    session.add(row)
    session.flush()
    return row


def enrol_farmer(
    session: Session,
    *,
    code: str,
    authority: models.Authority,
    display_name: str,
    phone: str,
    pin: str,
    group_th: str | None = None,
    business: models.Business | None = None,
) -> models.Farmer:
    if Repository(session).farmer_by_code(code) is not None:
        raise Conflict(f"farmer {code} already exists")
    row = models.Farmer(
        code=code,
        authority_id=authority.id,
        display_name=display_name,
        phone=phone,
        pin_hash=hash_secret(pin),
        group_th=group_th,
        business_id=business.id if business is not None else None,
    )
    session.add(row)
    session.flush()
    return row


def set_authority_contact(
    session: Session,
    authority: models.Authority,
    *,
    district_en: str,
    province_en: str,
    address_th: str,
    address_en: str,
    phone: str,
) -> models.Authority:
    """The อปท. office's public contact: its English district and province, address and office phone (what
    exports print for places it answers for). Not on chain: it can be corrected."""
    authority.district_en = district_en
    authority.province_en = province_en
    authority.address_th = address_th
    authority.address_en = address_en
    authority.phone = phone
    session.flush()
    return authority


def enrol_business(
    session: Session,
    *,
    code: str,
    kind: BusinessKind,
    name_th: str,
    name_en: str,
    address_th: str | None = None,
    address_en: str | None = None,
    country: str = "TH",
    phone: str | None = None,
    authority: models.Authority | None = None,
) -> models.Business:
    """A business party (community enterprise, exporter, ...) under the party code events carry."""
    if session.scalar(select(models.Business).where(models.Business.code == code)) is not None:
        raise Conflict(f"business {code} already exists")
    row = models.Business(
        code=code,
        kind=BusinessKind(kind),
        name_th=name_th,
        name_en=name_en,
        address_th=address_th,
        address_en=address_en,
        country=country,
        phone=phone,
        authority_id=authority.id if authority is not None else None,
    )
    session.add(row)
    session.flush()
    return row


def enrol_location(
    session: Session,
    *,
    code: str,
    kind: LocationKind,
    name_th: str,
    name_en: str,
    address_th: str | None = None,
    address_en: str | None = None,
    country: str = "TH",
    lat: Decimal | None = None,
    lon: Decimal | None = None,
    authority: models.Authority | None = None,
    business: models.Business | None = None,
) -> models.Location:
    """A place that is not a plot (farm, packing house, mill, port...) under the place code events carry."""
    if session.scalar(select(models.Location).where(models.Location.code == code)) is not None:
        raise Conflict(f"location {code} already exists")
    row = models.Location(
        code=code,
        kind=LocationKind(kind),
        name_th=name_th,
        name_en=name_en,
        address_th=address_th,
        address_en=address_en,
        country=country,
        lat=lat,
        lon=lon,
        authority_id=authority.id if authority is not None else None,
        business_id=business.id if business is not None else None,
    )
    session.add(row)
    session.flush()
    return row


def enrol_plot(
    session: Session,
    *,
    code: str,
    farmer: models.Farmer,
    village_th: str,
    village_en: str,
    area_rai: Decimal,
    lat: Decimal | None = None,
    lon: Decimal | None = None,
    name: str | None = None,
    crop: str | None = None,
    standard: FarmingStandard | None = None,
    boundary: dict[str, Any] | None = None,
    enrolment_key: str | None = None,
) -> models.Plot:
    """A plot of ``farmer``. A ``boundary`` (GeoJSON Polygon or MultiPolygon; ValueError if it is not one) is
    kept with its computed area and whether that is far from ``area_rai`` (see ``domain/geo.py``)."""
    if Repository(session).plot_by_code(code) is not None:
        raise Conflict(f"plot {code} already exists")
    check = check_plot_area(boundary, area_rai) if boundary is not None else None
    row = models.Plot(
        code=code,
        farmer_id=farmer.id,
        authority_id=farmer.authority_id,
        village_th=village_th,
        village_en=village_en,
        area_rai=area_rai,
        lat=lat,
        lon=lon,
        name=name,
        crop=crop,
        standard=standard,
        boundary=boundary,
        boundary_area_rai=check.computed_rai if check else None,
        boundary_flagged=check.flagged if check else None,
        enrolment_key=enrolment_key,
    )
    session.add(row)
    session.flush()
    return row


def enrol_officer(
    sessions: sessionmaker[Session],
    *,
    username: str,
    display_name: str,
    authority: models.Authority,
    password: str,
    passphrase: str,
    authority_admin: TraceRegistry,
    valid_from: int = 0,
    gas_allowance_wei: int = OFFICER_GAS_ALLOWANCE_WEI,
    timeout: float | None = None,
) -> models.Officer:
    """Make the officer a key of their own, kept only as a keystore encrypted with their passphrase, and
    register it on chain through the authority's admin key (write-ahead, see :func:`request_officer`).
    Returns the officer row once it is ``active``."""
    op_id = request_officer(
        sessions,
        authority_admin,
        username=username,
        display_name=display_name,
        authority=authority,
        password=password,
        passphrase=passphrase,
        valid_from=valid_from,
        gas_allowance_wei=gas_allowance_wei,
    )
    report = settle_chain_op(sessions, authority_admin, op_id, timeout=timeout)
    raise_unless_done(report, f"registration of officer {username}")
    with transaction(sessions) as session:
        row = Repository(session).officer_by_username(username)
        assert row is not None
        return row


def request_officer(
    sessions: sessionmaker[Session],
    authority_admin: TraceRegistry,
    *,
    username: str,
    display_name: str,
    authority: models.Authority,
    password: str,
    passphrase: str,
    valid_from: int = 0,
    gas_allowance_wei: int = OFFICER_GAS_ALLOWANCE_WEI,
) -> int:
    """Write the officer ``pending`` with their encrypted keystore, and the transactions the admin's key
    signs now (``addOfficer``, then the gas allowance: certifying costs the officer nothing, since the service
    relays the signature, but a revocation is sent from the officer's own key), as an ``add_officer`` chain
    op; commit; send nothing. Returns the op id."""
    require_sessionmaker(sessions, "registering an officer on chain")
    admin = authority_admin.account
    if admin is None:
        raise Forbidden("registering an officer needs the authority admin's key")
    account: LocalAccount = Account.create()
    keystore = Account.encrypt(account.key, passphrase)  # slow by design (scrypt): before the transaction
    with transaction(sessions) as session:
        repo = Repository(session)
        if repo.officer_by_username(username) is not None:
            raise Conflict(f"officer {username} already exists")
        auth = repo.authority(authority.id)
        if auth is None:
            raise NotFound(f"unknown authority {authority.code}")
        if auth.status != PartyStatus.ACTIVE:
            raise Conflict(f"authority {auth.code} is {auth.status}: not registered on chain yet")
        require_authority_admin(authority_admin, auth.code)
        nonces = allocate_nonces(session, authority_admin.w3, admin.address, 2 if gas_allowance_wei else 1)
        call = contract_call(
            authority_admin, "addOfficer", authority_id(auth.code), account.address, valid_from
        )
        txs = [presign(authority_admin, "add_officer", call, nonces[0])]
        if gas_allowance_wei:
            transfer = {"to": account.address, "value": gas_allowance_wei}
            txs.append(presign(authority_admin, "gas_allowance", transfer, nonces[1]))
        row = models.Officer(
            username=username,
            authority_id=auth.id,
            display_name=display_name,
            address=account.address,
            keystore=dict(keystore),
            password_hash=hash_secret(password),
            status=PartyStatus.PENDING,
        )
        session.add(row)
        session.flush()
        op = repo.add_chain_op(
            ChainOpKind.ADD_OFFICER,
            account.address,
            {
                "officer_id": row.id,
                "authority_code": auth.code,
                "officer": account.address,
                "valid_from": valid_from,
                "txs": [tx.to_json() for tx in txs],
                "from_block": head_block(authority_admin),
            },
        )
        return op.id


@dataclass(frozen=True)
class OfficerRevocation:
    """An officer revoked on chain: from ``revoked_at`` (unix s, block time) their key certifies nothing."""

    username: str
    address: str
    authority_code: str
    revoked_at: int
    tx_hash: str | None  # None only if the revocation on chain was made by another transaction


def revoke_officer(
    sessions: sessionmaker[Session],
    *,
    username: str,
    authority_admin: TraceRegistry,
    effective_at: int = 0,
    timeout: float | None = None,
) -> OfficerRevocation:
    """Revoke the officer on chain through the authority admin's key, as of ``effective_at`` (unix s; 0 = now;
    a past time is allowed, not one before the officer's ``validFrom``), write-ahead (see
    :func:`request_officer_revocation`). Returns once the revocation is on chain and the row ``revoked``."""
    op_id = request_officer_revocation(
        sessions, authority_admin, username=username, effective_at=effective_at
    )
    report = settle_chain_op(sessions, authority_admin, op_id, timeout=timeout)
    raise_unless_done(report, f"revocation of officer {username}")
    with transaction(sessions) as session:
        row = Repository(session).officer_by_username(username)
        auth = Repository(session).authority(row.authority_id) if row is not None else None
        assert row is not None and auth is not None
        address, code = row.address, auth.code
    status = authority_admin.officer_status(authority_id(code), address)
    return OfficerRevocation(username, address, code, status.revoked_at, report.tx_hash)


def request_officer_revocation(
    sessions: sessionmaker[Session],
    authority_admin: TraceRegistry,
    *,
    username: str,
    effective_at: int = 0,
) -> int:
    """Check the revocation can succeed, sign ``revokeOfficer(authority, officer, effective_at)`` with the
    authority admin's key at an explicit nonce, and commit it as a ``revoke_officer`` chain op; send nothing.
    Returns the op id. A time the contract would refuse (before the officer's ``validFrom``, in the future, or
    no earlier than a revocation already on chain) is refused here, with nothing written."""
    require_sessionmaker(sessions, "revoking an officer on chain")
    admin = authority_admin.account
    if admin is None:
        raise Forbidden("revoking an officer needs the authority admin's key")
    if effective_at < 0:
        raise InvalidInput("the effective time of a revocation cannot be negative")
    with transaction(sessions) as session:
        repo = Repository(session)
        row = officer(session, username)
        auth = repo.authority(row.authority_id)
        assert auth is not None
        if row.status == PartyStatus.REVOKED:
            raise Conflict(f"officer {username} is already revoked")
        if row.status != PartyStatus.ACTIVE:
            raise Conflict(f"officer {username} is {row.status}: their key is not registered on chain yet")
        earlier = [
            op.id
            for op in repo.chain_ops_for(row.address, kind=ChainOpKind.REVOKE_OFFICER)
            if op.status in UNFINISHED
        ]
        if earlier:
            raise Conflict(f"officer {username} is being revoked (chain op #{earlier[0]})")
        require_authority_admin(authority_admin, auth.code)
        aid = authority_id(auth.code)
        term = authority_admin.officer_status(aid, row.address)
        if term.valid_from == 0:
            raise Conflict(f"officer {username} ({row.address}) is not registered on chain for {auth.code}")
        if effective_at:
            if effective_at < term.valid_from:
                raise InvalidInput(
                    f"the revocation time {_iso(effective_at)} is before officer {username}'s validFrom "
                    f"{_iso(term.valid_from)}: a past time is allowed, but not one before the officer's term "
                    "began"
                )
            now = chain_time(authority_admin.w3)
            if effective_at > now:
                raise InvalidInput(
                    f"the revocation time {_iso(effective_at)} is in the future (chain time {_iso(now)}): "
                    "a revocation takes effect now or in the past"
                )
        if term.revoked_at and (effective_at == 0 or effective_at >= term.revoked_at):
            raise Conflict(
                f"officer {username} is already revoked on chain as of {_iso(term.revoked_at)}; only an "
                "earlier time can still be set"
            )
        [nonce] = allocate_nonces(session, authority_admin.w3, admin.address, 1)
        call = contract_call(authority_admin, "revokeOfficer", aid, row.address, effective_at)
        raw = presign(authority_admin, "revoke_officer", call, nonce)
        op = repo.add_chain_op(
            ChainOpKind.REVOKE_OFFICER,
            row.address,
            {
                "officer_id": row.id,
                "authority_code": auth.code,
                "officer": row.address,
                "effective_at": effective_at,
                "txs": [raw.to_json()],
                "from_block": head_block(authority_admin),
            },
        )
        return op.id


def require_authority_admin(client: TraceRegistry, code: str) -> None:
    """Refuse, before anything is signed, a key that is not ``code``'s admin on chain (the contract would
    revert with NotAuthorityAdmin; this says which key was expected)."""
    assert client.account is not None
    on_chain = client.authority_admin(authority_id(code))
    if on_chain is None:
        raise Conflict(f"authority {code} is not registered on chain")
    if on_chain != client.account.address:
        raise Forbidden(
            f"the key given ({client.account.address}) is not the admin of authority {code} ({on_chain})"
        )


def _iso(unix: int) -> str:
    return datetime.fromtimestamp(unix, UTC).isoformat()


def unlock_officer_key(officer: models.Officer, passphrase: str) -> LocalAccount:
    """Open the officer's keystore. Only the officer knows the passphrase: the server cannot sign alone."""
    try:
        key = Account.decrypt(officer.keystore, passphrase)
    except ValueError as exc:
        raise Forbidden("wrong passphrase for the officer's signing key") from exc
    account: LocalAccount = Account.from_key(key)
    return account


def officer(session: Session, username: str) -> models.Officer:
    row = Repository(session).officer_by_username(username)
    if row is None:
        raise NotFound(f"unknown officer {username}")
    return row
