"""Turns ledger events into stock: each batch's place, holder and remaining mass, and
every change of them as signed, dated movements.

Each event of a batch is a step from where the batch was (read back through the
writer) to where it is after; the step is kept, so that a correction, which changes a
step's time or mass after the fact, or says it never happened, replays the batch's
steps and rewrites its movements (same keys, new figures). A batch's events arrive in
order, whatever the interleaving with other batches; an event of a version the view
already has is a repeat and changes nothing. Times are kept in UTC.

Stock is by event time (``occurred_at``: when the step happened, as reported and as
corrected since), not by when it was recorded.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from lodestone.domain.actors import Actor, Facility
from lodestone.domain.batches import Batch
from lodestone.domain.values import EXACT, ZERO
from lodestone.projections.base import Dispatching, handles
from lodestone.projections.inventory.rows import HeldBatch, Place, Step
from lodestone.projections.inventory.stock import (
    CREATED,
    EXPORTED,
    MOVED,
    RECEIVED,
    SOLD,
    TAKEN,
    Position,
    advance,
    replay,
)
from lodestone.projections.inventory.view import Writer

NAME = "inventory"
# Bump when the rows change meaning: a rebuild from position 0 follows.
# 2: what is held now kept as stock rows (inventory_stock) updated by each event.
VERSION = 2

DID_NOT_OCCUR = "did-not-occur"


def utc(moment: datetime) -> datetime:
    """Instants in UTC: SQLite compares times as text, which holds for one offset only."""
    return moment.astimezone(UTC)


class InventoryProjection(Dispatching):
    name = NAME
    version = VERSION

    @handles(Batch.Created)
    def _created(self, event: Batch.Created, writer: Writer) -> None:
        if writer.batch(event.originator_id) is not None:
            return  # a repeat
        at = utc(event.occurred_at)
        made = HeldBatch(
            event.originator_id,
            event.originator_version,
            f"{event.actor_code}/{event.lot_code}",
            event.material,
            dict(event.composition),
            None,
            None,
            ZERO,
            "active",
            at,
        )
        step = Step(
            event.originator_id,
            event.originator_version,
            CREATED,
            at,
            event.actor_id,
            event.facility_id,
            event.mass_kg,
            0,
        )
        self._step(writer, made, step)

    @handles(Batch.Consumed)
    def _consumed(self, event: Batch.Consumed, writer: Writer) -> None:
        self._taken(event, writer, event.kg)

    @handles(Batch.BatchSplit)
    def _split(self, event: Batch.BatchSplit, writer: Writer) -> None:
        taken = ZERO
        for part in event.parts:
            taken = EXACT.add(taken, Decimal(part["kg"]))
        self._taken(event, writer, taken)

    def _taken(self, event: Any, writer: Writer, kg: Decimal) -> None:
        batch = self._next(event, writer)
        if batch is not None:
            self._step(writer, batch, self._fact(event, TAKEN, None, None, kg))

    @handles(Batch.CustodyTransferred)
    def _sold(self, event: Batch.CustodyTransferred, writer: Writer) -> None:
        batch = self._next(event, writer)
        if batch is not None:
            step = self._fact(event, SOLD, event.buyer_id, event.to_facility_id, None)
            self._step(writer, batch, step)

    @handles(Batch.BatchMoved)
    def _moved(self, event: Batch.BatchMoved, writer: Writer) -> None:
        batch = self._next(event, writer)
        if batch is not None:
            step = self._fact(event, MOVED, batch.actor_id, event.to_facility_id, None)
            self._step(writer, batch, step)

    @handles(Batch.ShipmentExported)
    def _exported(self, event: Batch.ShipmentExported, writer: Writer) -> None:
        batch = self._next(event, writer)
        if batch is not None:
            step = self._fact(event, EXPORTED, batch.actor_id, None, None)
            self._step(writer, batch, step, status="in_transit")

    @handles(Batch.ShipmentReceived)
    def _received(self, event: Batch.ShipmentReceived, writer: Writer) -> None:
        batch = self._next(event, writer)
        if batch is not None:
            step = self._fact(
                event, RECEIVED, event.receiver_id, event.facility_id, event.received_kg
            )
            self._step(writer, batch, step, status="active")

    @handles(Batch.BatchQuarantined)
    def _quarantined(self, event: Batch.BatchQuarantined, writer: Writer) -> None:
        batch = self._next(event, writer)
        if batch is not None:
            writer.save_batch(
                replace(batch, version=event.originator_version, status="quarantined")
            )

    @handles(Batch.BatchReleased)
    def _released(self, event: Batch.BatchReleased, writer: Writer) -> None:
        batch = self._next(event, writer)
        if batch is not None:
            writer.save_batch(
                replace(batch, version=event.originator_version, status=event.restored_status)
            )

    @handles(Batch.Corrected)
    def _corrected(self, event: Batch.Corrected, writer: Writer) -> None:
        """The corrected step takes its new time or mass (or is void), and the batch's
        movements are replayed from its steps: a sale dated a day earlier moves the stock
        a day earlier; an ore lot that was 10 t, not 12 t, was 10 t at every place it
        has been since."""
        batch = self._next(event, writer)
        if batch is None:
            return
        steps = {s.version: s for s in writer.steps(batch.id)}
        target = steps.get(event.corrects_version)
        if target is not None:  # a hold's correction changes no step
            steps[target.version] = corrected(target, event.reason, event.facts)
            writer.save_steps([steps[target.version]])
        position, movements = replay(steps.values())
        writer.save_movements(movements)
        resulting = event.resulting
        writer.save_batch(
            replace(
                batch,
                version=event.originator_version,
                composition=dict(resulting.get("composition", batch.composition)),
                actor_id=position.actor_id,
                facility_id=position.facility_id,
                remaining_kg=position.remaining_kg,
                status=str(resulting.get("status", batch.status)),
                created_at=utc(_time(resulting["created_at"]))
                if "created_at" in resulting
                else batch.created_at,
            )
        )

    @handles(Actor.Registered)
    def _actor(self, event: Actor.Registered, writer: Writer) -> None:
        writer.save_place(
            Place(event.originator_id, "actor", event.code, event.name, event.country, "", None)
        )

    @handles(Facility.Registered)
    def _facility(self, event: Facility.Registered, writer: Writer) -> None:
        writer.save_place(
            Place(
                event.originator_id,
                "facility",
                event.code,
                event.name,
                event.country,
                event.kind,
                event.owner_id,
            )
        )

    # --- steps -------------------------------------------------------------------------

    @staticmethod
    def _next(event: Any, writer: Writer) -> HeldBatch | None:
        """The batch this event is the next version of; None for a repeat."""
        batch = writer.batch(event.originator_id)
        if batch is None or batch.version >= event.originator_version:
            return None
        return batch

    @staticmethod
    def _fact(event: Any, kind: str, actor: Any, facility: Any, kg: Decimal | None) -> Step:
        return Step(
            event.originator_id,
            event.originator_version,
            kind,
            utc(event.occurred_at),
            actor,
            facility,
            kg,
            0,
        )

    @staticmethod
    def _step(writer: Writer, batch: HeldBatch, step: Step, status: str | None = None) -> None:
        before = Position(batch.actor_id, batch.facility_id, batch.remaining_kg)
        after, movements = advance(before, step)
        if status is None:
            status = "consumed" if after.remaining_kg == ZERO else batch.status
        writer.save_steps([step])
        writer.save_movements(movements)
        writer.save_batch(
            replace(
                batch,
                version=step.version,
                actor_id=after.actor_id,
                facility_id=after.facility_id,
                remaining_kg=after.remaining_kg,
                status=status,
            )
        )


def corrected(step: Step, reason: str, facts: dict[str, Any]) -> Step:
    """``step`` as a correction states it now: void, or with its new time or mass."""
    if reason == DID_NOT_OCCUR:
        return replace(step, void=1)
    if "occurred_at" in facts:
        step = replace(step, occurred_at=utc(_time(facts["occurred_at"])))
    if "mass_kg" in facts and step.kind == CREATED:
        step = replace(step, kg=Decimal(str(facts["mass_kg"])))
    return step


def _time(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
