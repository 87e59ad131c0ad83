"""The relay and projector processes expose their metrics on the port their settings
name (``LODESTONE_RELAY_METRICS_PORT``, ``LODESTONE_PROJECTOR_METRICS_PORT``): real
processes, a real broker, scraped over HTTP like Prometheus would."""

from __future__ import annotations

import socket
from contextlib import closing

import httpx
import pytest
from kafka import KafkaConsumer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from lodestone.demo.generator import load
from tests.system.conftest import Pipeline, wait_until

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float] | None:
    """Every sample of ``/metrics`` on ``port``; None while nothing answers there."""
    try:
        response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    except httpx.TransportError:
        return None
    assert response.status_code == 200
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def end_offsets(pipeline: Pipeline) -> dict[int, int]:
    consumer = KafkaConsumer(bootstrap_servers=pipeline.bootstrap)
    try:
        partitions = [TopicPartition(pipeline.topic, p) for p in range(pipeline.partitions)]
        return {tp.partition: end for tp, end in consumer.end_offsets(partitions).items()}
    finally:
        consumer.close()


def test_the_relay_process_exposes_its_position_and_lag(pipeline: Pipeline) -> None:
    with closing(pipeline.ledger()) as ledger:
        load(ledger, seed=21, size=200)
        head = ledger.recorder.max_notification_id() or 0
    port = free_port()
    relay = pipeline.start("lodestone.relay.main", "relay", LODESTONE_RELAY_METRICS_PORT=str(port))

    def relayed_all() -> bool:
        found = scrape(port)
        return found is not None and found[("lodestone_relay_position", ())] == head

    wait_until(relayed_all, what="the relay's metrics to show everything relayed")
    found = scrape(port)
    assert found is not None
    assert found[("lodestone_store_position", ())] == head
    assert found[("lodestone_relay_lag_events", ())] == 0
    assert sum(end_offsets(pipeline).values()) >= head  # it did publish them
    assert relay.poll() is None


def test_a_projector_process_exposes_its_lag_on_each_partition(pipeline: Pipeline) -> None:
    with closing(pipeline.ledger()) as ledger:
        load(ledger, seed=22, size=200)
    pipeline.relay()
    port = free_port()
    pipeline.start(
        "lodestone.projector.main",
        "projector",
        "--projection",
        "genealogy",
        LODESTONE_PROJECTOR_METRICS_PORT=str(port),
    )
    sources = [f"{pipeline.topic}:{p}" for p in range(pipeline.partitions)]

    def caught_up() -> bool:
        found = scrape(port)
        if found is None:
            return False
        ends = end_offsets(pipeline)
        return (
            all(
                found.get(
                    ("lodestone_projector_position", (("projection", "genealogy"), ("source", s))),
                    -1,
                )
                >= ends[p]
                for p, s in enumerate(sources)
            )
            and sum(ends.values()) > 0
        )

    wait_until(caught_up, timeout=120, what="the projector's metrics to reach the end offsets")
    found = scrape(port)
    assert found is not None
    ends = end_offsets(pipeline)
    for partition, source in enumerate(sources):
        labels = (("projection", "genealogy"), ("source", source))
        assert found[("lodestone_projector_lag_events", labels)] == 0
        assert found[("lodestone_kafka_end_offset", (("source", source),))] == ends[partition]
    # A fresh group on a fresh topic: this process applied every record on it.
    applied = found[("lodestone_projector_events_applied_total", (("projection", "genealogy"),))]
    assert applied == sum(ends.values())
