"""What supply-chain actors submit: one model per event type, and the bulk envelope.

Masses are decimals (JSON numbers or strings), kilograms, at most 6 decimal places;
compositions are mass fractions per element symbol. Each model turns into one ledger
command; the domain then checks every invariant.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from lodestone.domain.chain import OutputSpec, UntracedInput
from lodestone.ledger import commands as c

Kg = Annotated[Decimal, Field(description="kilograms, exact decimal", examples=["1250.5"])]
Composition = Annotated[
    dict[str, Decimal],
    Field(description="mass fraction per element symbol", examples=[{"Nd": "0.235", "Pr": "0.07"}]),
]
Ref = Annotated[str, Field(min_length=1, max_length=200)]
BatchRef = Annotated[
    str,
    Field(min_length=1, max_length=200, description="ACTOR/LOT, a batch id, or your own lot code"),
]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StepIn(Strict):
    occurred_at: AwareDatetime | None = Field(
        None, description="When the step happened (defaults to when it is recorded)"
    )
    actor: Ref | None = Field(None, description="Admins only: the actor this step is reported for")

    def step_fields(self) -> dict[str, object]:
        return {"occurred_at": self.occurred_at, "actor": self.actor}


class OreExtracted(StepIn):
    type: Literal["OreExtracted"] = "OreExtracted"
    facility: Ref
    quota: Ref = Field(description="The mining quota's number; its REO content draws it down")
    lot_code: Ref
    mass_kg: Kg
    composition: Composition

    def to_command(self) -> c.Command:
        return c.ExtractOre(
            facility=self.facility,
            quota=self.quota,
            lot_code=self.lot_code,
            mass_kg=self.mass_kg,
            composition=dict(self.composition),
            **self.step_fields(),
        )


class ScrapCollected(StepIn):
    type: Literal["ScrapCollected"] = "ScrapCollected"
    facility: Ref
    lot_code: Ref
    mass_kg: Kg
    composition: Composition
    source: Annotated[str, Field(max_length=500, description="e.g. end-of-life EV motors")]

    def to_command(self) -> c.Command:
        return c.CollectScrap(
            facility=self.facility,
            lot_code=self.lot_code,
            mass_kg=self.mass_kg,
            composition=dict(self.composition),
            source=self.source,
            **self.step_fields(),
        )


class TakenIn(Strict):
    batch: BatchRef
    mass_kg: Kg


class OutputIn(Strict):
    lot_code: Ref
    material: Ref
    mass_kg: Kg
    composition: Composition


class UntracedIn(Strict):
    name: Annotated[str, Field(max_length=200, examples=["iron"])]
    mass_kg: Kg
    composition: Composition = Field(default_factory=dict)


class BatchTransformed(StepIn):
    type: Literal["BatchTransformed"] = "BatchTransformed"
    facility: Ref
    process: Ref = Field(
        description="beneficiation, separation, reduction, alloying, magnet_making, recycling"
    )
    reference: Ref = Field(description="Your work order; unique per actor")
    inputs: list[TakenIn] = Field(max_length=5000)
    outputs: list[OutputIn] = Field(max_length=1000)
    untraced_inputs: list[UntracedIn] = Field(default_factory=list, max_length=100)
    tolerance: Decimal | None = Field(None, description="Declared process tolerance (fraction)")
    quota: Ref | None = Field(None, description="Separation quota number (separation only)")

    def to_command(self) -> c.Command:
        return c.Transform(
            facility=self.facility,
            process=self.process,
            reference=self.reference,
            inputs=[(i.batch, i.mass_kg) for i in self.inputs],
            outputs=[
                OutputSpec(o.lot_code, o.material, o.mass_kg, dict(o.composition))
                for o in self.outputs
            ],
            untraced_inputs=[
                UntracedInput(u.name, u.mass_kg, dict(u.composition)) for u in self.untraced_inputs
            ],
            tolerance=self.tolerance,
            quota=self.quota,
            **self.step_fields(),
        )


class PartIn(Strict):
    lot_code: Ref
    mass_kg: Kg


class BatchSplit(StepIn):
    type: Literal["BatchSplit"] = "BatchSplit"
    batch: BatchRef
    parts: list[PartIn] = Field(max_length=1000)

    def to_command(self) -> c.Command:
        return c.Split(
            batch=self.batch,
            parts=[(p.lot_code, p.mass_kg) for p in self.parts],
            **self.step_fields(),
        )


class BatchesMerged(StepIn):
    type: Literal["BatchesMerged"] = "BatchesMerged"
    lot_code: Ref
    inputs: list[TakenIn] = Field(max_length=5000)

    def to_command(self) -> c.Command:
        return c.Merge(
            lot_code=self.lot_code,
            inputs=[(i.batch, i.mass_kg) for i in self.inputs],
            **self.step_fields(),
        )


class CustodyTransferred(StepIn):
    type: Literal["CustodyTransferred"] = "CustodyTransferred"
    batch: BatchRef
    buyer: Ref = Field(description="The client: a registered actor's code")
    contract: Ref
    to_facility: Ref | None = Field(
        None, description="Where the goods go (the buyer's, a warehouse or a port)"
    )
    price: Decimal | None = Field(
        None, description="Total contract price for the whole batch (not per kg)"
    )
    currency: Annotated[str, Field(max_length=3, description="ISO 4217, with a price")] = ""

    def to_command(self) -> c.Command:
        return c.TransferCustody(
            batch=self.batch,
            buyer=self.buyer,
            contract=self.contract,
            to_facility=self.to_facility,
            price=self.price,
            currency=self.currency,
            **self.step_fields(),
        )


class BatchMoved(StepIn):
    type: Literal["BatchMoved"] = "BatchMoved"
    batch: BatchRef
    to_facility: Ref = Field(description="Another of your facilities, or a warehouse or port")

    def to_command(self) -> c.Command:
        return c.MoveBatch(batch=self.batch, to_facility=self.to_facility, **self.step_fields())


class ShipmentExported(StepIn):
    type: Literal["ShipmentExported"] = "ShipmentExported"
    batch: BatchRef
    licence: Ref
    consignee: Ref
    destination_country: Annotated[str, Field(min_length=2, max_length=2)]
    end_user: Ref
    customs_code: Annotated[str, Field(min_length=4, max_length=12, examples=["8505.11"])]

    def to_command(self) -> c.Command:
        return c.ExportShipment(
            batch=self.batch,
            licence=self.licence,
            consignee=self.consignee,
            destination_country=self.destination_country,
            end_user=self.end_user,
            customs_code=self.customs_code,
            **self.step_fields(),
        )


class ShipmentReceived(StepIn):
    type: Literal["ShipmentReceived"] = "ShipmentReceived"
    batch: BatchRef
    facility: Ref
    received_kg: Decimal | None = Field(
        None, description="Measured on arrival; defaults to the shipped mass"
    )

    def to_command(self) -> c.Command:
        return c.ReceiveShipment(
            batch=self.batch,
            facility=self.facility,
            received_kg=self.received_kg,
            **self.step_fields(),
        )


class BatchQuarantined(StepIn):
    type: Literal["BatchQuarantined"] = "BatchQuarantined"
    batch: BatchRef
    reason: Annotated[str, Field(max_length=1000)]

    def to_command(self) -> c.Command:
        return c.Quarantine(batch=self.batch, reason=self.reason, **self.step_fields())


class BatchReleased(StepIn):
    type: Literal["BatchReleased"] = "BatchReleased"
    batch: BatchRef
    reason: Annotated[str, Field(max_length=1000)]

    def to_command(self) -> c.Command:
        return c.Release(batch=self.batch, reason=self.reason, **self.step_fields())


AnyEvent = Annotated[
    OreExtracted
    | ScrapCollected
    | BatchTransformed
    | BatchSplit
    | BatchesMerged
    | CustodyTransferred
    | BatchMoved
    | ShipmentExported
    | ShipmentReceived
    | BatchQuarantined
    | BatchReleased,
    Field(discriminator="type"),
]


class Correction(Strict):
    """A correction of one earlier event of a batch. History is never edited: this is
    recorded as a new event naming the event it corrects."""

    batch: BatchRef
    version: int = Field(ge=1, description="The version of the batch's event being corrected")
    reason: Literal["incorrect-data", "did-not-occur"]
    facts: dict[str, Any] = Field(
        default_factory=dict,
        description="The corrected facts (incorrect-data): for ore extracted or scrap "
        "collected mass_kg, composition, occurred_at; for holds reason, occurred_at; for "
        "sales, moves, exports and receipts occurred_at. Empty for did-not-occur.",
    )
    note: Annotated[str, Field(max_length=2000)] = ""

    def to_command(self) -> c.Command:
        return c.CorrectEvent(
            batch=self.batch,
            version=self.version,
            reason=self.reason,
            facts=self.facts,
            note=self.note,
        )


class BulkIn(Strict):
    """Many events stored whole or not at all, in the order given."""

    events: list[AnyEvent] = Field(min_length=1, max_length=10_000)


#: path segment -> model, for the one-event-per-request endpoints
EVENT_PATHS: dict[str, type[StepIn]] = {
    "ore-extracted": OreExtracted,
    "scrap-collected": ScrapCollected,
    "batch-transformed": BatchTransformed,
    "batch-split": BatchSplit,
    "batches-merged": BatchesMerged,
    "custody-transferred": CustodyTransferred,
    "batch-moved": BatchMoved,
    "shipment-exported": ShipmentExported,
    "shipment-received": ShipmentReceived,
    "batch-quarantined": BatchQuarantined,
    "batch-released": BatchReleased,
}
