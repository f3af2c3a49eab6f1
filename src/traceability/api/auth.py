"""``POST /api/v1/auth/token``: phone + PIN (farmer) or username + password (officer) → a bearer token."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends
from fastapi.responses import JSONResponse

from traceability.api.deps import SessionDep, client_address
from traceability.api.schemas import ErrorRead, FarmerTokenCreate, OfficerTokenCreate, TokenRead
from traceability.services.auth import sign_in_farmer, sign_in_officer

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])

_SIGN_IN_EXAMPLES: dict[str, Any] = {
    "farmer": {
        "summary": "a farmer: phone number and PIN",
        "value": {"phone": "0811111111", "pin": "1234"},
    },
    "officer": {
        "summary": "an อปท. officer: username and password",
        "value": {"username": "officer.nongsanit", "password": "correct-horse-battery"},
    },
}


@router.post(
    "/token",
    response_model=TokenRead,
    responses={
        400: {"model": ErrorRead, "description": "a body that cannot be read (not UTF-8)"},
        401: {"model": ErrorRead, "description": "wrong credentials"},
        403: {"model": ErrorRead, "description": "the officer account is pending or revoked"},
        429: {"model": ErrorRead, "description": "too many failed attempts; see Retry-After"},
    },
)
def create_token(
    body: Annotated[FarmerTokenCreate | OfficerTokenCreate, Body(openapi_examples=_SIGN_IN_EXAMPLES)],
    session: SessionDep,
    client: Annotated[str, Depends(client_address)],
) -> TokenRead | JSONResponse:
    """Sign in and get a bearer token (valid 12 hours) for `Authorization: Bearer <token>`.

    Farmers send `{"phone", "pin"}`, officers `{"username", "password"}`. Repeated failures lock the account
    and the client address for a time that grows with each further failure: the answer is then HTTP 429 with
    `Retry-After` in seconds. A pending or revoked officer cannot sign in (403)."""
    if isinstance(body, FarmerTokenCreate):
        outcome = sign_in_farmer(session, phone=body.phone, pin=body.pin, client=client)
    else:
        outcome = sign_in_officer(session, username=body.username, password=body.password, client=client)
    if outcome.error is not None:
        # Answered, not raised: the failed attempt must be committed for the throttle to count it.
        err = outcome.error
        return JSONResponse(err.to_json(), status_code=err.status_code, headers=err.headers)
    assert outcome.token is not None
    issued = outcome.token
    return TokenRead(
        access_token=issued.access_token,
        expires_in=issued.expires_in,
        role=issued.principal.role,
        party=issued.principal.party,
    )
