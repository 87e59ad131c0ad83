"""A relay whose producer lost its broker for good makes a new one.

The fault-injection run found it (run 84 of 100, seed 7): after the broker was SIGKILLed
and restarted, kafka-python's producer never reached it again and timed out every send,
so the relay retried the same dead producer for ever. Here the producer's broker is
killed and the only broker left is another one (a producer knows only the addresses it
started with: it can never get there by itself), which proves the relay replaces a
producer whose batch failed, deterministically and with real brokers."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from lodestone.bootstrap.settings import Settings
from lodestone.bootstrap.stores import build_ledger, build_ledger_tables
from lodestone.devtools.kafka_local import LocalKafka
from lodestone.infra.kafka.producers import producer
from lodestone.infra.kafka.topics import create_topic
from lodestone.streaming.relay import Relay
from tests.fixtures.topics import records_to_end
from tests.integration.conftest import record_chain
from tests.system.conftest import wait_until

pytestmark = pytest.mark.slow

TOPIC = "lodestone.events.renewal"


def test_a_relay_whose_broker_is_gone_publishes_through_a_new_producer(
    local_kafka: LocalKafka, tmp_path: Path
) -> None:
    first = local_kafka.start(tmp_path / "first")
    create_topic(first, TOPIC, 3)
    settings = Settings(data_dir=tmp_path / "data")
    ledger = build_ledger(settings)
    tables = build_ledger_tables(settings)
    reachable = [first]
    made: list[str] = []

    def connect() -> object:
        made.append(reachable[0])
        return producer(reachable[0])

    relay = Relay(
        ledger.recorder,
        ledger.mapper,
        producer(first),
        tables.positions,
        topic=TOPIC,
        batch_size=5,
        ack_timeout=3.0,
        connect=connect,
    )
    stop = threading.Event()
    runner = threading.Thread(target=relay.run, args=(stop,), daemon=True)
    try:
        record_chain(ledger)
        relay.run_once()
        assert 0 < relay.position < ledger.recorder.max_notification_id()  # a first batch

        local_kafka.kill()
        with LocalKafka() as other:
            second = other.start(tmp_path / "second")
            create_topic(second, TOPIC, 3)
            reachable[0] = second
            runner.start()
            total = ledger.recorder.max_notification_id()
            wait_until(
                lambda: relay.position == total, timeout=90, what="the relay to publish again"
            )
            stop.set()
            runner.join(timeout=30)
            on_second = records_to_end(second, TOPIC)

        assert made and set(made) == {second}  # replaced, through the broker left
        assert len(on_second) > 0  # what the first broker never acknowledged, on the second
    finally:
        stop.set()
        relay.close()
        tables.close()
        ledger.close()
