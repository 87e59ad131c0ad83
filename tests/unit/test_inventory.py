"""The inventory without a database: how steps move a batch's mass (signed, dated
movements), what movements add up to per holder, place and material with element
masses, and the projection on the integration chain through an in-memory writer."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from decimal import Decimal as D
from uuid import UUID, uuid4

import pytest

from lodestone.domain import ids
from lodestone.ledger import Ledger
from lodestone.projections.inventory import (
    HeldBatch,
    InventoryProjection,
    Movement,
    Place,
    Step,
    holdings,
    lots_from,
    lots_now,
)
from lodestone.projections.inventory.stock import Position, advance, replay
from lodestone.streaming.feeds import NotificationLogFeed
from tests.fixtures.backends import memory_env
from tests.integration.conftest import NOW, at, record_chain

BATCH, SELLER, BUYER = uuid4(), uuid4(), uuid4()
PIT, WAREHOUSE = uuid4(), uuid4()
T0 = datetime(2026, 3, 1, tzinfo=UTC)


def step(
    version: int, kind: str, actor: UUID | None, facility: UUID | None, kg: str | None
) -> Step:
    return Step(BATCH, version, kind, at(version), actor, facility, D(kg) if kg else None, 0)


def batch_row(composition: dict[str, D], material: str = "ore", id: UUID = BATCH) -> HeldBatch:
    return HeldBatch(id, 1, "X/LOT", material, composition, SELLER, PIT, D(0), "active", T0)


def test_a_creation_puts_its_mass_at_its_holder_s_facility() -> None:
    after, legs = advance(Position(None, None, D(0)), step(1, "created", SELLER, PIT, "1000"))

    assert after == Position(SELLER, PIT, D(1000))
    assert [(m.entry, m.actor_id, m.facility_id, m.kg) for m in legs] == [(3, SELLER, PIT, D(1000))]


def test_a_sale_moves_the_remaining_mass_from_the_seller_to_the_buyer_when_it_happens() -> None:
    after, legs = advance(Position(SELLER, PIT, D(600)), step(2, "sold", BUYER, WAREHOUSE, None))

    assert after == Position(BUYER, WAREHOUSE, D(600))
    assert [(m.actor_id, m.facility_id, m.kg, m.occurred_at) for m in legs] == [
        (SELLER, PIT, D(-600), at(2)),
        (BUYER, WAREHOUSE, D(600), at(2)),
    ]


def test_taking_mass_leaves_the_rest_where_it_is() -> None:
    after, legs = advance(Position(SELLER, PIT, D(600)), step(2, "taken", None, None, "250.5"))

    assert after == Position(SELLER, PIT, D("349.5"))
    assert [(m.actor_id, m.facility_id, m.kg) for m in legs] == [(SELLER, PIT, D("-250.5"))]


def test_an_export_is_in_transit_until_the_receipt_places_what_arrived() -> None:
    shipped, out = advance(Position(SELLER, PIT, D(200)), step(2, "exported", SELLER, None, None))
    arrived, back = advance(shipped, step(3, "received", BUYER, WAREHOUSE, "199.5"))

    assert shipped == Position(SELLER, None, D(200))
    assert arrived == Position(BUYER, WAREHOUSE, D("199.5"))
    assert [m.kg for m in out + back] == [D(-200), D(200), D(-200), D("199.5")]


def test_a_step_that_did_not_occur_leaves_the_batch_where_it_was() -> None:
    moved = Step(BATCH, 2, "moved", at(2), SELLER, WAREHOUSE, None, 1)

    after, legs = advance(Position(SELLER, PIT, D(600)), moved)

    assert after == Position(SELLER, PIT, D(600))
    assert [m.kg for m in legs] == [D(0), D(0)]  # the same entries, nothing moved


def test_a_corrected_origin_mass_counts_at_every_place_the_batch_has_been() -> None:
    steps = [
        step(1, "created", SELLER, PIT, "12000"),
        step(2, "taken", None, None, "2000"),
        step(3, "sold", BUYER, WAREHOUSE, None),
    ]
    corrected = [Step(BATCH, 1, "created", at(1), SELLER, PIT, D(10000), 0), *steps[1:]]

    position, movements = replay(corrected)

    assert position == Position(BUYER, WAREHOUSE, D(8000))
    assert sorted((m.entry, m.kg) for m in movements) == [
        (3, D(10000)),
        (4, D(-2000)),
        (6, D(-8000)),
        (7, D(8000)),
    ]


def test_stock_at_a_moment_sums_the_movements_up_to_it() -> None:
    _, movements = replay(
        [step(1, "created", SELLER, PIT, "1000"), step(2, "sold", BUYER, WAREHOUSE, None)]
    )
    before_the_sale = [m for m in movements if m.occurred_at <= at(1)]

    assert lots_from(before_the_sale) == [(SELLER, PIT, BATCH, D(1000))]
    assert lots_from(movements) == [(BUYER, WAREHOUSE, BATCH, D(1000))]


def test_holdings_carry_each_element_s_mass_exactly() -> None:
    second = uuid4()
    batches = {
        BATCH: batch_row({"Nd": D("0.031"), "Dy": D("0.0005")}),
        second: batch_row({"Nd": D("0.1")}, id=second),
    }
    lots = [(SELLER, PIT, BATCH, D("1000.000001")), (SELLER, PIT, second, D("0.1"))]

    [held] = holdings(lots, batches)

    assert (held.kg, held.batches) == (D("1000.100001"), 2)
    assert held.elements == {"Dy": D("0.5000000005"), "Nd": D("31.01000003100")}


def test_consumed_batches_hold_nothing() -> None:
    consumed = HeldBatch(BATCH, 3, "X/LOT", "ore", {}, SELLER, PIT, D(0), "consumed", T0)
    void = HeldBatch(uuid4(), 2, "X/V", "ore", {}, SELLER, PIT, D(0), "void", T0)

    assert lots_now([consumed, void]) == []


# --- the projection, through an in-memory writer -----------------------------------------


class MemoryWriter:
    """The inventory's rows in dictionaries: what a view's writer does, without one."""

    def __init__(self) -> None:
        self.batches: dict[UUID, HeldBatch] = {}
        self.step_rows: dict[tuple[UUID, int], Step] = {}
        self.movement_rows: dict[tuple[UUID, int], Movement] = {}
        self.places: dict[UUID, Place] = {}

    def batch(self, id: UUID) -> HeldBatch | None:
        return self.batches.get(id)

    def steps(self, id: UUID) -> list[Step]:
        return sorted(
            (s for (b, _), s in self.step_rows.items() if b == id), key=lambda s: s.version
        )

    def save_batch(self, row: HeldBatch) -> None:
        self.batches[row.id] = row

    def save_steps(self, steps: Sequence[Step]) -> None:
        self.step_rows |= {(s.batch_id, s.version): s for s in steps}

    def save_movements(self, movements: Sequence[Movement]) -> None:
        self.movement_rows |= {(m.batch_id, m.entry): m for m in movements}

    def save_place(self, place: Place) -> None:
        self.places[place.id] = place


def projected(ledger: Ledger) -> MemoryWriter:
    writer = MemoryWriter()
    projection = InventoryProjection()
    for item in NotificationLogFeed(ledger.recorder, ledger.mapper).poll(lambda _: 0, 10_000):
        projection.process_event(item.event, writer)
    return writer


@pytest.fixture
def chain_ledger() -> Iterator[Ledger]:
    ledger = Ledger(memory_env(), clock=lambda: NOW)
    record_chain(ledger)
    yield ledger
    ledger.close()


@pytest.fixture
def chain(chain_ledger: Ledger) -> MemoryWriter:
    return projected(chain_ledger)


def held_by(writer: MemoryWriter, actor: str, at_: datetime | None = None) -> dict[str, D]:
    """Kg per facility code that ``actor`` holds now, or at ``at_``."""
    movements = [m for m in writer.movement_rows.values() if at_ is None or m.occurred_at <= at_]
    lots = lots_from(movements)
    codes = {id: p.code for id, p in writer.places.items()}
    result: dict[str, D] = {}
    for holding in holdings(lots, writer.batches):
        if holding.actor_id == ids.actor_id(actor):
            where = (
                codes.get(holding.facility_id, "in transit")
                if holding.facility_id
                else "in transit"
            )
            result[where] = result.get(where, D(0)) + holding.kg
    return result


def test_the_chain_s_stock_now_is_what_each_actor_holds(chain: MemoryWriter) -> None:
    assert held_by(chain, "NORTH") == {"N-MINE": D(4000), "N-SEP": D(50)}
    assert held_by(chain, "TRADER") == {"T-WH": D(100)}
    assert held_by(chain, "AUTO") == {"A-PLANT": D("199.5")}
    assert held_by(chain, "SOUTH") == {}


def test_the_chain_s_stock_in_the_past_is_where_the_material_was_then(chain: MemoryWriter) -> None:
    assert held_by(chain, "SOUTH", at(1)) == {"S-MINE": D(100000)}
    assert held_by(chain, "NORTH", at(2)) == {"N-MINE": D(10000), "N-SEP": D(100000)}
    assert held_by(chain, "TRADER", at(5)) == {"T-WH": D(500)}
    assert held_by(chain, "NORTH", at(12)) == {
        "N-MINE": D(4000),
        "N-SEP": D(50),
        "in transit": D(200),
    }


def test_the_stock_now_from_each_batch_is_the_sum_of_all_movements(chain: MemoryWriter) -> None:
    now = holdings(lots_now(chain.batches.values()), chain.batches)

    assert now == holdings(lots_from(chain.movement_rows.values()), chain.batches)


def test_replaying_each_batch_s_steps_rewrites_the_movements_it_has(chain: MemoryWriter) -> None:
    for id in chain.batches:
        position, movements = replay(chain.steps(id))

        assert {(m.batch_id, m.entry): m for m in movements} == {
            k: m for k, m in chain.movement_rows.items() if k[0] == id
        }
        assert position.remaining_kg == chain.batches[id].remaining_kg


def test_a_repeated_event_changes_nothing(chain_ledger: Ledger, chain: MemoryWriter) -> None:
    before = (dict(chain.batches), dict(chain.step_rows), dict(chain.movement_rows))
    projection = InventoryProjection()

    feed = NotificationLogFeed(chain_ledger.recorder, chain_ledger.mapper)
    for item in feed.poll(lambda _: 0, 10_000):
        projection.process_event(item.event, chain)

    assert (chain.batches, chain.step_rows, chain.movement_rows) == before
