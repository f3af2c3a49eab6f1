"""The web application: ``create_app()`` builds resources in its lifespan, never at import."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.templating import Jinja2Templates
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest
from sqlalchemy import text
from starlette.exceptions import HTTPException as StarletteHTTPException

from traceability.config import Settings, get_settings
from traceability.errors import TraceabilityError
from traceability.services.ledger import list_lots
from traceability.services.runtime import Runtime
from traceability.store.database import transaction
from traceability.store.repository import Repository
from traceability.web.i18n import pick_lang, t

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "web" / "templates"))


def create_app(settings: Settings | None = None, runtime: Runtime | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        rt = runtime or Runtime(settings or get_settings())
        app.state.runtime = rt
        try:
            yield
        finally:
            if runtime is None:
                rt.close()

    app = FastAPI(
        title="Thai community produce traceability",
        description="GS1 EPCIS 2.0 events with CBV 2.0 hashes, anchored on an EVM chain in Merkle batches.",
        version="0.1.0",
        lifespan=lifespan,
    )
    metrics = CollectorRegistry()
    pending_gauge = Gauge("trace_outbox_pending", "Events waiting to be anchored", registry=metrics)
    lag_gauge = Gauge(
        "trace_anchor_lag_seconds", "Age of the oldest event waiting to be anchored", registry=metrics
    )

    @app.exception_handler(TraceabilityError)
    async def _domain_error(request: Request, exc: TraceabilityError) -> JSONResponse:
        return JSONResponse(exc.to_json(), status_code=exc.status_code)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSONResponse(
            {"error": {"code": code, "message": str(exc.detail)}}, status_code=exc.status_code
        )

    def rt(request: Request) -> Runtime:
        runtime_: Runtime = request.app.state.runtime
        return runtime_

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def home(request: Request, lang: str | None = None) -> Response:
        language = pick_lang(lang)
        with transaction(rt(request).sessions) as session:
            lots = [
                {
                    "code": lot.code,
                    "product": lot.product_th if language == "th" else lot.product_en,
                    "events": lot.events,
                    "anchored": lot.anchored,
                    "status": lot.status,
                }
                for lot in list_lots(session)
            ]
        return TEMPLATES.TemplateResponse(
            request,
            "home.html",
            {
                "lang": language,
                "other_lang": "en" if language == "th" else "th",
                "lots": lots,
                "t": lambda key: t(key, language),
            },
        )

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz")
    def readyz(request: Request) -> JSONResponse:
        """Readiness: the database answers, the chain answers, and how far anchoring lags."""
        runtime_ = rt(request)
        checks: dict[str, Any] = {}
        ready = True
        try:
            with transaction(runtime_.sessions) as session:
                session.execute(text("SELECT 1"))
                repo = Repository(session)
                oldest = repo.oldest_pending_at()
                checks["pending_events"] = repo.pending_count()
            checks["database"] = "ok"
            checks["anchor_lag_s"] = (
                0 if oldest is None else round((datetime.now(UTC) - oldest).total_seconds(), 1)
            )
        except Exception as exc:  # any driver error means "not ready", reported, never a 500
            ready, checks["database"] = False, f"error: {type(exc).__name__}"
        try:
            checks["chain"] = {"chain_id": runtime_.chain_id, "head": runtime_.w3.eth.block_number}
        except Exception as exc:  # unreachable node, same reasoning
            ready, checks["chain"] = False, f"error: {type(exc).__name__}"
        return JSONResponse(
            {"status": "ready" if ready else "not_ready", "checks": checks}, status_code=200 if ready else 503
        )

    @app.get("/metrics", include_in_schema=False)
    def prometheus(request: Request) -> Response:
        with transaction(rt(request).sessions) as session:
            repo = Repository(session)
            pending_gauge.set(repo.pending_count())
            oldest = repo.oldest_pending_at()
            lag_gauge.set(0 if oldest is None else (datetime.now(UTC) - oldest).total_seconds())
        return Response(generate_latest(metrics), media_type=CONTENT_TYPE_LATEST)

    return app
