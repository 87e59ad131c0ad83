"""The producer of every loop that publishes to Kafka (the relay, the checkpoint
publisher)."""

from __future__ import annotations

from typing import Any


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
