"""The producer of every loop that publishes to Kafka (the relay, the checkpoint
publisher)."""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)


def producer(bootstrap_servers: str, client_id: str = "lodestone-relay", in_flight: int = 5) -> Any:
    """acks=all and idempotence: a retried send is written once per producer session.
    ``in_flight``: requests in flight per connection (1: what the broker holds of a
    session's sends is always a prefix of them, in order)."""
    from kafka import KafkaProducer

    return KafkaProducer(
        bootstrap_servers=bootstrap_servers,
        client_id=client_id,
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        batch_size=256 * 1024,
        max_in_flight_requests_per_connection=in_flight,
        max_block_ms=10_000,
        request_timeout_ms=15_000,
        delivery_timeout_ms=30_000,
    )


def close_quietly(producer: Any) -> None:
    """Close without waiting for what is still queued (its senders produce it again).

    kafka-python 3.0.12's ``close(timeout)`` flushes first and raises when records are
    still queued, before it stops its sender thread, which then retries them for ever
    (and the collector's ``close`` at exit raises again): then the sender is stopped
    here, as ``close`` itself does when a graceful close runs out of time."""
    try:
        producer.close(timeout=0)
    except Exception as error:
        log.debug("closing a producer failed (%s): its sender is stopped", error)
        sender = getattr(producer, "_sender", None)
        if sender is not None:
            sender.force_close()
        producer._closed = True  # nothing left to close; __del__ must not try again
