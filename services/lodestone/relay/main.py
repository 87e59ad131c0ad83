"""``lodestone relay`` / ``python -m lodestone.relay.main``: publish every recorded event
to Kafka, from where the last run left off, until SIGTERM or SIGINT."""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

from eventsourcing.persistence import ApplicationRecorder

from lodestone.audit.checkpointer import Checkpointer
from lodestone.infra.kafka_topics import create_topic
from lodestone.infra.settings import Settings
from lodestone.infra.wiring import build_checkpoint_store, build_ledger, build_position_store
from lodestone.streaming.checkpoints import CheckpointLoop, CheckpointPublisher
from lodestone.streaming.relay import Relay, producer

log = logging.getLogger("lodestone.relay")


def build(settings: Settings) -> tuple[Relay, list[Any]]:
    """The relay and what to close after it."""
    if not settings.kafka_bootstrap_servers:
        raise SystemExit("LODESTONE_KAFKA_BOOTSTRAP_SERVERS is not set: nowhere to relay to")
    create_topic(
        settings.kafka_bootstrap_servers,
        settings.kafka_topic,
        settings.kafka_partitions,
        settings.kafka_retention_ms,
    )
    ledger = build_ledger(settings)
    positions = build_position_store(settings)
    kafka = producer(settings.kafka_bootstrap_servers)
    relay = Relay(ledger.recorder, ledger.mapper, kafka, positions, topic=settings.kafka_topic)
    return relay, [kafka, positions, ledger]


def checkpoints(
    settings: Settings, recorder: ApplicationRecorder, kafka: Any
) -> tuple[CheckpointLoop, list[Any]]:
    """The relay service also checkpoints and publishes the checkpoints."""
    assert settings.kafka_bootstrap_servers
    create_topic(
        settings.kafka_bootstrap_servers, settings.checkpoint_topic, 1, settings.kafka_retention_ms
    )
    store = build_checkpoint_store(settings)
    positions = build_position_store(settings)
    publisher = CheckpointPublisher(store, kafka, positions, topic=settings.checkpoint_topic)
    loop = CheckpointLoop(Checkpointer(recorder, store), lambda: publisher)
    return loop, [store, positions]


def run(settings: Settings, stop: threading.Event) -> None:
    relay, resources = build(settings)
    kafka, _, ledger = resources
    loop, more = checkpoints(settings, ledger.recorder, kafka)
    resources = more + resources
    log.info("relaying from position %s to %s", relay.position, settings.kafka_bootstrap_servers)
    thread = threading.Thread(
        target=loop.run, args=(stop, settings.checkpoint_interval), daemon=True
    )
    thread.start()
    try:
        relay.run(stop)
    finally:
        thread.join(timeout=10)
        for resource in resources:
            resource.close()  # type: ignore[attr-defined]


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
