"""Prometheus instruments every Lodestone process records into (prometheus-client).

The instruments live at module level, in the client library's default registry, because
that is what its multiprocess mode reads (several gateway workers behind one port write
one file each under ``PROMETHEUS_MULTIPROC_DIR``, and any worker's ``/metrics`` adds them
up) and because the write path must be able to record without being handed an object:
``observe_group_commit`` is one call from wherever commands are committed together.

This module imports only the standard library and the client library, so that every
layer (the ledger included) may call it without depending on anything above it. Labels
are closed sets fixed by the code: route templates, event kinds, projection names, status
codes. Never an id, a lot code or a company name: a metric is no place for what redaction
hides (tests/api/test_metrics.py reads the whole exposition for them).

Positions and lags are not instruments: they are read when scraped, by the collectors of
``lodestone.streaming.metrics``, so they are never stale.
"""

from __future__ import annotations

import os
from collections import Counter as Tally
from collections.abc import Iterable

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client import multiprocess as _multiprocess

#: Request latency (seconds): from the request's arrival to the last byte of its answer;
#: for an event stream, to its headers (a stream lasts as long as its subscriber).
REQUEST_SECONDS = Histogram(
    "lodestone_http_request_duration_seconds",
    "Gateway request latency by method, route template and status code",
    ["method", "route", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5, 5.0, 10.0),
)
EVENTS_RECORDED = Counter(
    "lodestone_events_recorded",
    "Events the gateway recorded in the ledger, by kind (idempotent replays not counted)",
    ["kind"],
)
GROUP_COMMIT_COMMANDS = Histogram(
    "lodestone_group_commit_commands",
    "Commands saved together in one transaction of the write path",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 10_000),
)
STREAM_SUBSCRIBERS = Gauge(
    "lodestone_stream_subscribers",
    "Server-Sent Events subscribers connected, by projection",
    ["projection"],
    multiprocess_mode="livesum",
)
EVENTS_APPLIED = Counter(
    "lodestone_projector_events_applied",
    "Events a projector of this process applied to its read model, by projection",
    ["projection"],
)

#: Where unmatched requests are counted: never under their raw path.
UNMATCHED_ROUTE = "unmatched"


def observe_group_commit(commands: int) -> None:
    """The write path calls this once per transaction that saved ``commands`` commands
    together (of one request or of several)."""
    GROUP_COMMIT_COMMANDS.observe(commands)


def record_events(kinds: Iterable[str]) -> None:
    """Count recorded events by kind (the event names the ledger answers with)."""
    for kind, count in Tally(kinds).items():
        EVENTS_RECORDED.labels(kind=kind).inc(count)


def applied(projection: str, events: int) -> None:
    """A projector applied ``events`` events to ``projection``'s read model."""
    if events:
        EVENTS_APPLIED.labels(projection=projection).inc(events)


def multiprocess() -> bool:
    """Whether the client library was started in multiprocess mode (the environment
    variable is read by it when it is first imported, so it must be set before the
    process starts)."""
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


def process_registry() -> CollectorRegistry:
    """What a gateway exposes of the instruments above: in multiprocess mode the sum
    over every worker's files, else this process's default registry (with the client
    library's process and platform collectors)."""
    if not multiprocess():
        return REGISTRY
    registry = CollectorRegistry()
    _multiprocess.MultiProcessCollector(registry)
    return registry
