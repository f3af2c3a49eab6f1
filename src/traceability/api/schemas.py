"""Request and response bodies of the JSON API: separate from the ORM models, named …Create / …Read."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from traceability.domain.states import Role


class FarmerTokenCreate(BaseModel):
    """A farmer signs in with the phone number they were enrolled with and their PIN."""

    model_config = ConfigDict(extra="forbid")

    phone: str = Field(min_length=9, max_length=20, examples=["0811111111"])
    pin: str = Field(min_length=4, max_length=12)


class OfficerTokenCreate(BaseModel):
    """An อปท. officer signs in with username and password."""

    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class TokenRead(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="seconds")
    role: Role
    party: str = Field(description="the pseudonymous party code events carry as their actor")


class EventRead(BaseModel):
    event_id: str
    hash: str = Field(description="the CBV 2.0 event hash as 0x hex (what is anchored)")
    kind: str
    lots: list[str]
    created: bool = Field(description="false when this answers a retry of an event already stored")


class BatchRead(BaseModel):
    events: list[EventRead]


class AnchorRead(BaseModel):
    status: Literal["pending", "anchored"]
    block_number: int | None = None
    tx_hash: str | None = None
    block_time: datetime | None = None


class LotEventRead(BaseModel):
    event_id: str
    kind: str
    event_time: datetime
    hash: str
    anchor: AnchorRead


class ProductRead(BaseModel):
    th: str
    en: str


class LotRead(BaseModel):
    lot_code: str
    product: ProductRead
    gtin: str | None
    status: Literal["empty", "pending", "anchored"]
    events: list[LotEventRead]


class ErrorBody(BaseModel):
    code: str
    message: str
    items: list[dict[str, Any]] | None = None


class ErrorRead(BaseModel):
    error: ErrorBody
