"""The relay: every event the ledger records goes to Kafka, in store order.

The event store's notification log is the outbox. The loop: read the next events after
the relayed position, produce them (key = aggregate id, acks=all, idempotent producer),
wait until the broker acknowledged every one, THEN record the new position. A crash
anywhere before that last step means the same events are produced again on restart:
repeats, never gaps. Consumers drop repeats by (aggregate id, version).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from eventsourcing.persistence import ApplicationRecorder, Mapper

from lodestone.ledger.stores import PositionStore
from lodestone.streaming import codec

log = logging.getLogger(__name__)


class Relay:
    name = "relay:lodestone.events.v1"

    def __init__(
        self,
        recorder: ApplicationRecorder,
        mapper: Mapper[Any],
        producer: Any,
        positions: PositionStore,
        topic: str = codec.TOPIC,
        batch_size: int = 2000,
        ack_timeout: float = 30.0,
    ) -> None:
        self._recorder = recorder
        self._mapper = mapper
        self._producer = producer
        self._positions = positions
        self.topic = topic
        self.batch_size = batch_size
        self.ack_timeout = ack_timeout

    @property
    def position(self) -> int:
        return self._positions.get(self.name)

    def run_once(self) -> int:
        after = self._positions.get(self.name)
        notifications = self._recorder.select_notifications(
            start=after, limit=self.batch_size, inclusive_of_start=False
        )
        if not notifications:
            return 0
        futures = []
        for notification in notifications:
            record = codec.encode(notification, self._mapper)
            futures.append(
                self._producer.send(
                    self.topic, key=record.key, value=record.value, headers=record.headers
                )
            )
        self._producer.flush(timeout=self.ack_timeout)
        for future in futures:
            future.get(timeout=self.ack_timeout)  # raises if the broker did not acknowledge
        self._positions.set(self.name, notifications[-1].id)
        return len(notifications)

    def run(self, stop: threading.Event, interval: float = 0.05) -> None:
        while not stop.is_set():
            try:
                relayed = self.run_once()
            except Exception as error:
                # The position did not move: the next attempt produces these events
                # again (the broker may be down; the ledger keeps accepting events).
                log.warning("relay could not publish (%s); retrying", error)
                stop.wait(1.0)
                continue
            if not relayed:
                stop.wait(interval)
