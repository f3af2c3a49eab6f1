"""Perceptual hashes of evidence photos: computed when a photo is uploaded, kept by the photo's SHA-256.

The origin-risk signal ``photo_reused`` asks whether the photo behind one lot's event shows the same picture
as another lot's, which a SHA-256 cannot tell once the photo has been re-compressed or resized. Hashing means
decoding, so each photo is hashed once and the 64-bit hash kept in ``photo_hashes`` as 16 hex digits. Photos
uploaded before that table existed are hashed from their stored original the first time they are asked for.

Like every service, this only adds and flushes: the request (or the CLI's transaction) commits.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Final

from PIL import Image, ImageOps
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from traceability.domain.photohash import phash64
from traceability.errors import InvalidInput
from traceability.services.evidence import inspect_image, original_path
from traceability.store.models import PhotoHash

log = logging.getLogger(__name__)

CHUNK: Final = 500
"""Hashes per ``IN (…)`` list: well under SQLite's bound-parameter limit and PostgreSQL's comfort."""


def perceptual_hash_of(data: bytes) -> int:
    """The 64-bit perceptual hash of a photo as it is seen (EXIF orientation applied): a phone photo stored
    sideways with an orientation tag and the same photo rotated by an editor hash alike. A file that is not
    an acceptable image raises the same :class:`InvalidInput` as an upload would."""
    inspect_image(data)
    with Image.open(io.BytesIO(data)) as image:
        upright = ImageOps.exif_transpose(image)
        return phash64(upright)


def _hex(value: int) -> str:
    return f"{value:016x}"


def _insert_absent(session: Session, rows: Mapping[str, int]) -> None:
    """Insert the rows whose photo has none yet. ``ON CONFLICT DO NOTHING``: two uploads of one photo
    racing each other both succeed (the hash is the same), instead of one failing the farmer's form."""
    if not rows:
        return
    values = [{"sha256": sha, "phash": _hex(phash)} for sha, phash in rows.items()]
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    for start in range(0, len(values), CHUNK):
        statement = insert(PhotoHash).values(values[start : start + CHUNK])
        session.execute(statement.on_conflict_do_nothing(index_elements=["sha256"]))
    session.flush()


def record_photo_hash(session: Session, sha256: str, data: bytes) -> int:
    """Hash an uploaded photo and keep the hash under ``sha256`` (if it has none yet); flushes only."""
    phash = perceptual_hash_of(data)
    _insert_absent(session, {sha256: phash})
    return phash


def _stored(session: Session, sha256s: list[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for start in range(0, len(sha256s), CHUNK):
        chunk = sha256s[start : start + CHUNK]
        rows = session.execute(select(PhotoHash.sha256, PhotoHash.phash).where(PhotoHash.sha256.in_(chunk)))
        found.update((sha, int(phash, 16)) for sha, phash in rows)
    return found


def _hash_file(evidence_dir: Path, sha256: str) -> int | None:
    """The hash of a stored original, or None when there is no file or it cannot be read as an image: a
    missing photo is a finding for the risk signals to weigh, never a crash."""
    path = original_path(evidence_dir, sha256)
    if path is None:
        return None
    try:
        return perceptual_hash_of(path.read_bytes())
    except (OSError, InvalidInput) as exc:
        log.warning("evidence photo %s could not be hashed: %s", sha256, exc)
        return None


def photo_hashes(session: Session, evidence_dir: Path, sha256s: Iterable[str]) -> dict[str, int]:
    """The perceptual hashes of the photos named, by SHA-256: the stored ones in one query per 500, and for
    the rest, hashed from their original under ``evidence_dir`` and stored (photos uploaded before hashes
    were kept). A photo with no row and no readable file is left out of the result."""
    wanted = list(dict.fromkeys(sha256s))
    found = _stored(session, wanted)
    backfilled: dict[str, int] = {}
    for sha256 in wanted:
        if sha256 not in found and (phash := _hash_file(evidence_dir, sha256)) is not None:
            backfilled[sha256] = phash
    _insert_absent(session, backfilled)
    return {**found, **backfilled}
