"""A Kafka-fed read model that stops receiving records while behind the end offsets gets
going again by itself (issue 12, faults: a relay SIGKILL run left the genealogy at offset
0 of every partition for 180 s; kafka-python had left its partitions marked as being
revoked after a rejoin, so it fetched none of them).

That library race cannot be started on demand, so the test brings the consumer into the
same state through the public API: its partitions stay assigned but are paused, so polls
return nothing while records wait on the topic."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lodestone.bootstrap.settings import Settings
from lodestone.bootstrap.stores import LedgerTables, build_ledger, build_ledger_tables, open_view
from lodestone.infra.kafka.producers import producer
from lodestone.infra.kafka.topics import create_topic
from lodestone.ledger import Ledger
from lodestone.projections.registry import REGISTRY
from lodestone.streaming import codec, kafka_feed
from lodestone.streaming.feeds import NotificationLogFeed
from lodestone.streaming.kafka_feed import KafkaFeed, source_name
from lodestone.streaming.projector import Projector
from lodestone.streaming.relay import Relay
from tests.integration.conftest import record_chain

PARTITIONS = 3


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def settings(request: pytest.FixtureRequest, tmp_path: Path, kafka_bootstrap: str) -> Settings:
    topic = f"lodestone.events.s{uuid.uuid4().hex[:10]}"
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


def end_offsets(feed: KafkaFeed) -> dict[str, int]:
    from kafka import TopicPartition

    partitions = [TopicPartition(feed.topic, p) for p in range(PARTITIONS)]
    ends = feed._consumer.end_offsets(partitions)
    return {source_name(tp.topic, tp.partition): end for tp, end in ends.items()}


def test_a_feed_that_gets_no_records_while_behind_the_end_offsets_reads_on_through_a_new_consumer(
    settings: Settings, ledger: Ledger, relay: Relay, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert settings.kafka_bootstrap_servers
    monkeypatch.setattr(kafka_feed, "STALL_CHECK", 3.0)
    entry = REGISTRY["genealogy"]
    view = open_view(settings, entry)
    feed = KafkaFeed(
        settings.kafka_bootstrap_servers,
        f"stall.{uuid.uuid4().hex[:8]}",
        codec.mapper(),
        view.position,
        topic=settings.kafka_topic,
    )
    try:
        projector = Projector(entry.projection(), view, feed, batch_size=500)
        relay.run_once()  # the first events only
        ends = end_offsets(feed)
        deadline = time.monotonic() + 60
        while not all(view.position(s) >= end for s, end in ends.items()):
            assert time.monotonic() < deadline, "the first events never arrived"
            projector.run_once()
        # Wedged: every partition still assigned, none fetched.
        assigned = feed._consumer.assignment()
        assert len(assigned) == PARTITIONS
        feed._consumer.pause(*assigned)
        while relay.run_once():
            pass
        ends = end_offsets(feed)
        assert any(view.position(s) < end for s, end in ends.items())
        # Read to the end offsets (not to a count of events).
        deadline = time.monotonic() + 60
        while not all(view.position(s) >= end for s, end in ends.items()):
            assert time.monotonic() < deadline, {s: (view.position(s), e) for s, e in ends.items()}
            projector.run_once()
        fed_from_kafka = view.fingerprint()
    finally:
        feed.close()
        view.close()
    # Each event applied once: the rows equal those fed from the store (into SQLite: the
    # two backends' digests agree for UTC times, which record_chain states).
    reference = entry.open(postgres_url=None, sqlite_path=settings.data_dir / "reference.sqlite")
    try:
        Projector(
            entry.projection(), reference, NotificationLogFeed(ledger.recorder, ledger.mapper)
        ).catch_up()
        assert reference.fingerprint() == fed_from_kafka
    finally:
        reference.close()
