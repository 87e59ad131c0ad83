"""Each projection's change log published to Kafka: ``lodestone.projection.<name>.v1``,
for analysts who consume Kafka directly.

One partition per topic, so the changes are on it in sequence order. Key: the row key
(``table`` rows of one key stay in order for a compacting reader too). Value: JSON
``{"projection", "seq", "table", "key", "row", "source", "position", "recorded_at"}``
(``table`` ``""`` and event type ``...reset``: the model was rebuilt or changes were lost
to retention: re-read it). Headers: CloudEvents as the relay writes them (``ce_id``,
``ce_type``, ``ce_source``, ``ce_time``, ``ce_subject``, ``ce_specversion``,
``content-type``) plus ``seq``, ``source`` and ``position``.

Neither lost nor doubled, whatever is killed when: the topic is its own position. On
start the publisher reads the ``seq`` header of the topic's last record and goes on
after it. Within a run, an idempotent producer with acks=all and one request in flight
writes a prefix of what it was given, in order, each once; after any failure the
producer is closed (nothing of it is in flight any more) and the topic's last record
read again. The publisher records what the broker acknowledged in the read-model
database (``published``) for monitoring only. One publisher per projection at a time:
it holds the view's ``publishing`` lock, which a dead process lets go of.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from uuid import NAMESPACE_URL, uuid5

from lodestone.bootstrap.settings import Settings
from lodestone.projections.changes import Change
from lodestone.projections.tables import TableView
from lodestone.streaming.codec import Record

log = logging.getLogger(__name__)

TOPIC = "lodestone.projection.{name}.v1"
CHANGE_NAMESPACE = uuid5(NAMESPACE_URL, "urn:lodestone:projection-change")


def topic_of(projection: str, pattern: str = TOPIC) -> str:
    return pattern.format(name=projection)


def encode(change: Change) -> Record:
    table = change.table or "reset"
    value = {
        "projection": change.projection,
        "seq": change.seq,
        "table": change.table,
        "key": change.key,
        "row": change.row,
        "source": change.source,
        "position": change.position,
        "recorded_at": change.recorded_at,
    }
    headers = [
        ("ce_specversion", b"1.0"),
        ("ce_id", str(uuid5(CHANGE_NAMESPACE, f"{change.projection}:{change.seq}")).encode()),
        ("ce_type", f"lodestone.projection.{change.projection}.{table}".encode()),
        ("ce_source", f"urn:lodestone:projection:{change.projection}".encode()),
        ("ce_time", change.recorded_at.encode()),
        ("ce_subject", (change.key or change.projection).encode()),
        ("content-type", b"application/json"),
        ("seq", str(change.seq).encode()),
        ("source", change.source.encode()),
        ("position", str(change.position).encode()),
    ]
    body = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
    return Record(change.key.encode(), body, headers)


def lost(projection: str, seq: int) -> Change:
    """What the topic gets in place of changes the log no longer held when the publisher
    came to them: a reset numbered ``seq`` (the log's floor, never a kept change)."""
    return Change(projection, seq, "", "", "{}", "", 0, datetime.now(UTC).isoformat())


def last_on_topic(bootstrap: str, topic: str, timeout: float = 30.0) -> int | None:
    """The ``seq`` of the topic's last record; 0 if it never had one; None if its records
    are all gone (retention): then the database's ``published`` says how far it got."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        request_timeout_ms=int(timeout * 1000) + 5_000,
    )
    try:
        partition = TopicPartition(topic, 0)
        consumer.assign([partition])
        end = consumer.end_offsets([partition])[partition]
        if end == 0:
            return 0
        if consumer.beginning_offsets([partition])[partition] >= end:
            return None
        consumer.seek(partition, end - 1)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                for record in records:
                    if record.offset == end - 1:
                        return int(dict(record.headers)["seq"])
        raise TimeoutError(f"could not read the last record of {topic}")
    finally:
        consumer.close()


class ChangePublisher:
    """Sends a view's changes after ``position`` (the topic's last seq) in order; one
    batch per ``run_once``, acknowledged before it returns."""

    def __init__(
        self,
        source: TableView[Any],
        producer: Any,
        topic: str,
        position: int,
        batch_size: int = 1000,
        ack_timeout: float = 30.0,
    ) -> None:
        self._source = source
        self._producer = producer
        self.topic = topic
        self.position = position
        self.batch_size = batch_size
        self.ack_timeout = ack_timeout
        self.projection = source.layout.projection

    def run_once(self) -> int:
        page = self._source.changes(self.position, self.batch_size)
        if self.position > page.last:
            # The topic holds numbers this log never gave out (the read-model database
            # was made anew): number on after them, with a reset marker first.
            self._source.continue_after(self.position)
            page = self._source.changes(self.position, self.batch_size)
        batch = page.changes
        if self.position < page.floor:
            batch = [lost(self.projection, page.floor)]
        if not batch:
            return 0
        futures = []
        for change in batch:
            record = encode(change)
            futures.append(
                self._producer.send(
                    self.topic,
                    key=record.key,
                    value=record.value,
                    headers=record.headers,
                    partition=0,
                )
            )
        self._producer.flush(timeout=self.ack_timeout)
        for future in futures:
            future.get(timeout=self.ack_timeout)  # raises if the broker did not acknowledge
        self.position = batch[-1].seq
        self._source.published(self.position)
        return len(batch)


def run(
    source: TableView[Any],
    bootstrap: str,
    connect: Callable[[], Any],
    stop: threading.Event,
    *,
    topic: str,
    retention_ms: int = -1,
    batch_size: int = 1000,
    interval: float = 0.05,
) -> None:
    """Publish ``source``'s changes to ``topic`` until ``stop`` is set, whenever this
    process holds the publishing lock. ``connect`` makes a producer (acks=all,
    idempotent, one request in flight)."""
    from lodestone.infra.kafka.topics import create_topic

    while not stop.is_set():
        with source.publishing() as mine:
            if not mine:
                stop.wait(2.0)  # another process publishes; take over if it dies
                continue
            producer = None
            try:
                create_topic(bootstrap, topic, 1, retention_ms)
                producer = connect()
                found = last_on_topic(bootstrap, topic)
                position = found if found is not None else source.changes(0, 0).published
                publisher = ChangePublisher(source, producer, topic, position, batch_size)
                log.info(
                    "publishing %s changes to %s after %d", publisher.projection, topic, position
                )
                while not stop.is_set():
                    if not publisher.run_once():
                        stop.wait(interval)
            except Exception as error:
                # Nothing past the acknowledged prefix is assumed: the producer is closed
                # below and the topic's last record read again before going on.
                log.warning("change topic %s: %s; resuming from the topic", topic, error)
                stop.wait(1.0)
            finally:
                if producer is not None:
                    producer.close(timeout=30)


def start_publisher(
    settings: Settings, source: TableView[Any], stop: threading.Event
) -> threading.Thread:
    """A daemon thread publishing ``source``'s changes to its change topic (settings:
    the broker, the topic pattern, the batch) until ``stop`` is set."""
    from lodestone.infra.kafka.producers import producer

    bootstrap = settings.kafka_bootstrap_servers
    if not bootstrap:
        raise ValueError("no Kafka bootstrap servers configured")
    name = source.layout.projection

    def connect() -> Any:
        return producer(bootstrap, client_id=f"lodestone-changes-{name}", in_flight=1)

    thread = threading.Thread(
        target=run,
        args=(source, bootstrap, connect, stop),
        kwargs={
            "topic": topic_of(name, settings.change_topics),
            "retention_ms": settings.kafka_retention_ms,
            "batch_size": settings.change_publish_batch,
        },
        name=f"changes-{name}",
        daemon=True,
    )
    thread.start()
    return thread
