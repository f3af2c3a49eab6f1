"""The project's exceptions. Every one carries the HTTP status and a stable machine-readable code.

TraceabilityError                  (500, "internal")
├── InvalidInput                   (422, "invalid_input")
│   ├── InvalidEvent               (422, "invalid_event")
│   └── BatchRejected              (422/403/409, "invalid_batch") names every refused item
├── Unauthorized                   (401, "unauthorized")      sends WWW-Authenticate: Bearer
├── PayloadTooLarge                (413, "payload_too_large")
├── RateLimited                    (429, "rate_limited")      sends Retry-After (seconds)
├── NotFound                       (404, "not_found")
├── Conflict                       (409, "conflict")
│   └── ChainConflict              (409, "chain_conflict")   prev link no longer the lot's head
├── Forbidden                      (403, "forbidden")
├── ConfigurationError             (500, "configuration")    refused settings (e.g. dev key off 31337)
├── DatabaseUnavailable            (503, "database_unavailable"/"database_busy") sends Retry-After
├── StorageFull                    (507, "storage_full")      the database's disk (or size limit) is full
└── ChainError                     (503, "chain")            keeps tx_hash and contract address
    ├── ChainUnavailable           (503, "chain_unavailable") RPC unreachable
    └── TransactionFailed          (502, "tx_failed")        reverted or dropped
"""

from __future__ import annotations

from typing import Any


class TraceabilityError(Exception):
    status_code = 500
    code = "internal"

    def __init__(self, message: str, *, status_code: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status_code is not None:
            self.status_code = status_code
        if code is not None:
            self.code = code

    @property
    def headers(self) -> dict[str, str]:
        """HTTP headers the response must carry (e.g. ``Retry-After``)."""
        return {}

    def to_json(self) -> dict[str, dict[str, Any]]:
        return {"error": {"code": self.code, "message": self.message}}


class InvalidInput(TraceabilityError):
    status_code = 422
    code = "invalid_input"


class InvalidEvent(InvalidInput):
    code = "invalid_event"


class BatchRejected(InvalidInput):
    """A batch of which nothing was stored, naming each refused item by its index in the batch."""

    code = "invalid_batch"

    def __init__(self, message: str, items: list[dict[str, Any]], *, status_code: int = 422) -> None:
        super().__init__(message, status_code=status_code)
        self.items = items

    def to_json(self) -> dict[str, dict[str, Any]]:
        return {"error": {"code": self.code, "message": self.message, "items": self.items}}


class Unauthorized(TraceabilityError):
    status_code = 401
    code = "unauthorized"

    @property
    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": "Bearer"}


class PayloadTooLarge(TraceabilityError):
    status_code = 413
    code = "payload_too_large"


class RateLimited(TraceabilityError):
    status_code = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class NotFound(TraceabilityError):
    status_code = 404
    code = "not_found"


class Conflict(TraceabilityError):
    status_code = 409
    code = "conflict"


class ChainConflict(Conflict):
    code = "chain_conflict"


class Forbidden(TraceabilityError):
    status_code = 403
    code = "forbidden"


class ConfigurationError(TraceabilityError):
    status_code = 500
    code = "configuration"


class ChainError(TraceabilityError):
    status_code = 503
    code = "chain"

    def __init__(
        self,
        message: str,
        *,
        tx_hash: str | None = None,
        contract: str | None = None,
        status_code: int | None = None,
        code: str | None = None,
    ) -> None:
        detail = message
        if tx_hash:
            detail += f" (tx {tx_hash})"
        super().__init__(detail, status_code=status_code, code=code)
        self.tx_hash = tx_hash
        self.contract = contract


class ChainUnavailable(ChainError):
    code = "chain_unavailable"


class TransactionFailed(ChainError):
    status_code = 502
    code = "tx_failed"


class DatabaseUnavailable(TraceabilityError):
    """The database did not answer (down, unreachable, or locked past the busy timeout). The request's work
    was rolled back, unless the connection was lost during the commit itself (then it may be stored): either
    way the same request sent again is stored once (events are idempotent by ``event_id``)."""

    status_code = 503
    code = "database_unavailable"

    def __init__(self, message: str, *, code: str | None = None, retry_after: int = 5) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class StorageFull(TraceabilityError):
    """The database refused to grow (disk or size limit full): the request's transaction was rolled back."""

    status_code = 507
    code = "storage_full"
