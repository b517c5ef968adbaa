"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from service import health
from service.assignments.router import router as assignments_router
from service.auth import repository as auth_repo
from service.auth.middleware import Authenticate, TokenCache
from service.auth.openapi import document as document_auth
from service.auth.router import router as auth_router
from service.bodylimit import BodyLimit
from service.catalog.router import router as catalog_router
from service.dashboard.router import router as dashboard_router
from service.datasets.router import router as datasets_router
from service.errors import install_handlers
from service.events.router import router as events_router
from service.events.streams import Streams
from service.gradchecks.router import router as gradchecks_router
from service.jobs.router import router as jobs_router
from service.metrics.router import router as metrics_router
from service.plots.renderers import Renderers
from service.plots.router import router as plots_router
from service.sweeps.router import router as sweeps_router
from service.telemetry.router import router as telemetry_router
from service.telemetry.service import JobGauges
from service.web import install as install_web_surface
from service.web.nul import RefuseNul
from store.db import Database
from store.settings import Settings
from store.telemetry import RequestMetrics

DESCRIPTION = """\
Experiment tracking for learning, and checking, how gradient descent works.

Post a training-job spec — a model from the classic exercises, a dataset, an optimizer and
its hyperparameters — and a background worker trains it with hand-derived NumPy gradients,
recording every iteration's loss and checking the analytic gradients against finite
differences (and PyTorch autograd, when installed). Open **POST /v1/jobs** and pick one of
the seed exercises from *Examples* to try it.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    """A gradlab API on ``settings`` (read from the environment when not given)."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await app.state.streams.aclose()
        app.state.renderers.close()
        await app.state.db.aclose()
        app.state.db.dispose()

    app = FastAPI(
        title="gradlab",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        # gradlab exports no OpenTelemetry; off, FastAPI skips its per-request provider checks.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    app.state.db = Database(settings.database_url, settings)  # connects on first use
    app.state.streams = Streams(settings, app.state.db)
    app.state.renderers = Renderers(settings)
    app.state.job_gauges = JobGauges(app.state.db)
    app.state.request_metrics = RequestMetrics() if settings.metrics else None
    app.state.tokens = TokenCache(lambda digest: auth_repo.caller_by_hash(app.state.db, digest))
    install_handlers(app)
    # innermost: after authentication, before any route
    app.add_middleware(RefuseNul, templates=lambda: app.openapi()["paths"])
    app.add_middleware(
        BodyLimit,
        max_bytes=settings.max_body_bytes,
        large_bytes=settings.large_body_bytes,
        large_slots=settings.max_large_bodies,
    )
    # Added after the body limit, so it runs first: a request without a valid token reads no body.
    app.add_middleware(Authenticate, required=settings.auth == "required", cache=app.state.tokens)
    install_web_surface(app, settings)  # outside the body limit: hosts, cross-site, headers, log
    app.include_router(jobs_router)  # first: the router scans in order, and it takes the most
    app.include_router(health.router)
    app.include_router(auth_router)
    app.include_router(datasets_router)
    app.include_router(catalog_router)
    app.include_router(metrics_router)
    app.include_router(events_router)
    app.include_router(sweeps_router)
    app.include_router(gradchecks_router)
    app.include_router(assignments_router)
    app.include_router(plots_router)
    app.include_router(dashboard_router)
    document_auth(app, required=settings.auth == "required")
    if settings.metrics:
        app.include_router(telemetry_router)
    return app
