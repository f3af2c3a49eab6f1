"""The web application: ``create_app()`` builds resources in its lifespan, never at import."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from anyio import to_thread
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException

from traceability.api import auth as auth_api
from traceability.api import certifications as certifications_api
from traceability.api import events as events_api
from traceability.api import importer as importer_api
from traceability.api import lots as lots_api
from traceability.api.deps import RuntimeDep, SessionDep
from traceability.api.limits import BodyLimit
from traceability.api.observability import RequestObservability, UnhandledErrors
from traceability.api.timing import ServerTiming
from traceability.config import Settings, get_settings
from traceability.errors import TraceabilityError
from traceability.services.database_errors import DATABASE_ERRORS, as_client_error
from traceability.services.health import batch_gauges, outbox_gauges, readiness
from traceability.services.ledger import list_lots
from traceability.services.observability import register_counters
from traceability.services.provenance import PageCache, VerifyCache
from traceability.services.runtime import Runtime
from traceability.web import enrolment as enrolment_pages
from traceability.web import farmer as farmer_pages
from traceability.web import farmer_forms, farmer_moves, static_files
from traceability.web import identifiers as identifier_pages
from traceability.web import labels as label_sheets
from traceability.web import officer as officer_pages
from traceability.web import provenance as provenance_pages
from traceability.web import qr as qr_codes
from traceability.web.i18n import pick_lang
from traceability.web.pages import render
from traceability.web.security_headers import SecurityHeaders
from traceability.web.unavailable import database_error_response


def create_app(settings: Settings | None = None, runtime: Runtime | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        rt = runtime or Runtime(settings or get_settings())
        app.state.runtime = rt
        # Sync routes run in AnyIO's thread pool (40 threads by default). A thread per pooled database
        # connection is enough: more only wait for a connection, or make the pool open and close overflow
        # connections, while contending for the one interpreter lock on a 2-core machine.
        to_thread.current_default_thread_limiter().total_tokens = rt.settings.db_pool_size
        if runtime is None:
            # What start-up built (modules, templates, catalogs, the engine: ~300,000 objects) lives as long
            # as the process: out of the collector's sight, a full collection no longer walks it every few
            # seconds under load (13–21 % of a recording server's CPU, measured with py-spy).
            gc.collect()
            gc.freeze()
        try:
            yield
        finally:
            if runtime is None:
                gc.unfreeze()  # a test's app: what it built may be collected again once it is closed
                rt.close()

    app = FastAPI(
        title="Thai community produce traceability",
        description="GS1 EPCIS 2.0 events with CBV 2.0 hashes, anchored on an EVM chain in Merkle batches.",
        version="0.1.0",
        lifespan=lifespan,
        # FastAPI's built-in OpenTelemetry reads the environment on every request (about 7 % of a cached
        # page's CPU) and exports nowhere here: /metrics (prometheus-client) is this service's telemetry.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    metrics = CollectorRegistry()
    pending_gauge = Gauge("trace_outbox_pending", "Events waiting to be anchored", registry=metrics)
    lag_gauge = Gauge(
        "trace_anchor_lag_seconds", "Age of the oldest event waiting to be anchored", registry=metrics
    )
    batches_gauge = Gauge("trace_batches", "Merkle batches by status", ["status"], registry=metrics)
    gas_gauge = Gauge("trace_anchor_gas_used", "Gas used by all anchored batches", registry=metrics)
    register_counters(metrics)  # events recorded, verification outcomes (services.observability)

    @app.exception_handler(TraceabilityError)
    async def _domain_error(request: Request, exc: TraceabilityError) -> JSONResponse:
        return JSONResponse(exc.to_json(), status_code=exc.status_code, headers=exc.headers)

    async def _database_error(request: Request, exc: Exception) -> Response:
        # The database down, locked or full: 503/507 with nothing of the request stored, never a 500.
        return database_error_response(request, as_client_error(exc))

    for database_error in DATABASE_ERRORS:
        app.add_exception_handler(database_error, _database_error)

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()[:10]
        )
        return JSONResponse(
            {"error": {"code": "invalid_input", "message": problems or "invalid request"}}, status_code=422
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSONResponse(
            {"error": {"code": code, "message": str(exc.detail)}},
            status_code=exc.status_code,
            headers=exc.headers,
        )

    # Per app (so per process): rendered provenance pages and the importer API's verdicts.
    app.state.page_cache = PageCache()
    app.state.verify_cache = VerifyCache()
    # Innermost of ours: a bug's 500 is answered here, so it still passes the middleware added after it.
    app.add_middleware(UnhandledErrors)
    app.add_middleware(BodyLimit)
    app.add_middleware(ServerTiming)
    # Outermost of ours: every response, a 404, a 413 or the API docs, leaves with the security headers.
    app.add_middleware(SecurityHeaders)
    # Outermost: a request id for every log line and response, and latency by route template (/metrics).
    app.add_middleware(RequestObservability, registry=metrics)
    # Paths are matched router by router, in this order: the public pages and the importer API, which
    # take most of the traffic, go first (no path of theirs is also another router's).
    app.include_router(provenance_pages.router)
    app.include_router(importer_api.router)
    app.include_router(auth_api.router)
    app.include_router(events_api.router)
    app.include_router(lots_api.router)
    app.include_router(certifications_api.router)
    app.include_router(farmer_pages.router)
    app.include_router(farmer_forms.router)
    app.include_router(farmer_moves.router)
    app.include_router(officer_pages.router)
    app.include_router(enrolment_pages.router)
    app.include_router(static_files.router)
    app.include_router(qr_codes.router)
    app.include_router(identifier_pages.router)
    app.include_router(label_sheets.router)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def home(request: Request, session: SessionDep, lang: str | None = None) -> Response:
        language = pick_lang(lang)
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
        return render(request, "home.html", language, {"lots": lots})

    @app.get("/healthz", responses={200: {"content": {"application/json": {"example": {"status": "ok"}}}}})
    def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get(
        "/readyz",
        responses={
            200: {
                "description": "ready",
                "content": {
                    "application/json": {
                        "example": {
                            "status": "ready",
                            "checks": {
                                "database": "ok",
                                "chain": "ok",
                                "pending_events": 3,
                                "anchor_lag_s": 4.2,
                                "signer": {"address": "0xf39F…2266", "balance_wei": 9_870_000_000_000_000},
                                "low_balance": False,
                            },
                        }
                    }
                },
            },
            503: {"description": "the database or the chain does not answer"},
        },
    )
    def readyz(session: SessionDep, runtime: RuntimeDep) -> JSONResponse:
        """Readiness: the database and the chain answer (503 if not), and how far anchoring lags."""
        report = readiness(session, runtime)
        return JSONResponse(report.to_json(), status_code=200 if report.ready else 503)

    @app.get("/metrics", include_in_schema=False)
    def prometheus(session: SessionDep) -> Response:
        gauges = outbox_gauges(session)
        pending_gauge.set(gauges.pending_events)
        lag_gauge.set(gauges.anchor_lag_s)
        batches = batch_gauges(session)
        for status, count in batches.by_status.items():
            batches_gauge.labels(status).set(count)
        gas_gauge.set(batches.gas_used)
        return Response(generate_latest(metrics), media_type=CONTENT_TYPE_LATEST)

    return app
