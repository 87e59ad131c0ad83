"""The composition root: ``create_app(settings)`` builds everything a gateway process
needs; nothing is built at import time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from lodestone.bootstrap.settings import Settings
from lodestone.gateway import metrics, problems
from lodestone.gateway.deps import ReadAfter
from lodestone.gateway.limits import BodyLimit
from lodestone.gateway.routes import (
    anomalies,
    audit,
    batches,
    declarations,
    epcis,
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

Read-your-writes: every write answers the store position that holds it in the
`Lodestone-Position` header. A read of a read model sent with `?wait_for=<position>` (or
the header `If-Position: <position>`) answers once every read model has applied the store
that far; if they have not within 5 s it answers 503 with `Retry-After` (retry it), and a
position no write has reached is refused (422, rule `position-recorded`).
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
    # The reads of read models accept ``wait_for``/``If-Position`` (read-your-writes).
    app.include_router(epcis.contexts)  # the extension's JSON-LD context: public vocabulary
    for read in (batches, epcis, audit, reports, trades, inventory, licences, anomalies):
        app.include_router(read.router, dependencies=[ReadAfter], responses=problems.WAIT_ERRORS)
    app.include_router(streams.router)
    app.include_router(graphs.router, dependencies=[ReadAfter], responses=problems.WAIT_ERRORS)
    app.include_router(page.router)  # the page and its scripts: public files, no data
    app.include_router(
        declarations.router, dependencies=[ReadAfter], responses=problems.WAIT_ERRORS
    )
    return app
