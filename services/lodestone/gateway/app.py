"""The composition root: ``create_app(settings)`` builds everything a gateway process
needs; nothing is built at import time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from lodestone.bootstrap.settings import Settings
from lodestone.gateway import metrics, problems
from lodestone.gateway.limits import BodyLimit
from lodestone.gateway.routes import (
    anomalies,
    audit,
    batches,
    declarations,
    events,
    graphs,
    health,
    inventory,
    licences,
    page,
    registry,
    reports,
    streams,
    trades,
)
from lodestone.gateway.runtime import Runtime

VERSION = "0.1.0"
DESCRIPTION = """
Chain of custody for rare-earth magnets. Supply-chain actors report each step (mining,
separation, metal, alloy, magnets, sales, exports, receipts) as an immutable event;
anyone allowed can trace a batch upstream to its mines, downstream to its end clients,
and read the share of each mine in each of its elements.

Authenticate with `Authorization: Bearer <key>`. Errors are RFC 9457 problem+json naming
the `field` and the `rule` broken. Masses are exact decimals in kilograms.
"""


def create_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = Runtime(settings)
        app.state.runtime = runtime
        runtime.start()
        try:
            yield
        finally:
            runtime.stop()

    # The docs pages are served from the package's own Swagger UI and ReDoc files: a
    # browser opening /docs fetches nothing from a CDN. A deployment may keep them, and
    # the OpenAPI document, unpublished.
    app: FastAPI = (
        FastAPIOffline(
            title="Lodestone", version=VERSION, description=DESCRIPTION, lifespan=lifespan
        )
        if settings.public_docs
        else FastAPI(
            title="Lodestone",
            version=VERSION,
            description=DESCRIPTION,
            lifespan=lifespan,
            docs_url=None,
            redoc_url=None,
            openapi_url=None,
        )
    )
    # Refused before the body is read whole: 413 problem+json naming the limit.
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    problems.install(app)
    # Outermost but for Starlette's error handler: every answer's latency, refusals too.
    app.add_middleware(metrics.RequestMetrics)
    app.include_router(health.router)
    app.include_router(metrics.router)  # /metrics: who may read it is a setting
    app.include_router(registry.router)
    app.include_router(events.router)
    app.include_router(batches.router)
    app.include_router(audit.router)
    app.include_router(reports.router)
    app.include_router(trades.router)
    app.include_router(inventory.router)
    app.include_router(licences.router)
    app.include_router(anomalies.router)
    app.include_router(streams.router)
    app.include_router(graphs.router)
    app.include_router(page.router)  # the page and its scripts: public files, no data
    app.include_router(declarations.router)
    return app
