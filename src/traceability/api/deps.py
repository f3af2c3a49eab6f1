"""Typed dependencies for routes: ``RuntimeDep`` (the resources built in the app's lifespan) and
``SessionDep`` (the request's unit of work). Tests swap either with ``app.dependency_overrides``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request

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
