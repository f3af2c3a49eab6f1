"""Typed dependencies for routes: ``RuntimeDep`` (the resources built in the app's lifespan), ``SessionDep``
(the request's unit of work) and ``CurrentPrincipal`` (who the bearer token speaks for). Tests swap any
of them with ``app.dependency_overrides``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from traceability.services.auth import Principal, authenticate
from traceability.services.runtime import DbSession, Runtime


def get_runtime(request: Request) -> Runtime:
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


def client_address(request: Request) -> str:
    """The socket peer's address. ``X-Forwarded-For`` is deliberately not trusted: anyone can write it, and
    the sign-in throttle keys on this address (behind a proxy, run uvicorn with --forwarded-allow-ips so the
    socket address it reports is the proxy's view of the client)."""
    return request.client.host if request.client else "unknown"
