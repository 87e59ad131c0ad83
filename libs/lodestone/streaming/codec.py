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
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

import orjson
from eventsourcing.persistence import (
    DatetimeAsISO,
    DecimalAsStr,
    Mapper,
    MapperDeserialisationError,
    Notification,
    StoredEvent,
    UUIDAsHex,
    find_id_convertor,
)
from eventsourcing.utils import resolve_topic

from lodestone.integrity import CHAIN_KEY
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


# --------------------------------------------------------------------------------------
# The fast way back: what a rebuild reads a million times
# --------------------------------------------------------------------------------------

#: The members before ``state`` as :func:`encode` writes them; anything else is read by
#: :func:`decode`'s general path.
_HEAD = re.compile(
    rb'\{"position":(\d+),"aggregate_id":"([0-9a-f-]{36})","aggregate_version":(\d+),'
    rb'"topic":"([^"\\]+)","state":'
)
#: Ids kept parsed, at most (a rebuild meets each batch's id a few times).
_UUID_CACHE = 1 << 18


class Decoder:
    """Record values straight to domain events, equal to :func:`decode`'s (same class,
    same ``__dict__``, upcast the same way), at a fraction of its cost: the value is
    parsed once, by orjson and without an object hook; the library's ``{"_type_",
    "_data_"}`` members are replaced in place by UUID, Decimal and datetime; ids are
    parsed once each; and an event of a class that ``wanted`` refuses (one no handler of
    the projection being rebuilt claims) is not parsed at all: ``event`` answers None
    for it, with its position.

    No StoredEvent, no mapper, no transcoder call per member: only the event. The
    library's rules are kept: a member of another ``_type_`` is the mapper's error,
    ``__chain__`` is left out, and ``class_version`` upcasters run in order."""

    def __init__(self, wanted: Callable[[type], bool] | None = None) -> None:
        self._wanted = wanted
        self._mapper = mapper()  # for a value written otherwise than by encode()
        self._classes: dict[str, tuple[type, Callable[[Any], Any], int] | None] = {}
        self._ids = _Ids()
        self._convert: dict[str, Callable[[str], Any]] = {
            "uuid_hex": self._ids.__getitem__,
            "decimal_str": Decimal,
            "datetime_iso": datetime.fromisoformat,
        }

    def event(self, value: bytes) -> tuple[int, Any | None]:
        """(store position, domain event or None if its class is not wanted)."""
        head = _HEAD.match(value)
        if head is None or not value.endswith(b"}"):
            position, event = decode(value, self._mapper)
            if self._wanted is not None and not self._wanted(type(event)):
                return position, None
            return position, event
        topic = head.group(4).decode("ascii")
        known = self._classes[topic] if topic in self._classes else self._known(topic)
        if known is None:
            return int(head.group(1)), None
        cls, id_convertor, class_version = known
        state = _loads(memoryview(value)[head.end() : -1])
        if not isinstance(state, dict):
            raise ValueError("not a Lodestone event record: its state is not an object")
        self._fill(state)
        state.pop(CHAIN_KEY, None)
        state["originator_id"] = id_convertor(self._ids[head.group(2).decode("ascii")])
        state["originator_version"] = int(head.group(3))
        from_version = state.pop("class_version", 1)
        while from_version < class_version:
            getattr(cls, f"upcast_v{from_version}_v{from_version + 1}")(state)
            from_version += 1
        event = object.__new__(cls)
        object.__setattr__(event, "__dict__", state)
        return int(head.group(1)), event

    def _known(self, topic: str) -> tuple[type, Callable[[Any], Any], int] | None:
        cls = resolve_topic(topic)
        known = None
        if self._wanted is None or self._wanted(cls):
            known = (cls, find_id_convertor(cls, UUID), getattr(cls, "class_version", 1))
        self._classes[topic] = known
        return known

    def _fill(self, node: dict[str, Any]) -> None:
        """Replace, in place, every wrapped value under ``node`` by what it wraps."""
        convert = self._convert
        for key, value in node.items():
            kind = type(value)
            if kind is dict:
                if value.keys() == _WRAPPED:
                    try:
                        node[key] = convert[value["_type_"]](value["_data_"])
                    except KeyError:
                        raise _unknown(value) from None
                else:
                    self._fill(value)
            elif kind is list:
                self._fill_list(value)

    def _fill_list(self, items: list[Any]) -> None:
        convert = self._convert
        for i, value in enumerate(items):
            kind = type(value)
            if kind is dict:
                if value.keys() == _WRAPPED:
                    try:
                        items[i] = convert[value["_type_"]](value["_data_"])
                    except KeyError:
                        raise _unknown(value) from None
                else:
                    self._fill(value)
            elif kind is list:
                self._fill_list(value)


#: The members of a value the library's JSON transcoder wrapped.
_WRAPPED = frozenset({"_type_", "_data_"})


def _unknown(wrapped: dict[str, Any]) -> MapperDeserialisationError:
    """What the library's mapper raises for it."""
    return MapperDeserialisationError(
        f"Data serialized with name {wrapped['_type_']!r} is not deserializable"
    )


class _Ids(dict[str, UUID]):
    """Each id parsed once: actors, facilities and batches recur in thousands of
    events, and ``UUID(text)`` is Python code, not a C call. A hit is one dict lookup."""

    def __missing__(self, text: str) -> UUID:
        if len(self) >= _UUID_CACHE:
            self.clear()
        found = self[text] = UUID(text)
        return found


def _loads(data: memoryview) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        # What orjson refuses and the library's json reads (integers past 64 bits,
        # NaN): the library's own parser, so that nothing it stored is unreadable.
        return json.loads(bytes(data))
