"""HTTP content negotiation for the public resolvers: which media type a client's ``Accept`` prefers."""

from __future__ import annotations

from collections.abc import Sequence


def _ranges(accept: str) -> list[tuple[str, float]]:
    """``(media range, q)`` pairs of an ``Accept`` header; a malformed q counts as 0 (not acceptable)."""
    ranges: list[tuple[str, float]] = []
    for part in accept.split(","):
        fields = [f.strip() for f in part.split(";")]
        if not fields[0]:
            continue
        q = 1.0
        for param in fields[1:]:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        ranges.append((fields[0].lower(), q))
    return ranges


def quality(accept: str, media: str) -> float:
    """The quality ``accept`` gives ``media``: the most specific matching range decides (RFC 9110 §12.5.1)."""
    ranges = _ranges(accept)
    for candidate in (media, media.split("/")[0] + "/*", "*/*"):
        found = [q for m, q in ranges if m == candidate]
        if found:
            return max(found)
    return 0.0


def preferred(accept: str, offers: Sequence[str]) -> str:
    """The offer the client prefers; a tie, or nothing acceptable, goes to the earliest offer."""
    scores = [(quality(accept, offer), -i, offer) for i, offer in enumerate(offers)]
    best = max(scores)
    return best[2] if best[0] > 0 else offers[0]
