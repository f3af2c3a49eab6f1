"""Request ids and request latency by route: a pure ASGI middleware (no buffering, a few microseconds a
request).

Each HTTP request gets an id: the client's ``X-Request-ID`` when it is a sane token (1–64 letters, digits,
``.``, ``_``, ``-``), else a new one. It is set in ``services.observability.request_id`` for every log line
written while the request is answered, and sent back in ``X-Request-ID``. The time to the response's start
is observed in ``trace_http_request_duration_seconds`` labelled with the route's template
(``/p/{lot_code}``, never the raw path, so the label set stays bounded) and the method.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from typing import Any

from prometheus_client import CollectorRegistry, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from traceability.services.observability import request_id

log = logging.getLogger("traceability.access")

_SANE_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
UNMATCHED = "unmatched"
# Any other method a client makes up is counted as OTHER: the label set stays bounded.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class RequestObservability:
    def __init__(self, app: ASGIApp, registry: CollectorRegistry) -> None:
        self.app = app
        self.latency = Histogram(
            "trace_http_request_duration_seconds",
            "Time to the response's start, by route template and method",
            ["route", "method"],
            buckets=BUCKETS,
            registry=registry,
        )
        # (route, method) -> the histogram's child: no label tuple looked up under its lock per request.
        self._children: dict[tuple[str, str], Any] = {}

    def _observe(self, route: str, method: str, seconds: float) -> None:
        child = self._children.get((route, method))
        if child is None:
            child = self._children[(route, method)] = self.latency.labels(route, method)
        child.observe(seconds)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        rid = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                text = value.decode("latin-1")
                if _SANE_ID.fullmatch(text):
                    rid = text
                break
        if rid is None:
            rid = secrets.token_hex(8)
        header = (b"x-request-id", rid.encode())
        method = scope["method"] if scope["method"] in _METHODS else "OTHER"
        started_response = False

        async def send_with_id(message: Message) -> None:
            nonlocal started_response
            if message["type"] == "http.response.start":
                started_response = True
                route = scope.get("route")
                template = getattr(route, "path", None) or UNMATCHED
                self._observe(template, method, time.perf_counter() - started)
                message = {**message, "headers": [*message.get("headers", []), header]}
                if log.isEnabledFor(logging.DEBUG):
                    status = message["status"]
                    log.debug("%s %s %s", method, template, status, extra={"status": status})
            await send(message)

        token = request_id.set(rid)
        try:
            await self.app(scope, receive, send_with_id)
        except BaseException:
            if not started_response:  # a 500 from the server's error handler, outside: counted here
                template = getattr(scope.get("route"), "path", None) or UNMATCHED
                self._observe(template, method, time.perf_counter() - started)
            raise
        finally:
            request_id.reset(token)


_SERVER_ERROR_JSON = (
    b'{"error":{"code":"internal_error",'
    b'"message":"the server failed to answer this request; it has been logged"}}'
)
_SERVER_ERROR_HTML = (
    '<!doctype html><html lang="th"><head><meta charset="utf-8">'
    '<meta name="viewport" content="width=device-width, initial-scale=1">'
    "<title>ขออภัย ระบบขัดข้อง</title></head>"
    "<body><h1>ขออภัย ระบบขัดข้อง</h1><p>โปรดลองใหม่อีกครั้งในภายหลัง</p>"
    '<p lang="en">Sorry, something went wrong on our side. Please try again later.</p></body></html>'
).encode()
errors_log = logging.getLogger("traceability.errors")


class UnhandledErrors:
    """A bug's 500 answered inside our middleware, so it leaves like every other response: with the security
    headers and the request id, counted by route, and logged once with its traceback and that request id.

    Starlette's own error middleware sits outside every middleware an app adds, so without this a bug's 500
    would skip them. JSON for the API (``{"error": {"code": "internal_error", ...}}``), a short page in Thai
    and English for the rest. A response already under way cannot be replaced: then the error goes on up.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_tracking(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, send_tracking)
        except Exception:
            template = getattr(scope.get("route"), "path", None) or UNMATCHED
            errors_log.exception("unhandled error answering %s %s", scope.get("method"), template)
            if started:
                raise
            api = scope.get("path", "").startswith("/api/")
            body, kind = (
                (_SERVER_ERROR_JSON, b"application/json")
                if api
                else (_SERVER_ERROR_HTML, b"text/html; charset=utf-8")
            )
            headers = [(b"content-type", kind), (b"content-length", str(len(body)).encode())]
            await send({"type": "http.response.start", "status": 500, "headers": headers})
            await send({"type": "http.response.body", "body": body})
