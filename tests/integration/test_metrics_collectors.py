"""The lag collectors of ``lodestone.streaming.metrics`` against a real broker and real
stores (SQLite and PostgreSQL): the relay's lag falls by exactly what each batch
published; a Kafka-fed read model's lag per partition is the partition's end offset less
its position, and is 0 once it has read to the end offsets."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from lodestone.bootstrap.settings import Settings
from lodestone.bootstrap.stores import LedgerTables, build_ledger, build_ledger_tables, open_view
from lodestone.infra.kafka.producers import producer
from lodestone.infra.kafka.topics import create_topic
from lodestone.ledger import Ledger
from lodestone.projections.registry import REGISTRY
from lodestone.streaming import codec
from lodestone.streaming.kafka_feed import KafkaFeed
from lodestone.streaming.metrics import KafkaProjectionCollector, RelayCollector
from lodestone.streaming.projector import Projector
from lodestone.streaming.relay import Relay
from tests.integration.conftest import record_chain

PARTITIONS = 3


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def settings(request: pytest.FixtureRequest, tmp_path: Path, kafka_bootstrap: str) -> Settings:
    topic = f"lodestone.events.m{uuid.uuid4().hex[:10]}"
    create_topic(kafka_bootstrap, topic, PARTITIONS)
    extra = {"data_dir": tmp_path, "kafka_bootstrap_servers": kafka_bootstrap, "kafka_topic": topic}
    if request.param == "postgres":
        make: Callable[[], str] = request.getfixturevalue("make_postgres_database")
        return Settings(postgres_url=make(), **extra)  # type: ignore[arg-type]
    return Settings(**extra)  # type: ignore[arg-type]


@pytest.fixture
def ledger(settings: Settings) -> Iterator[Ledger]:
    ledger = build_ledger(settings)
    record_chain(ledger)
    yield ledger
    ledger.close()


@pytest.fixture
def tables(settings: Settings, ledger: Ledger) -> Iterator[LedgerTables]:
    tables = build_ledger_tables(settings)
    yield tables
    tables.close()


@pytest.fixture
def relay(settings: Settings, ledger: Ledger, tables: LedgerTables) -> Iterator[Relay]:
    assert settings.kafka_bootstrap_servers
    kafka = producer(settings.kafka_bootstrap_servers)
    yield Relay(
        ledger.recorder, ledger.mapper, kafka, tables.positions, settings.kafka_topic, batch_size=5
    )
    kafka.close()


def samples(collector: Collector) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    text = generate_latest(registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_the_relay_lag_falls_by_what_each_batch_relays(
    ledger: Ledger, tables: LedgerTables, relay: Relay
) -> None:
    collector = RelayCollector(ledger.recorder, tables.positions, relay.name)
    head = ledger.recorder.max_notification_id() or 0
    assert head > 10
    assert samples(collector)[("lodestone_relay_lag_events", ())] == head
    assert relay.run_once() == 5
    after = samples(collector)
    assert after[("lodestone_relay_lag_events", ())] == head - 5
    assert after[("lodestone_relay_position", ())] == 5
    while relay.run_once():
        pass
    done = samples(collector)
    assert done[("lodestone_relay_lag_events", ())] == 0
    assert done[("lodestone_relay_position", ())] == head


def test_a_kafka_fed_read_model_shows_its_lag_on_each_partition(
    settings: Settings, ledger: Ledger, relay: Relay
) -> None:
    assert settings.kafka_bootstrap_servers
    while relay.run_once():
        pass
    head = ledger.recorder.max_notification_id() or 0
    entry = REGISTRY["genealogy"]
    view = open_view(settings, entry)
    collector = KafkaProjectionCollector(
        settings.kafka_bootstrap_servers, settings.kafka_topic, {"genealogy": view}
    )
    feed = KafkaFeed(
        settings.kafka_bootstrap_servers,
        f"metrics.{uuid.uuid4().hex[:8]}",
        codec.mapper(),
        view.position,
        topic=settings.kafka_topic,
    )
    try:
        before = samples(collector)
        sources = [f"{settings.kafka_topic}:{p}" for p in range(PARTITIONS)]
        ends = {s: before[("lodestone_kafka_end_offset", (("source", s),))] for s in sources}
        assert sum(ends.values()) == head
        for source in sources:
            labels = (("projection", "genealogy"), ("source", source))
            assert before[("lodestone_projector_lag_events", labels)] == ends[source]
            assert before[("lodestone_projector_position", labels)] == 0
        projector = Projector(entry.projection(), view, feed, batch_size=500)
        # Read to the end offsets (not to a count of events).
        while not all(view.position(s) >= end for s, end in ends.items()):
            projector.run_once()
        after = samples(collector)
        for source in sources:
            labels = (("projection", "genealogy"), ("source", source))
            assert after[("lodestone_projector_lag_events", labels)] == 0
            assert after[("lodestone_projector_position", labels)] == ends[source]
    finally:
        feed.close()
        collector.close()
        view.close()
