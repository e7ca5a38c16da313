"""The hub's one wiring place: settings, database, store, routes and error handling."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import PlainTextResponse, Response
from pymongo.errors import ConnectionFailure
from starlette.exceptions import HTTPException

from fhir_profiles.pack import pack_of
from hub.access.persons import Recent
from hub.access.view import AccessControl, scope_of
from hub.audit.middleware import AuditMiddleware
from hub.audit.trail import AuditTrail
from hub.auth.admin import router as admin_router
from hub.auth.deps import require_role
from hub.auth.roles import Role
from hub.auth.routes import router as auth_router
from hub.auth.service import Authority
from hub.core.clock import Clock
from hub.fhir.http import error_response, json_response
from hub.fhir.outcome import (
    BadRequest,
    HubError,
    Issue,
    MethodNotAllowed,
    NotFound,
    Unavailable,
    operation_outcome,
)
from hub.fhir.router import router as fhir_router
from hub.metrics import Metrics
from hub.middleware import MetricsMiddleware, TrailingSlashMiddleware
from hub.reporting.counters import Counters
from hub.reporting.coverage import Registry
from hub.reporting.dashboard import router as dashboard_router
from hub.reporting.measures import router as measures_router
from hub.reporting.roadmap import milestones
from hub.reporting.routes import reports as reports_router
from hub.reporting.routes import router as quality_router
from hub.search import layout as search_layout
from hub.search import values as search_values
from hub.search.extract import keys as search_keys
from hub.settings import Settings
from hub.store.mongo import Mongo
from hub.store.resources import ResourceStore, instant, now

log = logging.getLogger("ehrhub")


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the hub's ASGI application."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if not settings.mongodb_uri:
            raise RuntimeError(
                "No database: set EHRHUB_MONGODB_URI or start the hub with `ehrhub serve`"
            )
        mongo = Mongo(settings.mongodb_uri, settings.database, settings.database_timeout_seconds)
        await mongo.require_transactions()
        await mongo.ensure_indexes()
        app.state.mongo = mongo
        app.state.store = ResourceStore(mongo, search_keys, app.state.clock)
        app.state.auth = await Authority.start(mongo.db, settings)
        app.state.audit = AuditTrail(mongo.audit)
        app.state.counters = Counters(
            mongo, app.state.clock, settings.national_id_system, settings.reports_cache_seconds
        )
        app.state.access = AccessControl(
            app.state.store, settings, app.state.clock, app.state.recent
        )
        app.state.registry = Registry(app.state.store, settings.facility_system)
        await search_layout.bring_up_to_date(app.state.store)
        try:
            yield
        finally:
            await mongo.close()

    app = FastAPI(
        title="EHR Hub",
        summary="National FHIR R4 interoperability hub",
        lifespan=lifespan,
        redirect_slashes=False,
    )
    app.state.settings = settings
    # The one clock of every "now" and "today" (tests set it to cross a day on purpose).
    app.state.clock = Clock(settings.zone)
    search_values.use_zone(settings.zone)
    # Read at once: a roadmap file that cannot be read stops the hub before it serves.
    app.state.pack = pack_of(settings.country)
    app.state.milestones = milestones(app.state.pack, settings.roadmap_file)
    app.state.scope_of = scope_of
    app.state.recent = Recent(settings.consent_cache_seconds)
    app.state.started = instant(now())
    app.state.metrics = Metrics()
    # Before the FHIR routes, whose /fhir/{type}/{id} would take /fhir/.well-known/....
    app.include_router(auth_router)
    app.include_router(admin_router)
    app.include_router(quality_router)
    app.include_router(reports_router)
    app.include_router(dashboard_router)
    # Before the FHIR routes too: GET /fhir/Measure and /fhir/MeasureReport are computed.
    app.include_router(measures_router)
    app.include_router(fhir_router)
    _add_operational_routes(app)
    _add_error_handlers(app)
    # Innermost: every /fhir request's AuditEvent is stored before its response leaves.
    app.add_middleware(AuditMiddleware)
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    app.add_middleware(TrailingSlashMiddleware)
    return app


def _add_operational_routes(app: FastAPI) -> None:
    @app.get("/healthz", tags=["operations"])
    async def healthz() -> dict[str, str]:
        """Answer while the process is alive."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"])
    async def readyz(request: Request) -> Response:
        """Answer 200 when the database answers, 503 otherwise."""
        try:
            await request.app.state.mongo.ping()
        except Exception as error:  # any failure to reach the database means not ready
            return json_response({"status": "unavailable", "database": str(error)[:200]}, 503)
        return json_response({"status": "ready"})

    # Traffic by route and status: no personal data, but only the hub operator's business.
    operator = [Depends(require_role(Role.ADMIN, doing="read the hub's metrics"))]

    @app.get("/metrics", tags=["operations"], dependencies=operator)
    async def metrics(request: Request) -> PlainTextResponse:
        """Return Prometheus metrics (an admin's bearer token)."""
        return PlainTextResponse(request.app.state.metrics.exposition())


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(HubError)
    async def hub_error(request: Request, error: HubError) -> Response:
        return error_response(error)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> Response:
        return error_response(BadRequest(f"Invalid request: {error.errors()[:3]}"))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> Response:
        if error.status_code == 405:
            return error_response(
                MethodNotAllowed(f"{request.method} is not supported on {request.url.path}")
            )
        if error.status_code == 404:
            return error_response(NotFound(f"Nothing is served at {request.url.path}"))
        outcome = operation_outcome([Issue("processing", str(error.detail))])
        return json_response(outcome, error.status_code)

    @app.exception_handler(ConnectionFailure)
    async def database_unavailable(request: Request, error: ConnectionFailure) -> Response:
        log.warning("database unavailable on %s %s: %s", request.method, request.url.path, error)
        return error_response(
            Unavailable("The database is not reachable right now; try again shortly")
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> Response:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        outcome = operation_outcome([Issue("exception", "Internal error; it has been logged")])
        return json_response(outcome, 500)
