"""Enrol the parties: authorities (อปท.), farmers and their plots, officers with their own keys."""

from __future__ import annotations

from decimal import Decimal

from argon2 import PasswordHasher
from eth_account import Account
from eth_account.signers.local import LocalAccount
from sqlalchemy.orm import Session

from traceability.chain.registry import TraceRegistry, authority_id
from traceability.errors import Conflict, Forbidden, NotFound
from traceability.store import models
from traceability.store.repository import Repository

_hasher = PasswordHasher()
# Enough for a few revocations (about 40k gas each) at a generous 10 gwei.
OFFICER_GAS_ALLOWANCE_WEI = 10**16


def hash_secret(secret: str) -> str:
    return _hasher.hash(secret)


def enrol_authority(
    session: Session,
    *,
    code: str,
    name_th: str,
    name_en: str,
    district_th: str,
    province_th: str,
    admin_address: str,
    registrar: TraceRegistry | None = None,
) -> models.Authority:
    repo = Repository(session)
    if repo.authority_by_code(code) is not None:
        raise Conflict(f"authority {code} already exists")
    if registrar is not None:
        registrar.add_authority(authority_id(code), admin_address)
    row = models.Authority(
        code=code,
        name_th=name_th,
        name_en=name_en,
        district_th=district_th,
        province_th=province_th,
        admin_address=admin_address,
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
) -> models.Plot:
    if Repository(session).plot_by_code(code) is not None:
        raise Conflict(f"plot {code} already exists")
    row = models.Plot(
        code=code,
        farmer_id=farmer.id,
        authority_id=farmer.authority_id,
        village_th=village_th,
        village_en=village_en,
        area_rai=area_rai,
        lat=lat,
        lon=lon,
    )
    session.add(row)
    session.flush()
    return row


def enrol_officer(
    session: Session,
    *,
    username: str,
    display_name: str,
    authority: models.Authority,
    password: str,
    passphrase: str,
    authority_admin: TraceRegistry,
    valid_from: int = 0,
    gas_allowance_wei: int = OFFICER_GAS_ALLOWANCE_WEI,
) -> models.Officer:
    """Make the officer a key of their own, kept only as a keystore encrypted with their passphrase, and
    register it on chain through the authority's admin key. Certifying costs the officer nothing (the service
    relays the signature), but a revocation is sent from the officer's own key, so the admin grants it a
    little gas."""
    if Repository(session).officer_by_username(username) is not None:
        raise Conflict(f"officer {username} already exists")
    account: LocalAccount = Account.create()
    keystore = Account.encrypt(account.key, passphrase)
    authority_admin.add_officer(authority_id(authority.code), account.address, valid_from)
    if gas_allowance_wei and authority_admin.sender is not None:
        sender = authority_admin.sender
        sender.wait(
            sender.send({"to": account.address, "value": gas_allowance_wei}), authority_admin.receipt_timeout
        )
    row = models.Officer(
        username=username,
        authority_id=authority.id,
        display_name=display_name,
        address=account.address,
        keystore=dict(keystore),
        password_hash=hash_secret(password),
    )
    session.add(row)
    session.flush()
    return row


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
