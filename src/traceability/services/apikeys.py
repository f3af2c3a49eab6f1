"""Importers' API keys: made by the operator (``trace apikey create NAME``), shown once, kept only as a hash.

A key is ``ttk_`` followed by 32 random bytes in base64url (256 bits). The database keeps its SHA-256 (hex)
and its first characters (``prefix``), so an operator can tell keys apart in ``trace apikey list`` and an
importer can say which key they hold without reading it out. A fast hash is enough: there is nothing to
brute-force in 256 random bits, and a lookup by hash needs no constant-time comparison (the hash of a
guess says nothing about any stored key).

A key is revoked by name and kept, with when. ``last_used_at`` is written at most once a minute per key: an
importer polling the API must not turn every read into a write.

A key is never logged, printed (except once, by ``trace apikey create``) or put in an error message.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from traceability.domain.evidence import iso_utc
from traceability.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthorized
from traceability.services.auth import authenticate as authenticate_token
from traceability.store import models

KEY_PREFIX: Final = "ttk_"
KEY_BYTES: Final = 32
PREFIX_CHARS: Final = 12
"""``ttk_`` and the first 8 random characters: 48 bits, enough to tell keys apart, nothing to guess with."""
NAME_RE: Final = re.compile(r"[A-Za-z0-9._-]{1,64}")
LAST_USED_EVERY: Final = timedelta(minutes=1)
MAX_PRESENTED: Final = 256
"""A presented key longer than this is refused without hashing it."""


@dataclass(frozen=True)
class ApiKeyInfo:
    """What may be shown about a key: never the key itself."""

    name: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "prefix": self.prefix,
            "created_at": iso_utc(self.created_at),
            "revoked_at": iso_utc(self.revoked_at),
            "last_used_at": iso_utc(self.last_used_at),
            "active": self.active,
        }


@dataclass(frozen=True)
class CreatedKey:
    """A new key: ``key`` is shown to the operator once and exists nowhere else."""

    key: str
    info: ApiKeyInfo


@dataclass(frozen=True)
class RevokedKey:
    info: ApiKeyInfo
    already: bool
    """True when the key had been revoked before (the time is the first revocation's)."""


@dataclass(frozen=True)
class Importer:
    """Who a request with a valid API key speaks for (a key's name and id; read-only access)."""

    key_id: int
    name: str
    prefix: str
    last_used_at: datetime | None


def hash_key(key: str) -> str:
    """The SHA-256 (lower-case hex) of the key's UTF-8 bytes: what ``api_keys.key_hash`` holds."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_key() -> str:
    """``ttk_`` + 32 random bytes in unpadded base64url (43 characters)."""
    raw = secrets.token_bytes(KEY_BYTES)
    return KEY_PREFIX + base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def check_name(name: str) -> str:
    if not NAME_RE.fullmatch(name):
        raise InvalidInput(
            f"an API key's name is 1-64 characters of A-Z, a-z, 0-9, '.', '_' and '-': {name[:80]!r}",
            code="invalid_name",
        )
    return name


def _info(row: models.ApiKey) -> ApiKeyInfo:
    return ApiKeyInfo(row.name, row.prefix, row.created_at, row.revoked_at, row.last_used_at)


def _by_name(session: Session, name: str) -> models.ApiKey | None:
    return session.scalars(select(models.ApiKey).where(models.ApiKey.name == name)).one_or_none()


def _taken(name: str, row: models.ApiKey | None) -> Conflict:
    revoked = f" (revoked {iso_utc(row.revoked_at)})" if row is not None and row.revoked_at else ""
    return Conflict(
        f"an API key named {name!r} already exists{revoked}: names are never reused, choose another",
        code="name_taken",
    )


def create_api_key(session: Session, name: str, *, now: datetime | None = None) -> CreatedKey:
    """A new key under ``name`` (unique, also among revoked keys: a name in an old log must keep meaning one
    key). Only its hash and prefix are stored."""
    check_name(name)
    existing = _by_name(session, name)
    if existing is not None:
        raise _taken(name, existing)
    key = new_key()
    row = models.ApiKey(
        name=name,
        key_hash=hash_key(key),
        prefix=key[:PREFIX_CHARS],
        created_at=now or datetime.now(UTC),
    )
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        # Another process took the name between the check and the insert.
        raise _taken(name, None) from None
    return CreatedKey(key, _info(row))


def revoke_api_key(session: Session, name: str, *, now: datetime | None = None) -> RevokedKey:
    """Revoke the key called ``name``: it stops working at once (the next request is 401). Revoking it
    again changes nothing and says so."""
    row = _by_name(session, name)
    if row is None:
        raise NotFound(f"no API key named {name[:80]!r}", code="unknown_key")
    if row.revoked_at is not None:
        return RevokedKey(_info(row), already=True)
    row.revoked_at = now or datetime.now(UTC)
    session.flush()
    return RevokedKey(_info(row), already=False)


def list_api_keys(session: Session) -> list[ApiKeyInfo]:
    """Every key, active and revoked, oldest first."""
    rows = session.scalars(select(models.ApiKey).order_by(models.ApiKey.created_at, models.ApiKey.id))
    return [_info(row) for row in rows]


def authenticate_api_key(session: Session, presented: str | None) -> Importer:
    """The importer an ``Authorization: Bearer`` value speaks for.

    * missing, unknown or revoked: 401 ``unauthorized`` (with ``WWW-Authenticate: Bearer``);
    * a farmer's or officer's sign-in token (``POST /api/v1/auth/token``): 403 ``forbidden`` — the caller is
      someone, just not an importer, and should be told what these endpoints take.
    """
    if not presented:
        raise Unauthorized("send an importer API key: Authorization: Bearer ttk_…")
    if len(presented) <= MAX_PRESENTED:
        row = session.scalars(
            select(models.ApiKey).where(models.ApiKey.key_hash == hash_key(presented))
        ).one_or_none()
        if row is not None:
            if row.revoked_at is not None:
                raise Unauthorized(
                    f"this API key ({row.prefix}…) was revoked: ask the operator for a new one"
                )
            return Importer(row.id, row.name, row.prefix, row.last_used_at)
        if not presented.startswith(KEY_PREFIX):
            try:
                authenticate_token(session, presented)
            except Unauthorized:
                pass
            else:
                raise Forbidden("importer endpoints take an API key, not a sign-in token")
    raise Unauthorized("unknown API key")


def needs_touch(importer: Importer, now: datetime) -> bool:
    """Whether this use should be written to ``last_used_at`` (at most once a minute per key)."""
    last = importer.last_used_at
    return last is None or now - last >= LAST_USED_EVERY


def record_use(session: Session, key_id: int, *, now: datetime | None = None) -> bool:
    """Set ``last_used_at`` to now unless it was set less than a minute ago (checked in the UPDATE itself,
    so concurrent requests write it once). True when written."""
    now = now or datetime.now(UTC)
    result = session.execute(
        update(models.ApiKey)
        .where(
            models.ApiKey.id == key_id,
            or_(models.ApiKey.last_used_at.is_(None), models.ApiKey.last_used_at <= now - LAST_USED_EVERY),
        )
        .values(last_used_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0))
