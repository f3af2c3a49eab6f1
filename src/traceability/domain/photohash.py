"""Perceptual hashes of evidence photos: near-identical pictures get hashes a few bits apart.

A photo re-sent under another lot is rarely byte-identical (a screenshot, a re-compression, a crop or a
brightness change), so its SHA-256 differs while what it shows does not. The DCT hash of ImageHash (pHash:
the 8×8 lowest frequencies of a 32×32 greyscale copy, each bit above or below their median) survives those
changes; two hashes whose Hamming distance is at most :data:`NEAR` are treated as the same picture.
"""

from __future__ import annotations

from typing import Final

import imagehash
from PIL import Image

NEAR: Final = 8
"""Bits (of 64) two hashes may differ by and still be the same picture."""


def phash64(image: Image.Image) -> int:
    """The 64-bit DCT perceptual hash of ``image`` as an unsigned integer."""
    bits = imagehash.phash(image, hash_size=8).hash.flatten()
    value = 0
    for bit in bits:
        value = (value << 1) | int(bool(bit))
    return value


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()
