"""Typed dependencies for routes: ``RuntimeDep`` (the resources built in the app's lifespan), ``SessionDep``
(the request's unit of work), ``CurrentPrincipal`` (who the bearer token speaks for) and ``ImporterDep`` (the
importer an API key speaks for). Tests swap any of them with ``app.dependency_overrides``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Annotated, TypeVar

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from traceability.api.ratelimit import limiter
from traceability.services.apikeys import Importer, authenticate_api_key, needs_touch, record_use
from traceability.services.auth import Principal, authenticate
from traceability.services.runtime import DbSession, Runtime


async def get_runtime(request: Request) -> Runtime:
    # async: a sync dependency would cost every request a hop to a worker thread and back just to read this.
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def get_session(runtime: RuntimeDep) -> Iterator[DbSession]:
    """One session per request, committed once when the route returns and rolled back if it raises: the only
    commit for a request (services add and flush)."""
    with runtime.transaction() as session:
        yield session


# scope="function": the commit happens before the response is sent, so a failed commit is an error response,
# never a success the client saw for work that was then rolled back.
SessionDep = Annotated[DbSession, Depends(get_session, scope="function")]


_bearer = HTTPBearer(auto_error=False, description="A token from POST /api/v1/auth/token")


def get_principal(
    session: SessionDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    """The farmer or officer the request's bearer token speaks for (401 with WWW-Authenticate otherwise)."""
    return authenticate(session, credentials.credentials if credentials else None)


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


async def bearer_token(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str | None:
    """The request's bearer token as sent, not yet checked: for a route that authenticates inside its own
    unit of work (:func:`in_unit_of_work`). Same security scheme in the OpenAPI document as
    ``CurrentPrincipal``."""
    return credentials.credentials if credentials else None


BearerToken = Annotated[str | None, Depends(bearer_token)]

_T = TypeVar("_T")


async def in_unit_of_work(runtime: Runtime, work: Callable[[DbSession], _T]) -> _T:
    """Run ``work(session)`` and commit, all in one call on one worker thread; roll back if it raises. The
    work writes: on SQLite such units of work take turns (:meth:`Runtime.write_transaction`).

    For the hottest write route: ``SessionDep`` plus ``CurrentPrincipal`` plus the route's own work cost four
    hops between the event loop and the thread pool (open the session, authenticate, work, commit), each a
    wake-up of another thread competing for the one interpreter lock: about an eighth of a single-event
    request's instructions (callgrind). The guarantees are ``SessionDep``'s: one commit, before the response
    is sent, so a failed commit is an error response. Off the event loop, as every query is: a request
    waiting for a row lock must not stop the loop (the lock holder's commit happens on its own thread,
    needing nothing else)."""

    def run() -> _T:
        with runtime.write_transaction() as session:
            return work(session)

    return await run_in_threadpool(run)


def client_address(request: Request) -> str:
    """The socket peer's address. ``X-Forwarded-For`` is deliberately not trusted: anyone can write it, and
    the sign-in throttle keys on this address (behind a proxy, run uvicorn with --forwarded-allow-ips so the
    socket address it reports is the proxy's view of the client)."""
    return request.client.host if request.client else "unknown"


_api_key = HTTPBearer(
    auto_error=False,
    scheme_name="ImporterApiKey",
    bearerFormat="ttk_…",
    description="An importer's API key, made by the operator with `trace apikey create NAME`: send "
    "`Authorization: Bearer ttk_…`. Sign-in tokens of farmers and officers are refused (403).",
)


def importer_burst(per_minute: int) -> int:
    """How many requests a key may make at once: a tenth of a minute's worth, at least 10, at most the rate
    itself (so a tiny rate in a test is a tiny burst)."""
    return max(1, min(per_minute, max(10, per_minute // 10)))


def get_importer(
    request: Request,
    runtime: RuntimeDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_api_key)],
) -> Importer:
    """The importer the request's API key speaks for: 401 for a missing, unknown or revoked key, 403 for a
    farmer's or officer's sign-in token, 429 (``Retry-After``) when the key is over
    ``TRACE_IMPORTER_RATE_PER_MIN``.

    Its own short unit of work, not the request's: the once-a-minute ``last_used_at`` write must not hold
    the key's row locked for as long as a verification takes (every other request of that key would wait)."""
    with runtime.transaction() as session:
        importer = authenticate_api_key(session, credentials.credentials if credentials else None)
    rate = runtime.settings.importer_rate_per_min
    limiter(request, "importer", rate, importer_burst(rate)).check(f"key:{importer.key_id}")
    now = datetime.now(UTC)
    if needs_touch(importer, now):
        with runtime.transaction() as session:
            record_use(session, importer.key_id, now=now)
    return importer


ImporterDep = Annotated[Importer, Depends(get_importer)]
