"""A process serving only the live streams (``lodestone streams``): ``GET
/v1/streams/{projection}`` from the same settings as the gateway, so that delivering to
many subscribers and ingesting do not share one interpreter lock.

It writes nothing: no projector, relay, change-topic publisher or checkpoint runs here
(the gateway, ``lodestone project`` and ``lodestone relay`` do those); it reads the
read models' change logs and checks keys against the ledger. It only opens read models
of this release's version: opening one of another version would empty it, so until the
gateway (or ``lodestone rebuild``) has upgraded them beside the live ones, it refuses
to start."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from lodestone.bootstrap.settings import Settings
from lodestone.bootstrap.stores import stored_version
from lodestone.gateway import problems
from lodestone.gateway.app import VERSION
from lodestone.gateway.routes import streams
from lodestone.gateway.runtime import Runtime
from lodestone.projections.registry import REGISTRY


class OlderReadModel(RuntimeError):
    """A read model is stored at another version than this release's."""


def check_versions(settings: Settings) -> None:
    """Refuse read models of another version (see the module's docstring)."""
    for entry in REGISTRY:
        stored = stored_version(settings, entry)
        if stored is not None and stored != entry.version:
            raise OlderReadModel(
                f"read model {entry.name} is stored at version {stored}, this release reads "
                f"version {entry.version}: start the gateway of this release (it upgrades "
                "beside the live model) or run `lodestone rebuild` first"
            )


def reading_only(settings: Settings) -> Settings:
    """The settings with every writing part of a gateway switched off."""
    return settings.model_copy(
        update={"embedded_projector": False, "embedded_relay": False, "publish_changes": False}
    )


def create_streams_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        check_versions(settings)
        # Not started: its threads (projectors, relay, publishers, checkpoints) are the
        # gateway's; the shared stream readers start on first use.
        runtime = Runtime(reading_only(settings))
        app.state.runtime = runtime
        try:
            yield
        finally:
            runtime.stop()

    app = FastAPI(
        title="Lodestone streams",
        version=VERSION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    problems.install(app)
    app.include_router(streams.router)
    return app
