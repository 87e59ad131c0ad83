"""How far the relay and the projectors have come, read when Prometheus scrapes, and the
small HTTP server the relay and projector processes expose it on.

Positions are read from where they are kept (the event store's notification log, the
relay's position row, each read model's tracking rows, Kafka's end offsets) at scrape
time, by collectors: a figure is never older than the scrape, and the loops that do the
work carry no metrics code. Every store read here is thread-safe (the stores lock their
connections), so the metrics server's thread may read them beside the loops.

Names:
- ``lodestone_store_position``: the newest notification id in the event store;
- ``lodestone_relay_position`` and ``lodestone_relay_lag_events`` (store - relayed);
- ``lodestone_projector_position{projection, source}`` and
  ``lodestone_projector_lag_events{projection, source}``: ``source`` is ``ledger`` for a
  projector following the notification log (lag: store - position), or
  ``<topic>:<partition>`` for one fed from Kafka (position: the next offset to read; lag:
  the partition's end offset - position). A Kafka-fed projector process reports its read
  model's lag on every partition of the topic (the positions are the read model's, shared
  by every process projecting it: take the max over processes);
- ``lodestone_kafka_end_offset{source}``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from eventsourcing.persistence import ApplicationRecorder
from prometheus_client import REGISTRY, CollectorRegistry, start_http_server
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from lodestone.ledger.stores import PositionStore
from lodestone.projections.base import View
from lodestone.streaming.feeds import NotificationLogFeed
from lodestone.streaming.kafka_feed import source_name
from lodestone.streaming.projector import Projector
from lodestone.streaming.relay import Relay

log = logging.getLogger(__name__)


def _head(recorder: ApplicationRecorder) -> int:
    return recorder.max_notification_id() or 0


class _Collector(Collector):
    def describe(self) -> list[Metric]:
        # Nothing to describe ahead: registering must not read the stores.
        return []

    def collect(self) -> Iterator[Metric]:
        raise NotImplementedError


class StoreCollector(_Collector):
    """The event store's newest position."""

    def __init__(self, recorder: ApplicationRecorder) -> None:
        self._recorder = recorder

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "lodestone_store_position",
            "Newest notification id in the event store",
            value=_head(self._recorder),
        )


class RelayCollector(_Collector):
    """The relay's position (the last notification acknowledged by Kafka) and how many
    recorded events it has still to publish."""

    def __init__(
        self, recorder: ApplicationRecorder, positions: PositionStore, name: str = Relay.name
    ) -> None:
        self._recorder = recorder
        self._positions = positions
        self._name = name

    def collect(self) -> Iterator[Metric]:
        position = self._positions.get(self._name)
        head = _head(self._recorder)
        yield GaugeMetricFamily(
            "lodestone_relay_position",
            "Last notification id the relay published and Kafka acknowledged",
            value=position,
        )
        yield GaugeMetricFamily(
            "lodestone_relay_lag_events",
            "Events recorded in the store and not yet acknowledged on Kafka",
            value=max(head - position, 0),
        )


def _projector_families() -> tuple[GaugeMetricFamily, GaugeMetricFamily]:
    labels = ["projection", "source"]
    return (
        GaugeMetricFamily(
            "lodestone_projector_position",
            "How far a read model has come on a source (notification id, or next offset)",
            labels=labels,
        ),
        GaugeMetricFamily(
            "lodestone_projector_lag_events",
            "Events on a source not yet applied to a read model",
            labels=labels,
        ),
    )


class LogProjectionCollector(_Collector):
    """Read models following the event store's notification log (the embedded
    default): each one's position and lag behind the store."""

    def __init__(self, recorder: ApplicationRecorder, projectors: Mapping[str, Projector]) -> None:
        self._recorder = recorder
        self._projectors = projectors

    def collect(self) -> Iterator[Metric]:
        if not self._projectors:
            return
        position, lag = _projector_families()
        head = _head(self._recorder)
        source = NotificationLogFeed.source
        for name, projector in self._projectors.items():
            at = projector.position(source)
            position.add_metric([name, source], at)
            lag.add_metric([name, source], max(head - at, 0))
        yield position
        yield lag


class KafkaProjectionCollector(_Collector):
    """Read models fed from Kafka: each one's position and lag on every partition of
    the topic, against end offsets asked of the broker by a consumer of its own (a
    projector's consumer is not to be used from another thread)."""

    def __init__(self, bootstrap_servers: str, topic: str, views: Mapping[str, View[Any]]) -> None:
        self._bootstrap = bootstrap_servers
        self._topic = topic
        self._views = views
        self._lock = threading.Lock()  # scrapes may overlap; the consumer is one thread's
        self._probe: Any = None

    def _end_offsets(self) -> dict[int, int] | None:
        from kafka import KafkaConsumer, TopicPartition
        from kafka.errors import KafkaError

        with self._lock:
            try:
                if self._probe is None:
                    self._probe = KafkaConsumer(
                        bootstrap_servers=self._bootstrap,
                        client_id="lodestone-metrics",
                        enable_auto_commit=False,
                        request_timeout_ms=5000,
                    )
                partitions = self._probe.partitions_for_topic(self._topic) or set()
                ends = self._probe.end_offsets(
                    [TopicPartition(self._topic, p) for p in sorted(partitions)]
                )
            except KafkaError as error:
                # The scrape still answers with the positions; the lag is left out
                # rather than shown against stale or made-up end offsets.
                log.warning("metrics: no end offsets for %s: %s", self._topic, error)
                return None
        return {tp.partition: int(end) for tp, end in ends.items()}

    def collect(self) -> Iterator[Metric]:
        ends = self._end_offsets()
        position, lag = _projector_families()
        end_offset = GaugeMetricFamily(
            "lodestone_kafka_end_offset",
            "End offset of each partition of the event topic",
            labels=["source"],
        )
        for partition, end in sorted((ends or {}).items()):
            end_offset.add_metric([source_name(self._topic, partition)], end)
        for name, view in self._views.items():
            for partition in sorted(ends or {}):
                source = source_name(self._topic, partition)
                at = view.position(source)
                position.add_metric([name, source], at)
                if ends is not None:
                    lag.add_metric([name, source], max(ends[partition] - at, 0))
        yield end_offset
        yield position
        yield lag

    def close(self) -> None:
        with self._lock:
            if self._probe is not None:
                self._probe.close()
                self._probe = None


def registry(
    collectors: Sequence[Collector], base: CollectorRegistry = REGISTRY
) -> CollectorRegistry:
    """``base`` (the instruments of ``lodestone.metrics`` and the client library's
    process collectors) and ``collectors`` in one registry, without touching ``base``:
    a process may build several (tests do)."""
    combined = CollectorRegistry(auto_describe=False)
    combined.register(base)
    for collector in collectors:
        combined.register(collector)
    return combined


def serve(port: int | None, host: str, collectors: Sequence[Collector]) -> Callable[[], None]:
    """Expose ``collectors`` (and the process's instruments) at ``http://host:port/metrics``
    in Prometheus's text format, in a thread; returns what stops it. ``port`` None: no
    server (the default: a process exposes metrics only where a port is configured)."""
    if port is None:
        return lambda: None
    server, thread = start_http_server(port, host, registry=registry(collectors))
    log.info("metrics on http://%s:%s/metrics", host, server.server_port)

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)

    return stop
