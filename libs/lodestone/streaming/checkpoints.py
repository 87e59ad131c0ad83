"""Checkpoints on a schedule, and on Kafka for third parties to hold.

``CheckpointLoop`` makes a checkpoint of the events recorded since the last one every
``interval`` seconds and, when Kafka is configured, publishes every checkpoint not yet
published to ``lodestone.checkpoints.v1`` (one partition, key = seq, value = the
canonical JSON record with its hash), recording how far it got only after the broker
acknowledged: a crash repeats a checkpoint on the topic, never skips one.
``read_published`` is what ``lodestone verify --against-kafka`` (or anyone) reads back.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from lodestone import integrity
from lodestone.audit.checkpointer import Checkpointer, TamperDetected
from lodestone.infra.kafka.producers import close_quietly
from lodestone.ledger.stores import Checkpoint, CheckpointStore, PositionStore

log = logging.getLogger(__name__)

TOPIC = "lodestone.checkpoints.v1"


class CheckpointPublisher:
    def __init__(
        self,
        store: CheckpointStore,
        producer: Any,
        positions: PositionStore,
        topic: str = TOPIC,
        ack_timeout: float = 30.0,
    ) -> None:
        self._store = store
        self._producer = producer
        self._positions = positions
        self.topic = topic
        self.name = f"publisher:{topic}"
        self.ack_timeout = ack_timeout

    def run_once(self) -> int:
        after = self._positions.get(self.name)
        pending = self._store.list(after_seq=after, limit=1_000)
        if not pending:
            return 0
        futures = [
            self._producer.send(
                self.topic,
                key=str(cp["seq"]).encode(),
                value=integrity.canonical(cp),
                headers=[("content-type", b"application/json")],
            )
            for cp in pending
        ]
        self._producer.flush(timeout=self.ack_timeout)
        for future in futures:
            future.get(timeout=self.ack_timeout)
        self._positions.set(self.name, pending[-1]["seq"])
        return len(pending)

    def close(self) -> None:
        """Close the producer (without waiting: what was not acknowledged is published
        again by the next publisher)."""
        close_quietly(self._producer)


class CheckpointLoop:
    """``connect`` builds the publisher; it is called again until it succeeds, so a
    broker that is down delays publication, never the checkpoints themselves. A
    publisher that failed is closed and built again (its producer may have lost the
    broker for good, as the relay's can)."""

    def __init__(
        self,
        checkpointer: Checkpointer,
        connect: Callable[[], CheckpointPublisher] | None = None,
    ) -> None:
        self.checkpointer = checkpointer
        self._connect = connect
        self.publisher: CheckpointPublisher | None = None

    def run_once(self) -> list[Checkpoint]:
        made = self.checkpointer.make()
        if self.publisher is None and self._connect is not None:
            self.publisher = self._connect()
        if self.publisher is not None:
            while self.publisher.run_once():
                pass
        return made

    def close(self) -> None:
        if self.publisher is not None:
            self.publisher.close()
            self.publisher = None

    def run(self, stop: threading.Event, interval: float) -> None:
        while not stop.wait(interval):
            try:
                self.run_once()
            except TamperDetected as error:
                # Never vouch for an altered event: stop checkpointing, loudly.
                log.error("checkpoints stopped: %s; run lodestone verify", error)
                return
            except Exception as error:
                log.warning("checkpoint not made or not published (%s); retrying", error)
                if self._connect is not None:
                    self.close()


def read_published(
    bootstrap_servers: str, topic: str = TOPIC, timeout: float = 30.0
) -> list[Checkpoint]:
    """Every checkpoint on the topic, by seq (repeats dropped)."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap_servers,
        enable_auto_commit=False,
        consumer_timeout_ms=int(timeout * 1000),
        request_timeout_ms=int(timeout * 1000) + 5_000,
    )
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
        if not assigned:
            return []
        consumer.assign(assigned)
        consumer.seek_to_beginning(*assigned)
        ends = consumer.end_offsets(assigned)
        found: dict[int, Checkpoint] = {}
        deadline = time.monotonic() + timeout
        while any(consumer.position(tp) < ends[tp] for tp in assigned):
            if time.monotonic() > deadline:
                raise TimeoutError(f"could not read {topic} to its end in {timeout} s")
            batch = consumer.poll(timeout_ms=1_000)
            for records in batch.values():
                for record in records:
                    cp = json.loads(record.value)
                    found[int(cp["seq"])] = cp
        return [found[seq] for seq in sorted(found)]
    finally:
        consumer.close()
