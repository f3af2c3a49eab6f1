"""Request rate limits: a token bucket per key (a client address, an API key), kept in the process.

Each ``trace serve`` process keeps its own buckets, so behind a load balancer with N processes a client gets
at most N times the rate; put a shared limiter in the proxy if that matters. Buckets are bounded: the least
recently used are forgotten first, which only ever lets a forgotten client start with a full bucket.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from fastapi import Request

from traceability.errors import RateLimited

MAX_BUCKETS = 50_000


@dataclass
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    """``per_minute`` requests a minute on average, up to ``burst`` at once, per key."""

    def __init__(
        self,
        per_minute: float,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_buckets: int = MAX_BUCKETS,
    ) -> None:
        if per_minute <= 0 or burst < 1:
            raise ValueError("a rate limit needs a positive rate and a burst of at least 1")
        self.rate = per_minute / 60.0
        self.burst = burst
        self._clock = clock
        self._max = max_buckets
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self._lock = threading.Lock()

    def wait_s(self, key: str) -> float:
        """Take one token for ``key``: 0 when allowed, else the seconds until one is available (nothing
        taken)."""
        now = self._clock()
        with self._lock:
            bucket = self._buckets.pop(key, None)
            if bucket is None:
                bucket = _Bucket(float(self.burst), now)
            bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.at) * self.rate)
            bucket.at = now
            self._buckets[key] = bucket
            while len(self._buckets) > self._max:
                self._buckets.popitem(last=False)
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return 0.0
            return (1.0 - bucket.tokens) / self.rate

    def check(self, key: str, what: str = "requests") -> None:
        """Raise :class:`RateLimited` (HTTP 429 with Retry-After) when ``key`` is over its rate."""
        wait = self.wait_s(key)
        if wait > 0:
            raise RateLimited(
                f"too many {what}: try again in {math.ceil(wait)} s", retry_after=max(1, math.ceil(wait))
            )


def limiter(request: Request, name: str, per_minute: float, burst: int) -> RateLimiter:
    """The app's limiter called ``name``, made on first use (one per app, so tests get fresh ones)."""
    state = request.app.state
    limiters: dict[str, RateLimiter] | None = getattr(state, "rate_limiters", None)
    if limiters is None:
        limiters = {}
        state.rate_limiters = limiters
    found = limiters.get(name)
    if found is None:
        found = limiters.setdefault(name, RateLimiter(per_minute, burst))
    return found
