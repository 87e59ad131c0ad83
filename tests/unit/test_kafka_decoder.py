"""The rebuild's fast decoder (lodestone.streaming.codec.Decoder) against the library's
mapper (codec.decode), on the records the relay makes of a demo chain's events, and how
a rebuild spreads partitions over its workers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from eventsourcing.persistence import MapperDeserialisationError

from lodestone.demo.generator import load
from lodestone.domain.batches import Batch
from lodestone.ledger import Ledger
from lodestone.projections.genealogy import GenealogyProjection
from lodestone.streaming import codec
from lodestone.streaming.kafka_rebuild import spread, wanted_by
from tests.fixtures.backends import memory_env
from tests.unit.builders import NOW


@pytest.fixture(scope="module")
def values() -> Iterator[list[bytes]]:
    """Every event of a small demo chain as the relay puts it on the topic."""
    ledger = Ledger(memory_env(), clock=lambda: NOW)
    try:
        load(ledger, seed=5, size=300)
        notifications = ledger.recorder.select_notifications(start=1, limit=1_000_000)
        yield [codec.encode(n, ledger.mapper).value for n in notifications]
    finally:
        ledger.close()


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a.__dict__ == b.__dict__


def test_every_event_decodes_to_what_the_librarys_mapper_makes_of_it(values: list[bytes]) -> None:
    decoder, mapper = codec.Decoder(), codec.mapper()

    for value in values:
        position, event = decoder.event(value)
        expected_position, expected = codec.decode(value, mapper)
        assert position == expected_position
        assert _same(event, expected), value[:200]


def test_an_event_of_an_earlier_class_version_is_upcast_as_the_library_does(
    values: list[bytes],
) -> None:
    # An export as the release before shipment numbers stored it: no class_version, no
    # shipment, no controlled flag.
    value = next(v for v in values if b"Batch.ShipmentExported" in v)
    cut = value.find(b',"state":') + len(b',"state":')
    state = json.loads(value[cut:-1])
    for member in ("class_version", "shipment", "controlled"):
        del state[member]
    old = value[:cut] + json.dumps(state, separators=(",", ":")).encode() + b"}"

    _, event = codec.Decoder().event(old)

    _, expected = codec.decode(old, codec.mapper())
    assert _same(event, expected)
    assert isinstance(event, Batch.ShipmentExported)
    assert (event.shipment, event.controlled) == (None, True)


def test_an_event_no_handler_wants_is_not_decoded_but_keeps_its_position(
    values: list[bytes],
) -> None:
    decoder = codec.Decoder(wanted_by(GenealogyProjection()))
    value = next(v for v in values if b"Transformation.BatchTransformed" in v)

    position, event = decoder.event(value)

    assert event is None
    assert position == codec.decode(value, codec.mapper())[0]


def test_a_member_of_an_unknown_type_is_refused_as_the_library_refuses_it(
    values: list[bytes],
) -> None:
    value = next(v for v in values if b'"decimal_str"' in v).replace(
        b'"decimal_str"', b'"decimal_as_roman"', 1
    )

    with pytest.raises(MapperDeserialisationError):
        codec.Decoder().event(value)
    with pytest.raises(MapperDeserialisationError):
        codec.decode(value, codec.mapper())


def test_a_record_not_written_by_the_relays_encoder_is_read_through_the_mapper(
    values: list[bytes],
) -> None:
    # The head's members in another order: the fast path does not match it.
    value = values[0]
    cut = value.find(b',"state":')
    head = json.loads(value[:cut] + b"}")
    reordered = json.dumps(dict(reversed(list(head.items()))), separators=(",", ":"))
    other = reordered[:-1].encode() + value[cut:]

    position, event = codec.Decoder().event(other)

    expected_position, expected = codec.decode(value, codec.mapper())
    assert position == expected_position
    assert _same(event, expected)


def test_partitions_are_spread_by_records_and_empty_ones_left_out() -> None:
    ends = {0: 100, 1: 10, 2: 90, 3: 0, 4: 20}

    groups = spread(ends, 2)

    assert groups == [{0: 100, 1: 10}, {2: 90, 4: 20}]
    assert spread(ends, 9) == [{0: 100}, {2: 90}, {4: 20}, {1: 10}]
    assert spread({0: 0}, 2) == []
