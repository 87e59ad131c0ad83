"""The relay: every event the ledger records goes to Kafka, in store order.

The event store's notification log is the outbox. The loop: read the next events after
the relayed position, produce them (key = aggregate id, acks=all, idempotent producer),
wait until the broker acknowledged every one, THEN record the new position. A crash
anywhere before that last step means the same events are produced again on restart:
repeats, never gaps. Consumers drop repeats by (aggregate id, version).

A producer whose batch was not acknowledged is closed and replaced (``connect``), never
retried for ever: kafka-python's producer can lose a broker that was killed and started
again and then time out every send (the fault-injection run found it), and a producer
knows only the addresses it started with.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from eventsourcing.persistence import ApplicationRecorder, Mapper

from lodestone.infra.kafka.producers import close_quietly
from lodestone.ledger.stores import PositionStore
from lodestone.streaming import codec

log = logging.getLogger(__name__)


class PublishFailed(RuntimeError):
    """The broker did not acknowledge a batch: nothing was recorded as relayed."""


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
        connect: Callable[[], Any] | None = None,
    ) -> None:
        """``connect`` makes a new producer: with it, a producer whose batch failed is
        closed and replaced before the next attempt (the relay then owns its producers;
        ``close`` closes the current one)."""
        self._recorder = recorder
        self._mapper = mapper
        self._producer: Any = producer
        self._connect = connect
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
        records = [codec.encode(notification, self._mapper) for notification in notifications]
        try:
            if self._producer is None:
                assert self._connect is not None
                self._producer = self._connect()
            futures = [
                self._producer.send(
                    self.topic, key=record.key, value=record.value, headers=record.headers
                )
                for record in records
            ]
            self._producer.flush(timeout=self.ack_timeout)
            for future in futures:
                future.get(timeout=self.ack_timeout)  # raises if the broker did not acknowledge
        except Exception as error:
            raise PublishFailed(f"{type(error).__name__}: {error}") from error
        self._positions.set(self.name, notifications[-1].id)
        return len(notifications)

    def run(self, stop: threading.Event, interval: float = 0.05) -> None:
        while not stop.is_set():
            try:
                relayed = self.run_once()
            except PublishFailed as error:
                # The position did not move: the next attempt produces these events
                # again (the broker may be down; the ledger keeps accepting events),
                # through a new producer when the relay can make one.
                log.warning("relay could not publish (%s); retrying", error)
                self._renew()
                stop.wait(1.0)
                continue
            except Exception as error:  # reading or encoding: the producer is not to blame
                log.warning("relay could not read its next events (%s); retrying", error)
                stop.wait(1.0)
                continue
            if not relayed:
                stop.wait(interval)

    def _renew(self) -> None:
        if self._connect is None or self._producer is None:
            return
        close_quietly(self._producer)
        self._producer = None  # the next attempt connects (and fails again if it cannot)

    def close(self) -> None:
        """Close the current producer, when the relay makes its own (``connect``)."""
        if self._connect is not None and self._producer is not None:
            close_quietly(self._producer)
            self._producer = None
