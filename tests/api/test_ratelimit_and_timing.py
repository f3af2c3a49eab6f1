"""The per-process rate limiter and the Server-Timing header."""

from __future__ import annotations

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from traceability.api.ratelimit import RateLimiter, limiter
from traceability.api.timing import ServerTiming
from traceability.errors import RateLimited


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_is_allowed_then_refused_until_tokens_come_back():
    clock = Clock()
    limit = RateLimiter(per_minute=60, burst=3, clock=clock)
    assert [limit.wait_s("a") for _ in range(3)] == [0, 0, 0]
    assert limit.wait_s("a") == pytest.approx(1.0)
    assert limit.wait_s("b") == 0  # keys are independent
    clock.now += 1.0
    assert limit.wait_s("a") == 0
    assert limit.wait_s("a") > 0


def test_a_refusal_takes_nothing_and_raises_429_with_retry_after():
    clock = Clock()
    limit = RateLimiter(per_minute=6, burst=1, clock=clock)
    limit.check("k")
    with pytest.raises(RateLimited) as refused:
        limit.check("k")
    assert refused.value.status_code == 429
    assert refused.value.headers == {"Retry-After": "10"}
    for _ in range(5):  # refused attempts do not push the next token further away
        with pytest.raises(RateLimited):
            limit.check("k")
    clock.now += 10
    limit.check("k")


def test_buckets_are_bounded_and_forget_the_least_recently_used():
    clock = Clock()
    limit = RateLimiter(per_minute=1, burst=1, clock=clock, max_buckets=2)
    limit.check("a")
    limit.check("b")
    limit.check("c")  # "a" is forgotten
    assert limit.wait_s("a") == 0
    assert limit.wait_s("c") > 0


def test_bad_limits_are_refused():
    with pytest.raises(ValueError):
        RateLimiter(per_minute=0, burst=1)
    with pytest.raises(ValueError):
        RateLimiter(per_minute=10, burst=0)


def test_each_app_has_its_own_named_limiters_and_every_response_says_how_long_it_took():
    def make() -> FastAPI:
        app = FastAPI()
        app.add_middleware(ServerTiming)

        @app.get("/x")
        def x(request: Request) -> dict[str, str]:
            limiter(request, "public", per_minute=60, burst=2).check("client")
            return {"ok": "yes"}

        @app.exception_handler(RateLimited)
        async def refused(request: Request, exc: RateLimited):  # type: ignore[no-untyped-def]
            from fastapi.responses import JSONResponse

            return JSONResponse(exc.to_json(), status_code=429, headers=exc.headers)

        return app

    first, second = TestClient(make()), TestClient(make())
    assert [first.get("/x").status_code for _ in range(3)] == [200, 200, 429]
    assert second.get("/x").status_code == 200
    timing = first.get("/x").headers["server-timing"]
    assert timing.startswith("app;dur=") and float(timing.split("=")[1]) >= 0
