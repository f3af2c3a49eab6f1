"""Operability: structured JSON logs that never carry a secret, a request id per HTTP request, and the
process-wide counters behind ``/metrics`` (events recorded, verification outcomes).

Logs: :func:`configure_logging` puts one handler on the root logger, with :class:`JsonFormatter` (one JSON
object a line: time, level, logger, message, request_id inside a request, and the record's extra fields)
or the plain text format, and :class:`RedactFilter` on it, which masks whatever looks like a secret in
every record that reaches it: bearer tokens, ``pin``/``password``/``passphrase``/``key``/``token``/``secret``
fields, 32-byte hex strings (a private key looks like one; so do hashes, which keep their first 4 hex
digits to be told apart) and Thai phone numbers (only their last 3 digits kept).
"""

from __future__ import annotations

import collections
import json
import logging
import logging.config
import re
import sys
import time
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Literal

from prometheus_client import CollectorRegistry, Counter

from traceability.domain.events import EVENT_KINDS

# The id of the HTTP request being answered (set by api.observability's middleware), for every log line.
request_id: ContextVar[str | None] = ContextVar("trace_request_id", default=None)

REDACTED = "[REDACTED]"
_SECRET_WORD = r"(?:pin|password|passwd|passphrase|secret|key|token|authorization)s?"
# A field named like a secret (``anchor_key=…``, ``"pin": "…"``): its value goes, its name stays.
_SECRET_FIELD = re.compile(
    rf"""(?i)(?P<name>{_SECRET_WORD}["']?\s*[:=]\s*)(?P<value>"[^"]*"|'[^']*'|(?!\[REDACTED\])[^\s,;&"'}}\]]+)"""
)
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+(?!\[REDACTED\])[A-Za-z0-9._~+/=-]+")
_HEX32 = re.compile(r"\b0x([0-9a-fA-F]{4})[0-9a-fA-F]{60}\b")
# Thai numbers: 0 + 8 or 9 digits, or +66 / 0066 + 8 or 9 digits, optionally grouped with spaces or dashes.
_PHONE = re.compile(r"(?<![\w.+])(?:\+66|0066|0)(?:[ -]?\d){8,9}(?![\w.])")
_SECRET_KEY_NAME = re.compile(rf"(?i)^[\w-]*{_SECRET_WORD}$")


def _mask_phone(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    return "*" * (len(digits) - 3) + digits[-3:]


def redact(text: str) -> str:
    """``text`` with whatever looks like a secret masked (see the module's docstring)."""
    text = _BEARER.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
    text = _SECRET_FIELD.sub(lambda m: m.group("name") + REDACTED, text)
    text = _HEX32.sub(lambda m: f"0x{m.group(1)}…{REDACTED}", text)
    return _PHONE.sub(_mask_phone, text)


def _redact_value(name: str, value: Any) -> Any:
    if _SECRET_KEY_NAME.match(name):
        return REDACTED
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, int | float | bool) or value is None:
        return value
    return redact(repr(value))


# What every LogRecord has; anything else on a record came from ``extra=`` and is logged as a field.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


class RedactFilter(logging.Filter):
    """Masks secrets in a record's message (formatted with its args first) and its extra fields."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        for name in record.__dict__.keys() - _STANDARD:
            if not name.startswith("_"):
                setattr(record, name, _redact_value(name, record.__dict__[name]))
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC, ISO 8601), level, logger, message, request_id, extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        rid = request_id.get()
        if rid is not None:
            entry["request_id"] = rid
        for name in record.__dict__.keys() - _STANDARD:
            if not name.startswith("_") and name not in entry:
                entry[name] = record.__dict__[name]
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exc"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False, default=str)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def log_handler(fmt: Literal["json", "text"], stream: Any = None) -> logging.Handler:
    """A stream handler (stderr by default) in ``fmt``, with the redaction filter on it."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    handler.addFilter(RedactFilter())
    return handler


def logging_config(level: int, fmt: Literal["json", "text"]) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` of one root handler in ``fmt``, secrets masked. uvicorn applies it in
    each of its processes (``log_config=``), so its own lines (start-up, access log) go through it too."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"redact": {"()": f"{__name__}.RedactFilter"}},
        "formatters": {
            "json": {"()": f"{__name__}.JsonFormatter"},
            "text": {"format": TEXT_FORMAT},
        },
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "formatter": fmt,
                "filters": ["redact"],
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"handlers": ["default"], "level": logging.getLevelName(level)},
        # uvicorn's loggers: no handlers of their own, so their records reach the root's.
        "loggers": {
            name: {"handlers": [], "propagate": True}
            for name in ("uvicorn", "uvicorn.error", "uvicorn.access")
        },
    }


def configure_logging(level: int, fmt: Literal["json", "text"]) -> None:
    """The root logger's one handler, in ``fmt``, secrets masked. Like ``logging.basicConfig``, nothing is
    done when the root logger has a handler already (a host such as pytest configured logging)."""
    if not logging.getLogger().handlers:
        logging.config.dictConfig(logging_config(level, fmt))


# --- counters (process-wide; main.create_app registers them in its app's registry) -------------------------

# Label values are bounded: the event kinds of the domain, the three outcomes.
events_recorded = Counter(
    "trace_events_recorded", "Events recorded by this process (not retries)", ["kind"], registry=None
)
for _kind in EVENT_KINDS:
    events_recorded.labels(_kind)
OUTCOMES = ("verified", "warning", "failed")
verifications = Counter(
    "trace_verifications", "Verdicts computed by this process, by outcome", ["outcome"], registry=None
)
for _outcome in OUTCOMES:
    verifications.labels(_outcome)


def count_recorded(kinds: Iterable[str]) -> None:
    """Count recorded events: one increment a kind, whatever the batch's size."""
    for kind, n in collections.Counter(kinds).items():
        events_recorded.labels(kind if kind in EVENT_KINDS else "other").inc(n)


def count_verdict(outcome: str) -> None:
    verifications.labels(outcome if outcome in OUTCOMES else "other").inc()


def register_counters(registry: CollectorRegistry) -> None:
    registry.register(events_recorded)
    registry.register(verifications)


class BalanceWatch:
    """Logs a WARNING, at most once every ``every_s``, while the signer's balance is below ``min_wei``."""

    def __init__(
        self, balance: Callable[[], int], address: str, min_wei: int, every_s: float, log: logging.Logger
    ) -> None:
        self.balance = balance
        self.address = address
        self.min_wei = min_wei
        self.every_s = every_s
        self.log = log
        self._last = -float("inf")

    def __call__(self) -> None:
        now = time.monotonic()
        if now - self._last < self.every_s:
            return
        self._last = now
        try:
            wei = int(self.balance())
        except Exception as exc:  # the chain may be down: the anchoring loop reports that itself
            self.log.debug("balance of %s unknown: %s", self.address, type(exc).__name__)
            return
        if wei < self.min_wei:
            self.log.warning(
                "signer balance low: %s has %.6f ether, below %.6f: anchoring stalls when it runs out",
                self.address,
                wei / 10**18,
                self.min_wei / 10**18,
                extra={"balance_wei": wei, "min_balance_wei": self.min_wei},
            )
