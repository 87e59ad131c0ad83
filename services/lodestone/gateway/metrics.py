"""The gateway's Prometheus metrics: request latency by route template, and ``GET
/metrics`` (text format) with the instruments of ``lodestone.metrics`` and how far this
process's embedded projectors and relay have come.

Who may read ``/metrics`` (``LODESTONE_METRICS_PUBLIC``, default false, like
``LODESTONE_PUBLIC_DOCS``): anyone when public; else the bootstrap admin key, an admin's
key, or ``LODESTONE_METRICS_TOKEN`` (a bearer token for a Prometheus server, good for
nothing else). The figures are the ledger's activity (how many events of each kind, how
busy each route is): not for every key holder. No label ever holds a request's own
values: requests are counted under the template of the route that matched
(``/v1/batches/{actor}/{lot}``), or ``unmatched``.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lodestone import metrics
from lodestone.bootstrap.settings import Settings
from lodestone.domain.access import Role
from lodestone.gateway.deps import RuntimeDep, principal_of
from lodestone.gateway.runtime import Runtime
from lodestone.ledger.application import Outcome
from lodestone.projections.registry import REGISTRY
from lodestone.streaming.metrics import (
    LogProjectionCollector,
    RelayCollector,
    StoreCollector,
    registry,
)

router = APIRouter()


class RequestMetrics:
    """ASGI middleware: each HTTP request's latency into ``lodestone_http_request_
    duration_seconds`` under its method, route template and status."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets if the app fails before answering
        observed = False

        def observe() -> None:
            nonlocal observed
            if not observed:
                observed = True
                metrics.REQUEST_SECONDS.labels(
                    method=_method(scope), route=_template(scope), status=str(status)
                ).observe(time.perf_counter() - started)

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = dict(message.get("headers") or [])
                if headers.get(b"content-type", b"").startswith(b"text/event-stream"):
                    observe()  # a stream's latency is its answer's start: it lasts for hours
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                observe()

        try:
            await self.app(scope, receive, sending)
        finally:
            observe()


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def _method(scope: Scope) -> str:
    method = str(scope.get("method", ""))
    return method if method in _METHODS else "other"


def _template(scope: Scope) -> str:
    """The path template of the route the router matched (set by Starlette in the
    scope), never the requested path."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) and path else metrics.UNMATCHED_ROUTE


def recorded(outcome: Outcome) -> None:
    """Count the events a write recorded (a replayed answer recorded nothing)."""
    if not outcome.replayed:
        metrics.record_events(str(result.get("event", "unknown")) for result in outcome.results)


async def subscribed(projection: str, events: AsyncIterator[Any]) -> AsyncIterator[Any]:
    """``events`` of a stream of ``projection``, counted as one subscriber while it
    runs."""
    name = projection if projection in REGISTRY.names() else "other"
    gauge = metrics.STREAM_SUBSCRIBERS.labels(projection=name)
    gauge.inc()
    try:
        async for event in events:
            yield event
    finally:
        gauge.dec()


class RuntimeCollector(Collector):
    """What this gateway process runs: the store's position, its embedded projectors'
    positions and lags, and with Kafka its embedded relay's."""

    def __init__(self, runtime: Runtime) -> None:
        recorder = runtime.ledger.recorder
        settings = runtime.settings
        self._collectors: list[Collector] = [
            StoreCollector(recorder),
            LogProjectionCollector(recorder, runtime.projectors),
        ]
        if settings.kafka_bootstrap_servers and settings.embedded_relay:
            self._collectors.append(RelayCollector(recorder, runtime.positions))

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        for collector in self._collectors:
            yield from collector.collect()


def _hash(value: str) -> bytes:
    return hashlib.sha256(value.encode()).digest()


def _presented(authorization: str | None, api_key: str | None) -> str | None:
    if api_key:
        return api_key
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    return None


def _is_metrics_token(settings: Settings, presented: str | None) -> bool:
    token = settings.metrics_token
    if token is None or presented is None:
        return False
    return hmac.compare_digest(_hash(presented), _hash(token.get_secret_value()))


@router.get("/metrics", include_in_schema=False)
def scrape(
    request: Request,
    runtime: RuntimeDep,
    authorization: Annotated[str | None, Header()] = None,
    x_api_key: Annotated[str | None, Header()] = None,
) -> Response:
    """Prometheus's text exposition format."""
    settings = runtime.settings
    if not settings.metrics_public and not _is_metrics_token(
        settings, _presented(authorization, x_api_key)
    ):
        principal = principal_of(runtime, request, authorization, x_api_key)
        if principal.role is not Role.ADMIN:
            raise HTTPException(
                403, f"role {principal.role.value} may not read the metrics (admin may)"
            )
    collected = registry([RuntimeCollector(runtime)], base=metrics.process_registry())
    return Response(generate_latest(collected), media_type=CONTENT_TYPE_LATEST)
