"""A projector started before the event topic exists (before the relay's first start,
which creates it) makes the topic itself and projects the events as soon as they are
published. Found by the fault injection run (bench/faults.py): a projector that joined
its consumer group before the topic existed was sometimes assigned no partition, and
stayed so until its metadata aged out (5 minutes), while the other read models were
current. That race is not reproducible on demand; the topic made by the projector
before it joins is what removes it, and what the first test proves."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kafka import KafkaConsumer

from lodestone.demo.generator import load
from tests.system.conftest import Pipeline, wait_until
from tests.system.test_kafka_pipeline import projected_everything, published_everything

pytestmark = pytest.mark.slow


@pytest.fixture
def pipeline_without_topic(kafka_bootstrap: str, tmp_path: Path) -> Iterator[Pipeline]:
    name = f"t{uuid.uuid4().hex[:10]}"
    pipe = Pipeline(
        kafka_bootstrap, tmp_path / "data", f"lodestone.events.{name}", f"genealogy.{name}"
    )
    pipe.data_dir.mkdir()
    yield pipe
    pipe.close()


def partitions_of(bootstrap: str, topic: str) -> set[int]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        return consumer.partitions_for_topic(topic) or set()
    finally:
        consumer.close()


def test_a_projector_started_before_the_topic_exists_makes_it_with_the_configured_partitions(
    pipeline_without_topic: Pipeline,
) -> None:
    pipeline = pipeline_without_topic
    pipeline.projector()
    wait_until(lambda: "projecting" in pipeline.log("projector"), what="the projector to start")

    assert partitions_of(pipeline.bootstrap, pipeline.topic) == set(range(pipeline.partitions))


def test_a_projector_started_before_the_topic_exists_projects_what_is_published_later(
    pipeline_without_topic: Pipeline,
) -> None:
    pipeline = pipeline_without_topic
    ledger = pipeline.ledger()
    load(ledger, seed=21, size=200)
    pipeline.projector()
    wait_until(lambda: "projecting" in pipeline.log("projector"), what="the projector to start")

    pipeline.relay()  # creates the topic (if the projector has not) and publishes
    published_everything(pipeline, ledger)

    wait_until(lambda: projected_everything(pipeline), timeout=60, what="the projector")
    ledger.close()
