"""The answer to a request whose database failed (:mod:`traceability.services.database_errors`): JSON for the
API and the operations endpoints, a short page in the visitor's language for everything a browser shows."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from traceability.errors import DatabaseUnavailable, StorageFull, TraceabilityError
from traceability.web.negotiation import quality
from traceability.web.pages import render

# Paths whose clients read JSON whatever they send in Accept.
_JSON_PATHS = ("/api/", "/readyz", "/healthz", "/metrics", "/openapi.json")


def wants_page(request: Request) -> bool:
    """A browser's request (a page path, ``Accept`` taking HTML at least as gladly as JSON), as opposed to an
    API client's (an EPCIS client asking ``/lot/{lot}`` for ``application/ld+json`` gets JSON)."""
    if request.url.path.startswith(_JSON_PATHS):
        return False
    accept = request.headers.get("accept", "*/*")
    html = quality(accept, "text/html")
    return html > 0 and html >= quality(accept, "application/json")


def database_error_response(request: Request, error: TraceabilityError) -> Response:
    """``error`` with its status and headers: ``{"error": {"code", "message"}}``, or the page in Thai
    (default) or English (``?lang=en``)."""
    if not wants_page(request):
        return JSONResponse(error.to_json(), status_code=error.status_code, headers=error.headers)
    retry_after = error.retry_after if isinstance(error, DatabaseUnavailable) else 60
    response = render(
        request,
        "database_unavailable.html",
        request.query_params.get("lang") or "th",
        {
            "retry_after": retry_after,
            "storage_full": isinstance(error, StorageFull),
            "switch_url": request.url.path,
        },
        status_code=error.status_code,
    )
    response.headers.update(error.headers)
    return response
