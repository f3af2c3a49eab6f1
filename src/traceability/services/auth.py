"""Sign-in and bearer tokens for farmers (phone number + PIN) and officers (username + password).

A token is 32 random bytes (``secrets.token_urlsafe``) given to the client once; the database keeps only its
SHA-256, with the role, the farmer or officer it speaks for and its expiry. Every attempt to sign in is
recorded in ``login_attempts`` (in the request's transaction, so a refused attempt is committed too), which
makes the throttle hold across any number of server processes:

* an account (the identifier typed, whether or not it exists) with ``account_limit`` failures within
  ``lookback`` since its last success is locked;
* a client address with ``client_limit`` failures within ``lookback``, whatever the accounts, is locked;
  the limit is higher because a whole village may share one carrier-grade NAT address;
* a lock lasts ``base_lock`` after the failure that reached the limit and doubles with every further
  failure, up to ``max_lock``. While locked, the secret is not even checked.

PINs, passwords and tokens are never logged or stored readable.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.orm import Session

from traceability.domain.states import PartyStatus, Role
from traceability.errors import Forbidden, RateLimited, TraceabilityError, Unauthorized
from traceability.services.parties import officer_party
from traceability.store import models
from traceability.store.repository import Repository

TOKEN_TTL = timedelta(hours=12)
_hasher = PasswordHasher()


@dataclass(frozen=True)
class ThrottlePolicy:
    account_limit: int = 5
    client_limit: int = 20
    lookback: timedelta = timedelta(hours=24)
    base_lock: timedelta = timedelta(minutes=1)
    max_lock: timedelta = timedelta(hours=24)

    def locked_until(self, failures: int, last: datetime | None, limit: int) -> datetime | None:
        if failures < limit or last is None:
            return None
        lock: timedelta = min(self.base_lock * 2 ** min(failures - limit, 20), self.max_lock)
        until: datetime = last + lock
        return until


DEFAULT_POLICY = ThrottlePolicy()


@dataclass(frozen=True)
class Principal:
    """Who the request speaks for. ``party`` is the pseudonymous code events carry as their actor."""

    role: Role
    party: str
    authority_id: int
    farmer_id: int | None = None
    officer_id: int | None = None


@dataclass(frozen=True)
class IssuedToken:
    access_token: str
    expires_in: int
    principal: Principal


@dataclass(frozen=True)
class SignIn:
    """The outcome of one attempt: a token, or the error to answer with. Returned, not raised, so that the
    request's transaction commits the record of a failed attempt."""

    token: IssuedToken | None = None
    error: TraceabilityError | None = None


def normalise_phone(phone: str) -> str:
    """Thai mobile numbers as enrolled (``0811111111``): spaces and dashes dropped, ``+66`` → ``0``."""
    digits = "".join(ch for ch in phone.strip() if ch.isdigit() or ch == "+")
    if digits.startswith("+66"):
        digits = "0" + digits[3:]
    return digits


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _account_key(identifier: str) -> str:
    return hashlib.sha256(identifier.encode("utf-8")).hexdigest()


@cache
def _dummy_hash() -> str:
    # Checked against when the account does not exist, so a wrong phone number and a wrong PIN take as long.
    return _hasher.hash(secrets.token_hex(16))


def _verify(stored: str | None, secret: str) -> bool:
    try:
        return _hasher.verify(stored or _dummy_hash(), secret) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


def _locked_message(seconds: int) -> str:
    return (
        f"ใส่รหัสผิดหลายครั้งเกินไป กรุณารอ {seconds} วินาทีแล้วลองใหม่ / "
        f"Too many failed sign-in attempts: try again in {seconds} seconds."
    )


def sign_in_farmer(
    session: Session,
    *,
    phone: str,
    pin: str,
    client: str,
    now: datetime | None = None,
    policy: ThrottlePolicy = DEFAULT_POLICY,
) -> SignIn:
    phone = normalise_phone(phone)
    repo = Repository(session)
    return _sign_in(
        repo,
        identifier=f"phone:{phone}",
        client=client,
        now=now,
        policy=policy,
        check=lambda: _farmer_principal(repo, phone, pin),
    )


def sign_in_officer(
    session: Session,
    *,
    username: str,
    password: str,
    client: str,
    now: datetime | None = None,
    policy: ThrottlePolicy = DEFAULT_POLICY,
) -> SignIn:
    username = username.strip()
    repo = Repository(session)
    return _sign_in(
        repo,
        identifier=f"user:{username}",
        client=client,
        now=now,
        policy=policy,
        check=lambda: _officer_principal(repo, username, password),
    )


def _farmer_principal(repo: Repository, phone: str, pin: str) -> Principal | None:
    farmer = repo.farmer_by_phone(phone) if phone else None
    if not _verify(farmer.pin_hash if farmer else None, pin) or farmer is None:
        return None
    return Principal(Role.FARMER, farmer.code, farmer.authority_id, farmer_id=farmer.id)


def _officer_principal(repo: Repository, username: str, password: str) -> Principal | None:
    officer = repo.officer_by_username(username) if username else None
    if not _verify(officer.password_hash if officer else None, password) or officer is None:
        return None
    if officer.status != PartyStatus.ACTIVE:
        # Only after the password proved who is asking: a pending officer's key is not on chain yet, a
        # revoked one's is void.
        raise Forbidden(
            f"บัญชีเจ้าหน้าที่นี้ใช้งานไม่ได้ ({officer.status}) / this officer account is {officer.status}",
            code="account_inactive",
        )
    return Principal(Role.OFFICER, officer_party(officer.id), officer.authority_id, officer_id=officer.id)


def _sign_in(
    repo: Repository,
    *,
    identifier: str,
    client: str,
    now: datetime | None,
    policy: ThrottlePolicy,
    check: Callable[[], Principal | None],
) -> SignIn:
    now = now or datetime.now(UTC)
    account_key = _account_key(identifier)
    client = client[:64]
    since = now - policy.lookback
    locks = [
        policy.locked_until(*repo.account_failures(account_key, since), policy.account_limit),
        policy.locked_until(*repo.client_failures(client, since), policy.client_limit),
    ]
    until = max((t for t in locks if t is not None), default=None)
    if until is not None and until > now:
        seconds = max(1, int((until - now).total_seconds() + 0.999))
        return SignIn(error=RateLimited(_locked_message(seconds), retry_after=seconds))

    try:
        principal = check()
    except Forbidden as exc:
        # The secret was right: not a guess, so it does not count against the account.
        _record(repo, account_key, client, now, succeeded=True)
        return SignIn(error=exc)
    _record(repo, account_key, client, now, succeeded=principal is not None)
    if principal is None:
        return SignIn(
            error=Unauthorized(
                "หมายเลขโทรศัพท์/ชื่อผู้ใช้หรือรหัสไม่ถูกต้อง / wrong credentials",
                code="invalid_credentials",
            )
        )
    return SignIn(token=_issue(repo, principal, now))


def _record(repo: Repository, account_key: str, client: str, now: datetime, *, succeeded: bool) -> None:
    repo.purge_login_attempts(now - 2 * DEFAULT_POLICY.max_lock)
    repo.session.add(
        models.LoginAttempt(account_key=account_key, client=client, succeeded=succeeded, created_at=now)
    )
    repo.session.flush()


def _issue(repo: Repository, principal: Principal, now: datetime) -> IssuedToken:
    token = secrets.token_urlsafe(32)
    repo.purge_auth_tokens(now - timedelta(days=1))
    repo.session.add(
        models.AuthToken(
            token_hash=hash_token(token),
            role=principal.role,
            farmer_id=principal.farmer_id,
            officer_id=principal.officer_id,
            created_at=now,
            expires_at=now + TOKEN_TTL,
        )
    )
    repo.session.flush()
    return IssuedToken(token, int(TOKEN_TTL.total_seconds()), principal)


def sign_out(session: Session, token: str | None) -> None:
    """Forget a token (a web session's or an API client's): it stops working at once."""
    if token:
        Repository(session).delete_auth_token(hash_token(token))


def authenticate(session: Session, token: str | None, *, now: datetime | None = None) -> Principal:
    """The principal a bearer token speaks for; 401 if it is missing, unknown or expired, or if its officer
    is no longer active (a revoked officer's tokens stop working at once)."""
    if not token:
        raise Unauthorized("sign in first: send Authorization: Bearer <token>", code="missing_token")
    now = now or datetime.now(UTC)
    row = Repository(session).token_principal(hash_token(token))
    if row is None or row.expires_at <= now:
        raise Unauthorized("the token is unknown or has expired: sign in again", code="invalid_token")
    role, _, farmer_id, farmer_code, farmer_authority, officer_id, officer_authority, officer_status = row
    if role == Role.FARMER and farmer_id is not None:
        return Principal(Role.FARMER, farmer_code, farmer_authority, farmer_id=farmer_id)
    if role == Role.OFFICER and officer_id is not None and officer_status == PartyStatus.ACTIVE:
        return Principal(Role.OFFICER, officer_party(officer_id), officer_authority, officer_id=officer_id)
    raise Unauthorized("the token's account is no longer active: sign in again", code="invalid_token")
