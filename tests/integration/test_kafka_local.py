"""The project's own Kafka: a real Apache Kafka 4 broker (KRaft, one node), seen through a
plain kafka-python client, as the relay and the projectors will see it."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import ConfigResource, ConfigResourceType
from typer.testing import CliRunner

from lodestone.cli.kafka import kafka_app
from lodestone.devtools.kafka_local import LocalKafka, broker_answers, read_state
from lodestone.infra.kafka.topics import create_topic
from tests.fixtures.topics import records_to_end


def fresh(kind: str) -> str:
    return f"test.{kind}.{uuid.uuid4().hex[:8]}"


def produce(bootstrap: str, topic: str, count: int) -> list[bytes]:
    """``count`` messages, each acknowledged by the broker (acks=all) before returning."""
    values = [f"event-{n}".encode() for n in range(count)]
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        for n, value in enumerate(values):
            producer.send(topic, key=f"batch-{n % 3}".encode(), value=value).get(timeout=30)
    finally:
        producer.close()
    return values


def started_with_messages(
    local_kafka: LocalKafka, tmp_path: Path, kind: str
) -> tuple[str, str, list[bytes]]:
    """A broker started in ``tmp_path``, holding 12 acknowledged messages on a fresh
    topic of 3 partitions: its bootstrap address, the topic and the messages."""
    bootstrap = local_kafka.start(tmp_path / "kafka")
    topic = fresh(kind)
    create_topic(bootstrap, topic, partitions=3)
    return bootstrap, topic, produce(bootstrap, topic, 12)


def test_message_with_headers_is_consumed_back_by_a_plain_consumer(kafka_bootstrap: str) -> None:
    topic = fresh("headers")
    create_topic(kafka_bootstrap, topic, partitions=1)
    headers = [
        ("ce_id", b"5b7e0c1e-0000-4000-8000-000000000001"),
        ("ce_type", b"lodestone.Batch.CustodyTransferred"),
        ("ce_source", b"lodestone/test"),
        ("ce_subject", b"batch-1"),
        ("position", b"42"),
    ]
    value = json.dumps({"buyer": "TRADER", "mass_kg": "100.5"}).encode()
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    producer.send(topic, key=b"batch-1", value=value, headers=headers).get(timeout=30)
    producer.close()

    [record] = records_to_end(kafka_bootstrap, topic)

    assert (record.key, record.value, record.headers) == (b"batch-1", value, headers)


def test_created_topic_has_the_requested_partitions_and_infinite_retention(
    kafka_bootstrap: str,
) -> None:
    topic = fresh("retention")

    assert create_topic(kafka_bootstrap, topic, partitions=6) is True

    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        [described] = admin.describe_topics([topic])
        configs = admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic, ["retention.ms"])],
            config_filter="all",
        )
    finally:
        admin.close()
    retention = configs["topic"][topic]["retention.ms"]["value"]
    assert (len(described["partitions"]), retention) == (6, "-1")


def test_creating_an_existing_topic_leaves_it_as_it_was(kafka_bootstrap: str) -> None:
    topic = fresh("existing")
    create_topic(kafka_bootstrap, topic, partitions=2)

    assert create_topic(kafka_bootstrap, topic, partitions=5) is False

    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        [described] = admin.describe_topics([topic])
    finally:
        admin.close()
    assert len(described["partitions"]) == 2


@pytest.mark.slow
def test_restarted_broker_keeps_its_messages(local_kafka: LocalKafka, tmp_path: Path) -> None:
    bootstrap, topic, sent = started_with_messages(local_kafka, tmp_path, "restart")

    assert local_kafka.restart() == bootstrap

    received = records_to_end(bootstrap, topic)
    assert sorted(r.value for r in received) == sorted(sent)


@pytest.mark.slow
def test_killed_broker_comes_back_with_every_acknowledged_message(
    local_kafka: LocalKafka, tmp_path: Path
) -> None:
    bootstrap, topic, sent = started_with_messages(local_kafka, tmp_path, "kill")

    local_kafka.kill()
    assert not broker_answers(bootstrap, timeout=1.0)
    assert local_kafka.restart() == bootstrap

    received = records_to_end(bootstrap, topic)
    assert sorted(r.value for r in received) == sorted(sent)


@pytest.mark.slow
def test_cli_up_leaves_a_broker_running_that_down_stops(
    local_kafka: LocalKafka, tmp_path: Path
) -> None:
    # local_kafka only guards the skip (java and Maven present); the CLI starts its own.
    directory = tmp_path / "kafka"
    runner = CliRunner()
    up = runner.invoke(kafka_app, ["up", "--data-dir", str(directory)])
    try:
        assert up.exit_code == 0, up.output
        bootstrap = up.stdout.strip().splitlines()[-1]
        assert broker_answers(bootstrap)
    finally:
        down = runner.invoke(kafka_app, ["down", "--data-dir", str(directory)])

    assert (down.exit_code, read_state(directory)) == (0, None)
    assert not broker_answers(bootstrap, timeout=1.0)
