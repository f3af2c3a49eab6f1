"""Photo evidence (a harvest, a grading): checked by decoding the image, stored by content hash.

What a farmer uploads is checked by what it *is*, never by its name or declared type: Pillow must recognise it
as JPEG, PNG or WebP, its declared dimensions must be sane *before* any pixel is decoded (an "image bomb"
of a few kilobytes can claim a billion pixels), and it must then decode in full. The original bytes are kept,
named by their SHA-256 — the hash that goes into the event (``evidence``), so anyone holding the photo can
check it is the one recorded. What is *served* is a re-encoded copy without any metadata: EXIF (GPS position,
phone model, time), XMP and ICC are dropped, so a public page never reveals where a farmer lives.

Layout under ``evidence_dir``: ``ab/abcdef….jpg`` (original) and ``ab/abcdef….served.jpg`` (served copy).
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from PIL import Image, ImageOps, UnidentifiedImageError

from traceability.errors import InvalidInput, NotFound

MAX_BYTES: Final = 10 * 1024 * 1024
MAX_PIXELS: Final = 40_000_000  # a 40-megapixel phone camera; more is refused before decoding
MAX_SIDE: Final = 12_000
SERVED_MAX_SIDE: Final = 1600  # what a provenance page needs; keeps served copies light on 3G
FORMATS: Final = {"JPEG": ("jpg", "image/jpeg"), "PNG": ("png", "image/png"), "WEBP": ("webp", "image/webp")}


@dataclass(frozen=True)
class StoredEvidence:
    sha256: str
    media_type: str
    width: int
    height: int
    size: int
    created: bool


def _refuse(code: str, message: str) -> InvalidInput:
    return InvalidInput(message, code=code)


def inspect_image(data: bytes) -> tuple[str, int, int]:
    """``(format, width, height)`` of an acceptable image; InvalidInput (422) with a stable code otherwise."""
    if not data:
        raise _refuse("empty_file", "the photo is empty")
    if len(data) > MAX_BYTES:
        raise _refuse("photo_too_large", f"a photo may be at most {MAX_BYTES // (1024 * 1024)} MB")
    try:
        with Image.open(io.BytesIO(data)) as probe:  # reads the header only
            fmt, (width, height) = probe.format or "", probe.size
    except Image.DecompressionBombError:
        raise _refuse("image_too_many_pixels", "the photo claims far too many pixels") from None
    except (UnidentifiedImageError, OSError, ValueError):
        raise _refuse("not_an_image", "the file is not a JPEG, PNG or WebP photo") from None
    if fmt not in FORMATS:
        raise _refuse("not_an_image", "the file is not a JPEG, PNG or WebP photo")
    if width <= 0 or height <= 0 or width > MAX_SIDE or height > MAX_SIDE or width * height > MAX_PIXELS:
        raise _refuse("image_too_many_pixels", f"the photo is {width}×{height} pixels: too large to accept")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                image.load()  # decode every pixel: a truncated or corrupt file fails here
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _refuse("not_an_image", "the photo is damaged and cannot be read") from None
    return fmt, width, height


def _served_copy(data: bytes) -> bytes:
    """A JPEG re-encoded from the pixels alone: upright, at most SERVED_MAX_SIDE, no metadata at all."""
    with Image.open(io.BytesIO(data)) as image:
        upright = ImageOps.exif_transpose(image)
        upright = upright.convert("RGB")
        upright.thumbnail((SERVED_MAX_SIDE, SERVED_MAX_SIDE))
        clean = Image.new("RGB", upright.size)
        clean.paste(upright)
        out = io.BytesIO()
        clean.save(out, format="JPEG", quality=82, optimize=True)
        return out.getvalue()


def _paths(evidence_dir: Path, sha256: str, ext: str) -> tuple[Path, Path]:
    folder = evidence_dir / sha256[:2]
    return folder / f"{sha256}.{ext}", folder / f"{sha256}.served.jpg"


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def store_evidence(data: bytes, *, evidence_dir: Path) -> StoredEvidence:
    """Check and keep a photo; its SHA-256 is what an event's ``evidence`` names. Storing it twice is a
    no-op."""
    fmt, width, height = inspect_image(data)
    ext, media_type = FORMATS[fmt]
    sha256 = hashlib.sha256(data).hexdigest()
    original, served = _paths(evidence_dir, sha256, ext)
    created = not original.exists()
    if created:
        _write_atomically(original, data)
    if not served.exists():
        _write_atomically(served, _served_copy(data))
    return StoredEvidence(sha256, media_type, width, height, len(data), created)


def original_path(evidence_dir: Path, sha256: str) -> Path | None:
    """Where the original of a stored photo is, or None: for reading a photo back by the hash an event names
    (its perceptual hash for photos stored before there was a table of them). Only a well-formed hash ever
    becomes a path."""
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        return None
    for ext, _media_type in FORMATS.values():
        original, _served = _paths(evidence_dir, sha256, ext)
        if original.is_file():
            return original
    return None


def served_evidence(sha256: str, *, evidence_dir: Path) -> bytes:
    """The public copy of a photo (metadata stripped), by its hash; NotFound if there is none."""
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise NotFound("no such evidence")  # never a path built from unchecked input
    served = evidence_dir / sha256[:2] / f"{sha256}.served.jpg"
    if not served.is_file():
        raise NotFound("no such evidence")
    return served.read_bytes()
