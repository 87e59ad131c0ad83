"""Ledger events as Kafka records, and back.

Key: the aggregate id (one batch's events share a partition, so they stay in order).
Value: JSON ``{"position", "aggregate_id", "aggregate_version", "topic", "state"}`` where
``state`` is the event exactly as the event store holds it (the library's JSON, in which
decimals, ids and times appear as ``{"_type_": "decimal_str", "_data_": "12.5"}``, and
the event's chained hash under ``__chain__``), so nothing is lost between the store and a consumer. Headers: CloudEvents (``ce_id``,
``ce_type``, ``ce_source``, ``ce_time``, ``ce_subject``, ``ce_specversion``) plus the store
``position`` and ``aggregate_version``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.persistence import (
    DatetimeAsISO,
    DecimalAsStr,
    Mapper,
    Notification,
    StoredEvent,
    UUIDAsHex,
)

from lodestone.ledger.chained import ChainTranscoder

TOPIC = "lodestone.events.v1"
SOURCE = "urn:lodestone:ledger"
EVENT_NAMESPACE = uuid5(NAMESPACE_URL, "urn:lodestone:event")


@dataclass(frozen=True)
class Record:
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]


def event_id(aggregate_id: UUID | str, version: int) -> str:
    """Stable across repeats: a consumer can drop a duplicate by this id alone."""
    return str(uuid5(EVENT_NAMESPACE, f"{aggregate_id}:{version}"))


def event_type(topic: str) -> str:
    # "lodestone.domain.batches:Batch.OreExtracted" -> "lodestone.Batch.OreExtracted"
    return "lodestone." + topic.rpartition(":")[2]


_TIMESTAMP = b'"timestamp":{"_data_":"'


def _recorded_at(notification: Notification, mapper: Mapper[Any]) -> str:
    """The event's record time (ce_time), read from the canonical stored state without
    building the domain event; through the mapper for any other spelling."""
    state = notification.state
    start = state.rfind(_TIMESTAMP)  # top-level members sort last-but-few: search back
    if start >= 0:
        start += len(_TIMESTAMP)
        end = state.find(b'"', start)
        if end > start:
            return state[start:end].decode("ascii")
    event: Any = mapper.to_domain_event(notification)
    return str(event.timestamp.isoformat())


def encode(notification: Notification, mapper: Mapper[Any]) -> Record:
    state = notification.state.decode("utf-8")
    value = (
        f'{{"position":{notification.id},"aggregate_id":"{notification.originator_id}",'
        f'"aggregate_version":{notification.originator_version},'
        f'"topic":{json.dumps(notification.topic)},"state":{state}}}'
    )
    headers = [
        ("ce_specversion", b"1.0"),
        ("ce_id", event_id(notification.originator_id, notification.originator_version).encode()),
        ("ce_type", event_type(notification.topic).encode()),
        ("ce_source", SOURCE.encode()),
        ("ce_time", _recorded_at(notification, mapper).encode()),
        ("ce_subject", str(notification.originator_id).encode()),
        ("content-type", b"application/json"),
        ("position", str(notification.id).encode()),
        ("aggregate_version", str(notification.originator_version).encode()),
    ]
    return Record(str(notification.originator_id).encode(), value.encode("utf-8"), headers)


def decode(value: bytes, mapper: Mapper[Any]) -> tuple[int, Any]:
    """A record's value back to (store position, domain event). The state is handed to
    the mapper as the very bytes the store holds (the value's last member), so it is
    parsed once and stays hash-verifiable."""
    cut = value.find(b',"state":')
    if cut < 0 or not value.endswith(b"}"):
        raise ValueError("not a Lodestone event record")
    head = json.loads(value[:cut] + b"}")
    stored = StoredEvent(
        originator_id=UUID(head["aggregate_id"]),
        originator_version=int(head["aggregate_version"]),
        topic=head["topic"],
        state=value[cut + 9 : -1],
    )
    return int(head["position"]), mapper.to_domain_event(stored)


def mapper() -> Mapper[Any]:
    """Decodes events without an event store: what a Kafka consumer process needs. The
    same transcodings the ledger's Application registers."""
    transcoder = ChainTranscoder()
    for transcoding in (UUIDAsHex(), DecimalAsStr(), DatetimeAsISO()):
        transcoder.register(transcoding)
    return Mapper(transcoder=transcoder)
