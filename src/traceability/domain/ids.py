"""Identifier formats in one place: 0x hex and bytes, and the CBV 2.0 Event Hash ID.

An event's hash is known in two forms: the CBV 2.0 Event Hash ID ``ni:///sha-256;<64 hex>?ver=CBV2.0`` (inside
EPCIS, e.g. in ``tt:prev``) and ``0x<64 hex>`` (in the database, proof bundles and on chain as ``bytes32``).
"""

from __future__ import annotations

import re

HASH_PREFIX = "ni:///sha-256;"
HASH_SUFFIX = "?ver=CBV2.0"
_HEX64 = re.compile(r"[0-9a-f]{64}")
_NI_LENGTH = len(HASH_PREFIX) + 64 + len(HASH_SUFFIX)


def to_hex(value: bytes) -> str:
    """``0x`` and lower-case hex of ``value``."""
    return "0x" + bytes(value).hex()


def from_hex(text: str) -> bytes:
    """The bytes of ``0x``-prefixed (or bare) hex; ValueError otherwise."""
    return bytes.fromhex(text[2:] if text[:2] in ("0x", "0X") else text)


def bytes32(value: bytes | str) -> bytes:
    """32 bytes from bytes or hex; ValueError for any other length."""
    raw = bytes(value) if isinstance(value, bytes) else from_hex(value)
    if len(raw) != 32:
        raise ValueError(f"expected 32 bytes, got {len(raw)}")
    return raw


def hash_hex(ni: str) -> str:
    """``0x<64 hex>`` for a CBV 2.0 Event Hash ID (the form anchored on chain)."""
    digest = ni[len(HASH_PREFIX) : -len(HASH_SUFFIX)]
    if (
        len(ni) == _NI_LENGTH
        and ni.startswith(HASH_PREFIX)
        and ni.endswith(HASH_SUFFIX)
        and _HEX64.fullmatch(digest)
    ):
        return "0x" + digest  # as event_hash writes it: nothing to strip, lower or decode
    return "0x" + hash_bytes(ni).hex()


def hash_bytes(ni_or_hex: str) -> bytes:
    """The 32 digest bytes of an Event Hash ID, or of its ``0x`` hex form."""
    text = ni_or_hex.strip()
    if text.startswith(HASH_PREFIX):
        digest = text[len(HASH_PREFIX) :].split("?", 1)[0]
        if text[len(HASH_PREFIX) + len(digest) :] not in ("", HASH_SUFFIX):
            raise ValueError(f"not a CBV 2.0 event hash: {ni_or_hex!r}")
    elif text[:2] in ("0x", "0X"):
        digest = text[2:]
    else:
        raise ValueError(f"not an event hash: {ni_or_hex!r}")
    digest = digest.lower()
    if not _HEX64.fullmatch(digest):
        raise ValueError(f"not a SHA-256 digest: {ni_or_hex!r}")
    return bytes.fromhex(digest)


def hash_ni(hex_or_bytes: str | bytes) -> str:
    """The Event Hash ID for a digest given as ``0x`` hex or 32 bytes (inverse of ``hash_hex``)."""
    digest = hex_or_bytes if isinstance(hex_or_bytes, bytes) else hash_bytes(hex_or_bytes)
    if len(digest) != 32:
        raise ValueError("an event hash digest is 32 bytes")
    return HASH_PREFIX + digest.hex() + HASH_SUFFIX
