"""The relay process against a broker that is SIGKILLed and started again, three times,
while events are being recorded: everything the store holds ends on the topic (a
producer that lost its broker is replaced, never waited on for ever), and a projector
started afterwards reaches the store-fed state."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path

import pytest

from lodestone.demo.generator import load
from lodestone.devtools.kafka_local import LocalKafka
from lodestone.infra.kafka.topics import create_topic
from tests.fixtures.topics import records_to_end
from tests.system.conftest import Pipeline, reference_fingerprint, wait_until
from tests.system.test_kafka_pipeline import (
    kafka_fingerprint,
    pairs_on_topic,
    projected_everything,
    relay_position,
    stored_pairs,
)

pytestmark = pytest.mark.slow

KILLS = 3


def test_the_relay_publishes_everything_after_the_broker_is_killed_three_times(
    local_kafka: LocalKafka, tmp_path: Path
) -> None:
    bootstrap = local_kafka.start(tmp_path / "broker")
    name = f"t{uuid.uuid4().hex[:10]}"
    pipeline = Pipeline(bootstrap, tmp_path / "data", f"lodestone.events.{name}", f"g.{name}")
    pipeline.data_dir.mkdir()
    create_topic(bootstrap, pipeline.topic, pipeline.partitions)
    ledger = pipeline.ledger()
    try:
        pipeline.relay()
        burst = threading.Thread(
            target=load, args=(ledger,), kwargs={"seed": 5, "size": 4000, "chunk_size": 100}
        )
        burst.start()
        for kill in range(KILLS):
            seen = relay_position(pipeline)
            wait_until(
                lambda seen=seen: relay_position(pipeline) > seen,  # type: ignore[misc]
                timeout=120,
                what=f"the relay to publish again before kill {kill + 1}",
            )
            local_kafka.kill()  # SIGKILL: no shutdown of the broker's own
            local_kafka.start(tmp_path / "broker")  # the same directory and port
        burst.join()
        total = ledger.recorder.max_notification_id()
        wait_until(
            lambda: relay_position(pipeline) == total,
            timeout=180,
            what=f"the relay to publish all {total} events after {KILLS} broker kills\n"
            + pipeline.log("relay"),
        )

        on_topic = pairs_on_topic(records_to_end(bootstrap, pipeline.topic))
        assert set(on_topic) == stored_pairs(ledger)  # every event at least once, no stranger
        pipeline.projector()
        wait_until(
            lambda: projected_everything(pipeline), timeout=120, what="the projector to finish"
        )
        assert kafka_fingerprint(pipeline) == reference_fingerprint(ledger, tmp_path)
    finally:
        pipeline.close()
        ledger.close()
