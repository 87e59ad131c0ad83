"""Batches (lots) and the records that link them.

A batch is an amount of one material at one place in one party's custody. It is never
edited: it is created (extracted, collected, produced, split off, merged), partly or
wholly consumed, split, sold, shipped, received, quarantined and released.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate

from lodestone.domain.recording import LedgerAggregate
from lodestone.domain.refusals import Conflict, Forbidden, RuleBroken
from lodestone.domain.snapshots import TypedSnapshot
from lodestone.domain.values import ZERO, Material


class Status(StrEnum):
    ACTIVE = "active"
    CONSUMED = "consumed"
    IN_TRANSIT = "in_transit"  # exported, not yet received by the consignee
    QUARANTINED = "quarantined"
    VOID = "void"  # its recording was corrected as "did not occur"


class Batch(LedgerAggregate):
    Snapshot = TypedSnapshot
    ENUM_FIELDS = {"status": Status, "material": Material}

    class Step(Aggregate.Event):
        """Every later event on a batch: who reported it and when it happened."""

        reported_by: str
        occurred_at: datetime

        def apply(self, batch: Batch) -> None:
            batch.last_occurred_at = max(batch.last_occurred_at, self.occurred_at)
            self.change(batch)

        def change(self, batch: Batch) -> None:
            raise NotImplementedError

    class Created(Aggregate.Created):
        """What every way of bringing a batch into being records."""

        lot_code: str
        actor_id: UUID
        actor_code: str
        facility_id: UUID
        material: str
        mass_kg: Decimal
        composition: dict[str, Decimal]
        reported_by: str
        occurred_at: datetime

        def apply(self, batch: Batch) -> None:
            batch.lot_code = self.lot_code
            batch.reference = f"{self.actor_code}/{self.lot_code}"
            batch.reporter_id = self.actor_id
            batch.custodian_id = self.actor_id
            batch.facility_id = self.facility_id
            batch.material = Material(self.material)
            batch.initial_kg = self.mass_kg
            batch.remaining_kg = self.mass_kg
            batch.composition = dict(self.composition)
            batch.status = Status.ACTIVE
            batch.created_at = self.occurred_at
            batch.last_occurred_at = self.occurred_at
            batch.parents = []
            batch.holders = [self.actor_id]
            batch.origin = None
            batch.export = None
            batch.quarantine = None
            batch.corrections = []

    class OreExtracted(Created):
        quota_id: UUID
        country: str
        reo_kg: Decimal

        def apply(self, batch: Batch) -> None:
            super().apply(batch)
            batch.origin = {
                "kind": "mined",
                "facility_id": self.facility_id,
                "licence_id": self.quota_id,
                "country": self.country,
            }

    class ScrapCollected(Created):
        """End-of-life magnets or swarf from outside the ledger entering as recycled feed."""

        country: str
        source: str

        def apply(self, batch: Batch) -> None:
            super().apply(batch)
            batch.origin = {
                "kind": "recycled",
                "facility_id": self.facility_id,
                "licence_id": None,
                "country": self.country,
                "source": self.source,
            }

    class Produced(Created):
        """An output of a transformation; ``inputs`` are what the whole step took."""

        transformation_id: UUID
        process: str
        inputs: list[dict[str, Any]]

        def apply(self, batch: Batch) -> None:
            super().apply(batch)
            batch.parents = [dict(i) for i in self.inputs]

    class SplitOff(Created):
        parent_id: UUID

        def apply(self, batch: Batch) -> None:
            super().apply(batch)
            batch.parents = [{"batch_id": self.parent_id, "kg": self.mass_kg}]

    class BatchesMerged(Created):
        inputs: list[dict[str, Any]]

        def apply(self, batch: Batch) -> None:
            super().apply(batch)
            batch.parents = [dict(i) for i in self.inputs]

    class Consumed(Step):
        """Mass taken by a transformation or a merge."""

        kg: Decimal
        remaining_kg: Decimal  # after this event, so readers need no running sum
        cause: str  # transformation | merge
        into_id: UUID
        reported_by: str
        occurred_at: datetime

        def change(self, batch: Batch) -> None:
            batch.set_remaining(self.remaining_kg)

    class BatchSplit(Step):
        parts: list[dict[str, Any]]  # batch_id, lot_code, kg
        remaining_kg: Decimal
        reported_by: str
        occurred_at: datetime

        def change(self, batch: Batch) -> None:
            batch.set_remaining(self.remaining_kg)

    class CustodyTransferred(Step):
        """A sale: the 2025 rules ask exactly for buyer (client) and volume."""

        seller_id: UUID
        buyer_id: UUID
        volume_kg: Decimal
        contract: str
        price: Decimal | None
        currency: str
        to_facility_id: UUID
        reported_by: str
        occurred_at: datetime

        def change(self, batch: Batch) -> None:
            batch.custodian_id = self.buyer_id
            batch.facility_id = self.to_facility_id
            batch.holders = [*batch.holders, self.buyer_id]

    class ShipmentExported(Step):
        """v2: ``shipment`` (the customs declaration or bill of lading number), whether
        the goods were ``controlled``, and ``licence_id`` None for an uncontrolled
        export shipped without a licence."""

        class_version = 2

        licence_id: UUID | None
        exporter_id: UUID
        destination_country: str
        consignee_id: UUID
        end_user: str
        customs_code: str
        kg: Decimal
        shipment: str | None
        controlled: bool
        reported_by: str
        occurred_at: datetime

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            # v1 exports named no shipment, and every one needed a licence.
            state["shipment"] = None
            state["controlled"] = True

        def change(self, batch: Batch) -> None:
            batch.status = Status.IN_TRANSIT
            batch.export = {
                "licence_id": self.licence_id,
                "exporter_id": self.exporter_id,
                "consignee_id": self.consignee_id,
                "destination_country": self.destination_country,
                "kg": self.kg,
                "shipment": self.shipment,
                "controlled": self.controlled,
            }

    class ShipmentReceived(Step):
        """v2: ``shipment``, the number of the shipment received (None before v2)."""

        class_version = 2

        receiver_id: UUID
        facility_id: UUID
        received_kg: Decimal
        shipment: str | None
        reported_by: str
        occurred_at: datetime

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["shipment"] = None

        def change(self, batch: Batch) -> None:
            batch.status = Status.ACTIVE
            batch.custodian_id = self.receiver_id
            batch.holders = [*batch.holders, self.receiver_id]
            batch.facility_id = self.facility_id
            batch.remaining_kg = self.received_kg
            batch.export = None

    class BatchMoved(Step):
        """The holder moves a batch between its own facilities (or to a warehouse or port)."""

        from_facility_id: UUID
        to_facility_id: UUID
        reported_by: str
        occurred_at: datetime

        def change(self, batch: Batch) -> None:
            batch.facility_id = self.to_facility_id

    class BatchQuarantined(Step):
        reason: str
        by_role: str
        reported_by: str
        occurred_at: datetime

        def change(self, batch: Batch) -> None:
            batch.quarantine = {
                "reason": self.reason,
                "by_role": self.by_role,
                "previous_status": batch.status.value,
            }
            batch.status = Status.QUARANTINED

    class Corrected(Aggregate.Event):
        """A correction of one earlier event of this batch. History is never edited: the
        corrected event stays as it was recorded, and this one says which event it
        corrects, why, the corrected facts, and the batch fields as they now are."""

        number: int  # the n-th correction of this batch
        corrects_version: int
        corrects_type: str
        reason: str  # incorrect-data | did-not-occur
        note: str
        facts: dict[str, Any]  # the corrected facts; empty for did-not-occur
        resulting: dict[str, Any]  # batch fields the correction changes, as they now are
        by_role: str
        reported_by: str
        occurred_at: datetime  # when the correction was made

        def apply(self, batch: Batch) -> None:
            for name, value in self.resulting.items():
                setattr(batch, name, Status(value) if name == "status" else value)
            batch.corrections = [
                *getattr(batch, "corrections", []),
                {
                    "number": self.number,
                    "version": self.originator_version,
                    "corrects_version": self.corrects_version,
                    "corrects_type": self.corrects_type,
                    "reason": self.reason,
                    "note": self.note,
                    "facts": dict(self.facts),
                    "by_role": self.by_role,
                    "reported_by": self.reported_by,
                    "corrected_at": self.occurred_at,
                },
            ]

    class BatchReleased(Step):
        reason: str
        restored_status: str  # what the batch was before the hold
        reported_by: str
        occurred_at: datetime

        def change(self, batch: Batch) -> None:
            batch.status = Status(self.restored_status)
            batch.quarantine = None

    lot_code: str
    reference: str  # ACTOR/LOT, how every party can name it
    reporter_id: UUID
    custodian_id: UUID
    facility_id: UUID
    material: Material
    initial_kg: Decimal
    remaining_kg: Decimal
    composition: dict[str, Decimal]
    status: Status
    created_at: datetime
    last_occurred_at: datetime  # the latest step: nothing may be dated before it
    parents: list[dict[str, Any]]
    holders: list[UUID]  # every actor that has held it: the parties to its trades
    origin: dict[str, Any] | None
    export: dict[str, Any] | None
    quarantine: dict[str, Any] | None
    corrections: list[dict[str, Any]]  # every correction of its history, oldest first

    def __init__(self) -> None:
        pass

    def set_remaining(self, kg: Decimal) -> None:
        """State change only (runs on every reload); the checks are in ``check_take``."""
        self.remaining_kg = kg
        if kg == ZERO:
            self.status = Status.CONSUMED

    # --- checks: every one raises a Refusal naming ``field`` ---------------------------

    def check_movable(self, field: str) -> None:
        """Nothing moves a consumed, shipped or quarantined batch."""
        if self.status is not Status.ACTIVE:
            why = {
                Status.CONSUMED: "has been wholly consumed",
                Status.IN_TRANSIT: "is in transit on an export shipment",
                Status.QUARANTINED: "is quarantined",
                Status.VOID: "was corrected as never having existed",
            }[self.status]
            rule = f"batch-{self.status.value.replace('_', '-')}"
            raise Conflict(field, rule, f"batch {self.lot_code} {why}")

    def check_custodian(self, actor: UUID, field: str) -> None:
        if self.custodian_id != actor:
            raise Forbidden(
                field, "custody", f"batch {self.lot_code} is in the custody of another actor"
            )

    def check_take(self, kg: Decimal, field: str) -> None:
        if kg > self.remaining_kg:
            raise RuleBroken(
                field,
                "mass-available",
                f"cannot take {kg} kg from batch {self.lot_code}: only {self.remaining_kg} kg remain",
            )

    def check_chronology(self, at: datetime, field: str) -> None:
        """A step cannot happen before the batch's latest recorded step (its creation,
        a sale, a shipment...): a receipt dated before its shipment is refused."""
        if at < self.last_occurred_at:
            raise RuleBroken(
                field,
                "chronology",
                f"{at.isoformat()} is before the latest step of batch {self.lot_code} "
                f"({self.last_occurred_at.isoformat()})",
            )


class Transformation(LedgerAggregate):
    """The whole record of one processing step: inputs taken, outputs made, untraced
    material declared, the tolerance claimed and any quota drawn."""

    class BatchTransformed(Aggregate.Created):
        actor_id: UUID
        facility_id: UUID
        process: str
        reference: str
        inputs: list[dict[str, Any]]  # batch_id, kg
        outputs: list[dict[str, Any]]  # batch_id, lot_code, material, kg, composition
        untraced_inputs: list[dict[str, Any]]  # name, kg, composition
        tolerance: Decimal
        quota_id: UUID | None
        quota_drawn_kg: Decimal
        reported_by: str
        occurred_at: datetime

        def apply(self, record: Transformation) -> None:
            record.process = self.process
            record.facility_id = self.facility_id
            record.inputs = self.inputs
            record.outputs = self.outputs

    process: str
    facility_id: UUID
    inputs: list[dict[str, Any]]
    outputs: list[dict[str, Any]]

    def __init__(self) -> None:
        pass
