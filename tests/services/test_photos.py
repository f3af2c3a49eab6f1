"""Perceptual hashes of evidence photos: the same picture re-compressed, resized or brightened hashes within
NEAR bits and different pictures do not; hashes are kept when a farmer's form uploads a photo, read back in
one query per 500, and computed from the stored original for photos uploaded before they were kept."""

from __future__ import annotations

import hashlib
import io
import random
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageEnhance
from sqlalchemy import event, func, select

from factories import seed_parties
from traceability.domain.photohash import NEAR, hamming
from traceability.domain.states import Role
from traceability.errors import InvalidInput
from traceability.services.auth import Principal
from traceability.services.choices import record_step
from traceability.services.evidence import original_path, store_evidence
from traceability.services.photos import perceptual_hash_of, photo_hashes, record_photo_hash
from traceability.store import models
from traceability.store.database import transaction
from traceability.store.repository import Repository

ORIENTATION = 0x0112


def picture(seed: int, size: tuple[int, int] = (640, 480)) -> Image.Image:
    """A picture with structure at every scale, like a photo: smooth colour fields and a few drawn shapes."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, size=(6, 8, 3), dtype=np.uint8)
    image = Image.fromarray(coarse, "RGB").resize(size, Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(image)
    shapes = random.Random(seed)
    for _ in range(6):
        x, y = shapes.randrange(size[0]), shapes.randrange(size[1])
        w, h = shapes.randrange(40, 200), shapes.randrange(40, 200)
        draw.ellipse((x, y, x + w, y + h), fill=tuple(shapes.randrange(256) for _ in range(3)))
    return image


def encoded(image: Image.Image, fmt: str = "JPEG", **options: Any) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **options)
    return out.getvalue()


def resized(image: Image.Image, factor: float) -> Image.Image:
    return image.resize((round(image.width * factor), round(image.height * factor)), Image.Resampling.LANCZOS)


CHANGES: dict[str, Callable[[Image.Image], bytes]] = {
    "jpeg quality 40": lambda im: encoded(im, quality=40),
    "png": lambda im: encoded(im, "PNG"),
    "webp": lambda im: encoded(im, "WEBP", quality=70),
    "10 % smaller": lambda im: encoded(resized(im, 0.9), quality=85),
    "10 % larger": lambda im: encoded(resized(im, 1.1), quality=85),
    "brighter": lambda im: encoded(ImageEnhance.Brightness(im).enhance(1.1), quality=85),
    "more contrast": lambda im: encoded(ImageEnhance.Contrast(im).enhance(1.1), quality=85),
}


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("change", sorted(CHANGES))
def test_the_same_picture_changed_slightly_hashes_within_near(seed, change):
    image = picture(seed)
    original = perceptual_hash_of(encoded(image, quality=92))
    changed = perceptual_hash_of(CHANGES[change](image))
    assert hamming(original, changed) <= NEAR


def test_different_pictures_hash_far_apart():
    hashes = [perceptual_hash_of(encoded(picture(seed), quality=92)) for seed in range(12)]
    distances = [hamming(a, b) for i, a in enumerate(hashes) for b in hashes[i + 1 :]]
    assert min(distances) > NEAR
    assert all(0 <= h < 2**64 for h in hashes)


def test_the_exif_orientation_is_applied_before_hashing():
    """A phone keeps a portrait photo's pixels sideways with an orientation tag: it is the upright picture
    that is compared, so an editor's rotated copy of the same photo is near and the raw pixels are not."""
    upright = picture(5)
    sideways = upright.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[ORIENTATION] = 6  # "rotate 90° clockwise to display"
    tagged = encoded(sideways, quality=92, exif=exif)
    untagged = encoded(sideways, quality=92)
    reference = perceptual_hash_of(encoded(upright, quality=92))
    assert hamming(perceptual_hash_of(tagged), reference) <= NEAR
    assert hamming(perceptual_hash_of(untagged), reference) > NEAR


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "empty_file"),
        (b"not a photo at all", "not_an_image"),
        (b"\xff\xd8\xff\xe0" + b"\0" * 64, "not_an_image"),
    ],
    ids=["empty", "text", "truncated-jpeg"],
)
def test_a_bad_image_is_refused_as_an_upload_would_be(data, code):
    with pytest.raises(InvalidInput) as refused:
        perceptual_hash_of(data)
    assert refused.value.code == code


# --- stored hashes ---------------------------------------------------------------------------------------


def stored_rows(db) -> dict[str, str]:
    with db.sessions() as s:
        return {row.sha256: row.phash for row in s.scalars(select(models.PhotoHash))}


def photo_bytes(seed: int) -> bytes:
    return encoded(picture(seed), quality=88)


def test_recording_a_hash_keeps_one_row_of_16_hex_digits(db):
    data = photo_bytes(1)
    sha = hashlib.sha256(data).hexdigest()
    with transaction(db.sessions) as s:
        first = record_photo_hash(s, sha, data)
        again = record_photo_hash(s, sha, data)
    with transaction(db.sessions) as s:  # in another transaction too: the row is there already
        assert record_photo_hash(s, sha, data) == first
    assert first == again == perceptual_hash_of(data)
    rows = stored_rows(db)
    assert rows == {sha: f"{first:016x}"}
    assert len(rows[sha]) == 16 and rows[sha] == rows[sha].lower()
    with db.sessions() as s:
        created = s.scalars(select(models.PhotoHash.created_at)).one()
    assert abs(created - datetime.now(UTC)) < timedelta(minutes=5)


def test_photo_hashes_reads_stored_backfills_old_photos_and_skips_missing_ones(db, tmp_path):
    evidence_dir = tmp_path / "evidence"
    recorded, old = photo_bytes(1), encoded(picture(2), "PNG")
    recorded_sha = store_evidence(recorded, evidence_dir=evidence_dir).sha256
    old_sha = store_evidence(old, evidence_dir=evidence_dir).sha256  # uploaded before hashes were kept
    with transaction(db.sessions) as s:
        record_photo_hash(s, recorded_sha, recorded)
    # A file damaged on disk after it was stored, a hash with no file, and a name that is no hash at all.
    damaged = photo_bytes(3)
    damaged_sha = store_evidence(damaged, evidence_dir=evidence_dir).sha256
    path = original_path(evidence_dir, damaged_sha)
    assert path is not None and path.suffix == ".jpg"
    path.write_bytes(damaged[:300])
    missing_sha = hashlib.sha256(b"never uploaded").hexdigest()
    asked = [recorded_sha, old_sha, damaged_sha, missing_sha, "../../etc/passwd", old_sha]

    with transaction(db.sessions) as s:
        hashes = photo_hashes(s, evidence_dir, asked)
    assert hashes == {recorded_sha: perceptual_hash_of(recorded), old_sha: perceptual_hash_of(old)}
    assert set(stored_rows(db)) == {recorded_sha, old_sha}  # the old photo's hash is now kept

    (evidence_dir / old_sha[:2] / f"{old_sha}.png").unlink()
    with transaction(db.sessions) as s:  # read back from its row, not its file
        assert photo_hashes(s, evidence_dir, iter([old_sha])) == {old_sha: perceptual_hash_of(old)}
        assert photo_hashes(s, evidence_dir, []) == {}


@pytest.fixture
def selects(db) -> Iterator[list[str]]:
    """The SELECTs on photo_hashes sent to the database while the test runs."""
    seen: list[str] = []

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "photo_hashes" in statement:
            seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", before)
    yield seen
    event.remove(db.engine, "before_cursor_execute", before)


def test_stored_hashes_are_read_in_one_query_per_500(db, tmp_path, selects):
    shas = [hashlib.sha256(str(n).encode()).hexdigest() for n in range(1200)]
    with transaction(db.sessions) as s:
        for n, sha in enumerate(shas[:3]):
            record_photo_hash(s, sha, photo_bytes(n))
    selects.clear()
    with transaction(db.sessions) as s:
        found = photo_hashes(s, tmp_path, shas[:3])
    assert set(found) == set(shas[:3]) and len(selects) == 1
    selects.clear()
    with transaction(db.sessions) as s:
        found = photo_hashes(s, tmp_path, shas)
    assert set(found) == set(shas[:3]) and len(selects) == 3  # 500 + 500 + 200


# --- uploaded through a farmer's form --------------------------------------------------------------------


@pytest.fixture
def farmer_f1(db, registry) -> Principal:
    seed_parties(db.sessions, registry)
    with db.sessions() as s:
        farmer = Repository(s).farmer_by_code("F-0001")
        assert farmer is not None
        return Principal(Role.FARMER, farmer.code, farmer.authority_id, farmer_id=farmer.id)


def planting(lot: str, photo: bytes) -> dict[str, Any]:
    return {
        "kind": "planting",
        "event_id": str(uuid.uuid4()),
        "event_time": datetime.now(UTC) - timedelta(days=30),
        "place": {"id": "PLOT-T-01"},
        "lot_code": lot,
        "plot_id": "PLOT-T-01",
        "crop": "organic-veg",
        "area_rai": "1",
        "evidence": [hashlib.sha256(photo).hexdigest()],
    }


def test_a_photo_uploaded_with_a_farmers_form_has_its_hash_kept(db, farmer_f1, tmp_path):
    photo = photo_bytes(7)
    data = planting("T-PHOTO-0001", photo)
    with transaction(db.sessions) as s:
        record_step(s, farmer_f1, data, id_base="https://trace.test", evidence_dir=tmp_path, photo=photo)
    sha = hashlib.sha256(photo).hexdigest()
    assert stored_rows(db) == {sha: f"{perceptual_hash_of(photo):016x}"}
    with transaction(db.sessions) as s:  # the same form sent again: the same event, still one row
        record_step(s, farmer_f1, data, id_base="https://trace.test", evidence_dir=tmp_path, photo=photo)
    assert list(stored_rows(db)) == [sha]


def test_a_refused_photo_leaves_neither_event_nor_hash(db, farmer_f1, tmp_path):
    bad = b"\xff\xd8\xff\xe0 a photo cut short"
    with transaction(db.sessions) as s:
        with pytest.raises(InvalidInput):
            record_step(
                s,
                farmer_f1,
                planting("T-PHOTO-0002", bad),
                id_base="https://trace.test",
                evidence_dir=tmp_path,
                photo=bad,
            )
    assert stored_rows(db) == {}
    with db.sessions() as s:
        assert (
            s.scalar(select(func.count()).select_from(models.Lot).where(models.Lot.code == "T-PHOTO-0002"))
            == 0
        )
