"""Photo evidence: accepted by what the bytes are, stored by content hash, served without location data."""

from __future__ import annotations

import hashlib
import io
import struct
import zlib

import pytest
from PIL import Image

from traceability.errors import InvalidInput, NotFound
from traceability.services.evidence import served_evidence, store_evidence

GPS_IFD = 0x8825


def jpeg_with_gps(size: tuple[int, int] = (640, 480)) -> bytes:
    image = Image.new("RGB", size, (40, 120, 40))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[GPS_IFD] = {1: "N", 2: (15.0, 6.0, 39.0), 3: "E", 4: (103.0, 36.0, 59.0)}
    out = io.BytesIO()
    image.save(out, format="JPEG", exif=exif)
    return out.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width`` x ``height`` pixels (an image bomb's shape)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0"))
        + chunk(b"IEND", b"")
    )


def test_a_photo_is_stored_by_its_hash_and_served_without_location(tmp_path):
    data = jpeg_with_gps()
    stored = store_evidence(data, evidence_dir=tmp_path)
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert (stored.media_type, stored.width, stored.height, stored.created) == ("image/jpeg", 640, 480, True)
    assert Image.open(io.BytesIO(data)).getexif().get_ifd(GPS_IFD)  # the original had a position
    served = served_evidence(stored.sha256, evidence_dir=tmp_path)
    with Image.open(io.BytesIO(served)) as image:
        assert image.format == "JPEG" and image.size == (640, 480)
        assert not image.getexif() and "exif" not in image.info and "xmp" not in image.info
    again = store_evidence(data, evidence_dir=tmp_path)
    assert again.sha256 == stored.sha256 and not again.created
    assert len(list(tmp_path.rglob("*.jpg"))) == 2  # the original and its served copy, once


def test_large_photos_are_served_small(tmp_path):
    image = Image.new("RGB", (4000, 3000), (200, 80, 20))
    out = io.BytesIO()
    image.save(out, format="PNG")
    stored = store_evidence(out.getvalue(), evidence_dir=tmp_path)
    assert stored.media_type == "image/png"
    with Image.open(io.BytesIO(served_evidence(stored.sha256, evidence_dir=tmp_path))) as served:
        assert max(served.size) == 1600


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "empty_file"),
        (b"this is a text file named harvest.jpg", "not_an_image"),
        (b"GIF89a" + b"\0" * 100, "not_an_image"),
        (png_claiming(60_000, 60_000), "image_too_many_pixels"),  # Pillow's own bomb limit
        (png_claiming(8_000, 8_000), "image_too_many_pixels"),  # 64 MP: above ours, below Pillow's
        (png_claiming(13_000, 10), "image_too_many_pixels"),  # a strip too long on one side
        (jpeg_with_gps()[:2000], "not_an_image"),  # truncated upload
        (b"\xff" * (10 * 1024 * 1024 + 1), "photo_too_large"),
    ],
)
def test_what_is_not_an_acceptable_photo_is_refused_and_nothing_is_stored(tmp_path, data, code):
    with pytest.raises(InvalidInput) as err:
        store_evidence(data, evidence_dir=tmp_path)
    assert err.value.code == code and err.value.status_code == 422
    assert list(tmp_path.iterdir()) == []


def test_served_evidence_never_builds_a_path_from_unchecked_input(tmp_path):
    for bad in ("../../etc/passwd", "a" * 63, "A" * 64, "0" * 64):
        with pytest.raises(NotFound):
            served_evidence(bad, evidence_dir=tmp_path)
