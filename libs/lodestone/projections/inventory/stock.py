"""Stock from steps, without a database: how each step moves a batch's mass
(:func:`advance`, :func:`replay`), and what a set of batches or movements amounts to per
holder, place and material, with the mass of each element (:func:`holdings`).

Every figure is exact: masses are ``Decimal`` kilograms, element masses are mass x
mass fraction, summed in the ledger's exact context.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from uuid import UUID

from lodestone.domain.values import EXACT, ZERO
from lodestone.projections.inventory.rows import HeldBatch, Movement, Step, Stock
from lodestone.projections.inventory.view import InventoryView

CREATED = "created"
TAKEN = "taken"
SOLD = "sold"
MOVED = "moved"
EXPORTED = "exported"
RECEIVED = "received"
RELOCATIONS = frozenset({SOLD, MOVED, EXPORTED, RECEIVED})

#: Statuses of a batch that still holds mass somewhere (quarantined stock is still held).
HELD = ("active", "quarantined", "in_transit")


@dataclass(frozen=True)
class Position:
    """Who holds a batch, where (no facility: in transit) and how much of it remains."""

    actor_id: UUID | None
    facility_id: UUID | None
    remaining_kg: Decimal


NOWHERE = Position(None, None, ZERO)


def advance(before: Position, step: Step) -> tuple[Position, list[Movement]]:
    """Where ``step`` leaves the batch, and its movements. A step always makes the same
    entries (a creation its leg in, a take its leg out, a relocation both), whatever the
    figures, so that a batch replayed after a correction rewrites every row it had."""
    if step.kind == CREATED:
        kg = ZERO if step.void else _kg(step)
        after = Position(step.actor_id, step.facility_id, kg)
        return after, [_leg(step, 1, after, kg)]
    if step.kind == TAKEN:
        kg = ZERO if step.void else _kg(step)
        after = Position(
            before.actor_id, before.facility_id, EXACT.subtract(before.remaining_kg, kg)
        )
        return after, [_leg(step, 0, before, _negated(kg))]
    if step.kind not in RELOCATIONS:
        raise ValueError(f"step kind {step.kind!r}")
    if step.kind == MOVED:
        to = Position(before.actor_id, step.facility_id, before.remaining_kg)
    elif step.kind == EXPORTED:
        to = Position(before.actor_id, None, before.remaining_kg)
    elif step.kind == RECEIVED:
        to = Position(step.actor_id, step.facility_id, _kg(step))
    else:
        to = Position(step.actor_id, step.facility_id, before.remaining_kg)
    if step.void:  # it did not happen: the batch stayed where it was
        return before, [_leg(step, 0, before, ZERO), _leg(step, 1, to, ZERO)]
    return to, [
        _leg(step, 0, before, _negated(before.remaining_kg)),
        _leg(step, 1, to, to.remaining_kg),
    ]


def replay(steps: Iterable[Step]) -> tuple[Position, list[Movement]]:
    """Every movement of one batch from its steps, in version order."""
    position = NOWHERE
    movements: list[Movement] = []
    for step in sorted(steps, key=lambda s: s.version):
        position, legs = advance(position, step)
        movements += legs
    return position, movements


def _negated(kg: Decimal) -> Decimal:
    # 0 - kg, not -kg: -Decimal(0) is Decimal("-0"), which SQLite would keep as "-0" and
    # PostgreSQL as 0 (the two fingerprints must agree).
    return EXACT.subtract(ZERO, kg)


def _kg(step: Step) -> Decimal:
    if step.kg is None:
        raise ValueError(f"a {step.kind} step without kg")
    return step.kg


def _leg(step: Step, side: int, at: Position, kg: Decimal) -> Movement:
    return Movement(
        step.batch_id,
        2 * step.version + side,
        step.version,
        step.occurred_at,
        at.actor_id,
        at.facility_id,
        kg,
    )


# --- what it amounts to ------------------------------------------------------------------


@dataclass(frozen=True)
class Holding:
    """What one holder holds at one place (none: in transit) of one material."""

    actor_id: UUID | None
    facility_id: UUID | None
    material: str
    kg: Decimal
    batches: int
    elements: dict[str, Decimal]


Lot = tuple[UUID | None, UUID | None, UUID, Decimal]  # holder, place, batch, kg


def lots_now(batches: Iterable[HeldBatch]) -> list[Lot]:
    return [
        (b.actor_id, b.facility_id, b.id, b.remaining_kg)
        for b in batches
        if b.status in HELD and b.remaining_kg != ZERO
    ]


def lots_from(movements: Iterable[Movement]) -> list[Lot]:
    """What each holder held of each batch at each place: the sums of the movements."""
    sums: dict[tuple[UUID | None, UUID | None, UUID], Decimal] = {}
    for m in movements:
        key = (m.actor_id, m.facility_id, m.batch_id)
        sums[key] = EXACT.add(sums.get(key, ZERO), m.kg)
    return [(a, f, b, kg) for (a, f, b), kg in sums.items() if kg != ZERO]


def holdings(lots: Iterable[Lot], batches: Mapping[UUID, HeldBatch]) -> list[Holding]:
    """Lots grouped by holder, place and material, with element masses (kg x mass
    fraction of each batch's composition), sorted by holder, place and material ids."""
    groups: dict[tuple[UUID | None, UUID | None, str], list[tuple[Decimal, HeldBatch]]] = {}
    for actor_id, facility_id, batch_id, kg in lots:
        batch = batches[batch_id]
        groups.setdefault((actor_id, facility_id, batch.material), []).append((kg, batch))
    result = []
    for (actor_id, facility_id, material), found in groups.items():
        result.append(
            Holding(
                actor_id,
                facility_id,
                material,
                _sum(kg for kg, _ in found),
                len(found),
                element_masses(found),
            )
        )
    result.sort(key=lambda h: (str(h.actor_id), str(h.facility_id), h.material))
    return result


def holding_key(actor_id: UUID | None, facility_id: UUID | None, material: str) -> str:
    return f"{actor_id or ''}/{facility_id or ''}/{material}"


#: A change of the stock rows: (holding, element) -> (holder, place, material, kg, batches).
Delta = dict[tuple[str, str], tuple[UUID | None, UUID | None, str, Decimal, int]]


def add_held(delta: Delta, batch: HeldBatch | None, sign: int) -> None:
    """Add to ``delta`` what ``batch`` holds now (``sign`` 1), or take it away (-1): a
    batch counts if it is held (:data:`HELD`) and has mass left, as in :func:`lots_now`."""
    if batch is None or batch.status not in HELD or batch.remaining_kg == ZERO:
        return
    key = holding_key(batch.actor_id, batch.facility_id, batch.material)
    kg = batch.remaining_kg if sign > 0 else _negated(batch.remaining_kg)
    parts = [("", kg), *((e, EXACT.multiply(kg, share)) for e, share in batch.composition.items())]
    for element, mass in parts:
        found = delta.get((key, element))
        total, count = (found[3], found[4]) if found else (ZERO, 0)
        delta[key, element] = (
            batch.actor_id,
            batch.facility_id,
            batch.material,
            EXACT.add(total, mass),
            count + sign,
        )


def holdings_of(rows: Iterable[Stock]) -> list[Holding]:
    """Stock rows as holdings, sorted as :func:`holdings` sorts them: the rows that
    hold something now, each material's elements with it."""
    wholes: dict[str, Stock] = {}
    elements: dict[str, dict[str, Decimal]] = {}
    for row in rows:
        if row.batches <= 0:
            continue
        if row.element:
            elements.setdefault(row.holding, {})[row.element] = row.kg
        else:
            wholes[row.holding] = row
    result = [
        Holding(
            row.actor_id,
            row.facility_id,
            row.material,
            row.kg,
            row.batches,
            dict(sorted(elements.get(key, {}).items())),
        )
        for key, row in wholes.items()
    ]
    result.sort(key=lambda h: (str(h.actor_id), str(h.facility_id), h.material))
    return result


def element_masses(parts: Sequence[tuple[Decimal, HeldBatch]]) -> dict[str, Decimal]:
    elements: dict[str, Decimal] = {}
    for kg, batch in parts:
        for element, share in batch.composition.items():
            elements[element] = EXACT.add(elements.get(element, ZERO), EXACT.multiply(kg, share))
    return dict(sorted(elements.items()))


def _sum(values: Iterable[Decimal]) -> Decimal:
    total = ZERO
    for value in values:
        total = EXACT.add(total, value)
    return total


def stock(
    view: InventoryView,
    *,
    at: datetime | None = None,
    actor_id: UUID | None = None,
    facility_id: UUID | None = None,
) -> list[Holding]:
    """What is held now (``at`` None: the stock rows each event keeps up to date) or at
    ``at`` (event time: the sums of the movements that occurred by then, summed by the
    database), of that holder and at that facility when given."""
    if at is None:
        return view.held_now(actor_id=actor_id, facility_id=facility_id)
    lots = view.lots(at, actor_id=actor_id, facility_id=facility_id)
    return holdings(lots, view.batches({batch for _, _, batch, _ in lots}))
