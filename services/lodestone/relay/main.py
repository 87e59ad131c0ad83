"""``lodestone relay`` / ``python -m lodestone.relay.main``: publish every recorded event
to Kafka, from where the last run left off, until SIGTERM or SIGINT."""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

from prometheus_client.registry import Collector

from lodestone.audit.checkpointer import Checkpointer
from lodestone.bootstrap.settings import Settings
from lodestone.bootstrap.stores import build_ledger, build_ledger_tables
from lodestone.infra.kafka.producers import producer
from lodestone.infra.kafka.topics import create_topic
from lodestone.streaming.checkpoints import CheckpointLoop, CheckpointPublisher
from lodestone.streaming.metrics import RelayCollector, StoreCollector, serve
from lodestone.streaming.relay import Relay

log = logging.getLogger("lodestone.relay")


def build(settings: Settings) -> tuple[Relay, CheckpointLoop, list[Any], list[Collector]]:
    """The relay, the checkpoint loop (the relay service also checkpoints and publishes
    the checkpoints), what to close after them, and what its metrics read."""
    bootstrap = settings.kafka_bootstrap_servers
    if not bootstrap:
        raise SystemExit("LODESTONE_KAFKA_BOOTSTRAP_SERVERS is not set: nowhere to relay to")
    create_topic(
        bootstrap, settings.kafka_topic, settings.kafka_partitions, settings.kafka_retention_ms
    )
    create_topic(bootstrap, settings.checkpoint_topic, 1, settings.kafka_retention_ms)
    ledger = build_ledger(settings)
    tables = build_ledger_tables(settings)  # positions and checkpoints on one connection
    # Each loop makes its own producers: one that failed is closed and replaced.
    relay = Relay(
        ledger.recorder,
        ledger.mapper,
        producer(bootstrap),
        tables.positions,
        topic=settings.kafka_topic,
        connect=lambda: producer(bootstrap),
    )

    def publisher() -> CheckpointPublisher:
        return CheckpointPublisher(
            tables.checkpoints,
            producer(bootstrap, client_id="lodestone-checkpoints"),
            tables.positions,
            topic=settings.checkpoint_topic,
        )

    loop = CheckpointLoop(Checkpointer(ledger.recorder, tables.checkpoints), publisher)
    collectors: list[Collector] = [
        StoreCollector(ledger.recorder),
        RelayCollector(ledger.recorder, tables.positions, relay.name),
    ]
    return relay, loop, [relay, loop, tables, ledger], collectors


def run(settings: Settings, stop: threading.Event) -> None:
    relay, loop, resources, collectors = build(settings)
    log.info("relaying from position %s to %s", relay.position, settings.kafka_bootstrap_servers)
    # LODESTONE_RELAY_METRICS_PORT: position and lag behind the store, read when scraped.
    stop_metrics = serve(settings.relay_metrics_port, settings.metrics_host, collectors)
    thread = threading.Thread(
        target=loop.run, args=(stop, settings.checkpoint_interval), daemon=True
    )
    thread.start()
    try:
        relay.run(stop)
    finally:
        thread.join(timeout=10)
        stop_metrics()
        for resource in resources:
            resource.close()


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("kafka").setLevel(logging.WARNING)
    stop = threading.Event()
    # Signals only set the flag: the loop finishes the batch it is in (or not: a batch
    # not acknowledged is simply produced again next time) and closes cleanly.
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    run(Settings(), stop)


if __name__ == "__main__":
    main()
