"""Content negotiation of the public resolvers (RFC 9110 quality values)."""

from __future__ import annotations

import pytest

from traceability.web.negotiation import preferred, quality

OFFERS = ("text/html", "application/ld+json", "application/linkset+json")
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"


@pytest.mark.parametrize(
    ("accept", "media", "q"),
    [
        (BROWSER, "text/html", 1.0),
        (BROWSER, "application/ld+json", 0.8),  # only */* matches
        ("application/*;q=0.5, */*;q=0.1", "application/ld+json", 0.5),  # the most specific range decides
        ("text/html;q=0, */*", "text/html", 0.0),
        ("text/html;q=oops", "text/html", 0.0),  # a malformed q is not acceptable
        ("", "text/html", 0.0),
    ],
)
def test_quality_takes_the_most_specific_range(accept, media, q):
    assert quality(accept, media) == q


@pytest.mark.parametrize(
    ("accept", "chosen"),
    [
        (BROWSER, "text/html"),
        ("application/ld+json", "application/ld+json"),
        ("application/linkset+json, application/ld+json;q=0.5", "application/linkset+json"),
        ("*/*", "text/html"),  # a tie goes to the earliest offer
        ("image/png", "text/html"),  # nothing acceptable: the first offer
        ("", "text/html"),
    ],
)
def test_the_preferred_offer(accept, chosen):
    assert preferred(accept, OFFERS) == chosen
