"""What supply-chain actors submit: one model per kind of event, and the bulk envelope.

Masses are decimals (JSON numbers or strings), kilograms, at most 6 decimal places;
compositions are mass fractions per element symbol. Each model turns into one ledger
command; the domain then checks every invariant.

The event models are the table of event kinds: each declares its path, the text of its
endpoint and its ledger command (which says who may submit it). The endpoints, their
OpenAPI text, the bulk envelope's union and the problem locations are all derived from
``EVENT_PATHS``, which the models fill as they are defined.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, Union

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from lodestone.domain.chain import OutputSpec, UntracedInput
from lodestone.gateway.schemas.base import CommandIn, ExactDecimal, Strict
from lodestone.ledger import commands as c
from lodestone.ledger.application import MAX_BULK

Kg = Annotated[ExactDecimal, Field(description="kilograms, exact decimal", examples=["1250.5"])]
Composition = Annotated[
    dict[Annotated[str, Field(max_length=3)], ExactDecimal],
    Field(
        max_length=118,  # one entry per element at most
        description="mass fraction per element symbol",
        examples=[{"Nd": "0.235", "Pr": "0.07"}],
    ),
]
Ref = Annotated[str, Field(min_length=1, max_length=200)]
BatchRef = Annotated[
    str,
    Field(min_length=1, max_length=200, description="ACTOR/LOT, a batch id, or your own lot code"),
]

#: path segment -> model, for the one-event-per-request endpoints, in definition order
EVENT_PATHS: dict[str, type[EventIn]] = {}


class EventIn(CommandIn):
    """A step of the chain as reported: one kind of event per subclass."""

    #: The endpoint's path segment under /v1/events
    path: ClassVar[str]
    #: The endpoint's OpenAPI description
    description: ClassVar[str]
    command: ClassVar[type[c.ReportStep]]
    request_only = frozenset({"type"})

    occurred_at: AwareDatetime | None = Field(
        None, description="When the step happened (defaults to when it is recorded)"
    )
    actor: Ref | None = Field(None, description="Admins only: the actor this step is reported for")

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        # The bulk envelope tells kinds apart by ``type``, and problems drop the tag from
        # error locations by model name: the two must be the same.
        if cls.model_fields["type"].default != cls.__name__:
            raise TypeError(f"{cls.__name__}: its type tag must be {cls.__name__!r}")
        if cls.path in EVENT_PATHS:
            raise TypeError(
                f"{cls.__name__}: path {cls.path} is {EVENT_PATHS[cls.path].__name__}'s"
            )
        EVENT_PATHS[cls.path] = cls


class OreExtracted(EventIn):
    path = "ore-extracted"
    description = "Ore leaves a mine under a mining quota; its REO content draws the quota down."
    command = c.ExtractOre

    type: Literal["OreExtracted"] = "OreExtracted"
    facility: Ref
    quota: Ref = Field(description="The mining quota's number; its REO content draws it down")
    lot_code: Ref
    mass_kg: Kg
    composition: Composition


class ScrapCollected(EventIn):
    path = "scrap-collected"
    description = (
        "Recycled feed (end-of-life magnets, swarf) enters the chain as an origin of its own."
    )
    command = c.CollectScrap

    type: Literal["ScrapCollected"] = "ScrapCollected"
    facility: Ref
    lot_code: Ref
    mass_kg: Kg
    composition: Composition
    source: Annotated[str, Field(max_length=500, description="e.g. end-of-life EV motors")]


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


class BatchTransformed(EventIn):
    path = "batch-transformed"
    description = (
        "A processing step: inputs (batches and the mass taken from each) become new output batches. "
        "Per element and in total, outputs may not exceed inputs plus declared untraced material "
        "(iron, boron) beyond the declared tolerance. Separation draws a separation quota."
    )
    command = c.Transform

    type: Literal["BatchTransformed"] = "BatchTransformed"
    facility: Ref
    process: Ref = Field(
        description="beneficiation, separation, reduction, alloying, magnet_making, recycling"
    )
    reference: Ref = Field(description="Your work order; unique per actor")
    inputs: list[TakenIn] = Field(max_length=5000)
    outputs: list[OutputIn] = Field(max_length=1000)
    untraced_inputs: list[UntracedIn] = Field(default_factory=list, max_length=100)
    tolerance: ExactDecimal | None = Field(
        None, description="Declared process tolerance (fraction)"
    )
    quota: Ref | None = Field(None, description="Separation quota number (separation only)")

    def converted(self) -> dict[str, object]:
        return {
            "inputs": [(i.batch, i.mass_kg) for i in self.inputs],
            "outputs": [
                OutputSpec(o.lot_code, o.material, o.mass_kg, dict(o.composition))
                for o in self.outputs
            ],
            "untraced_inputs": [
                UntracedInput(u.name, u.mass_kg, dict(u.composition)) for u in self.untraced_inputs
            ],
        }


class PartIn(Strict):
    lot_code: Ref
    mass_kg: Kg


class BatchSplit(EventIn):
    path = "batch-split"
    description = "One batch becomes several; what is not split off stays with it."
    command = c.Split

    type: Literal["BatchSplit"] = "BatchSplit"
    batch: BatchRef
    parts: list[PartIn] = Field(max_length=1000)

    def converted(self) -> dict[str, object]:
        return {"parts": [(p.lot_code, p.mass_kg) for p in self.parts]}


class BatchesMerged(EventIn):
    path = "batches-merged"
    description = (
        "Batches of one material at one facility become one, with their mass-weighted composition."
    )
    command = c.Merge

    type: Literal["BatchesMerged"] = "BatchesMerged"
    lot_code: Ref
    inputs: list[TakenIn] = Field(max_length=5000)

    def converted(self) -> dict[str, object]:
        return {"inputs": [(i.batch, i.mass_kg) for i in self.inputs]}


class CustodyTransferred(EventIn):
    path = "custody-transferred"
    description = (
        "A sale: the whole batch passes to the buyer (the client), with contract and volume."
    )
    command = c.TransferCustody

    type: Literal["CustodyTransferred"] = "CustodyTransferred"
    batch: BatchRef
    buyer: Ref = Field(description="The client: a registered actor's code")
    contract: Ref
    to_facility: Ref | None = Field(
        None, description="Where the goods go (the buyer's, a warehouse or a port)"
    )
    price: ExactDecimal | None = Field(
        None, description="Total contract price for the whole batch (not per kg)"
    )
    currency: Annotated[str, Field(max_length=3, description="ISO 4217, with a price")] = ""


class BatchMoved(EventIn):
    path = "batch-moved"
    description = "The holder moves a batch between its own facilities, or to a warehouse or port."
    command = c.MoveBatch

    type: Literal["BatchMoved"] = "BatchMoved"
    batch: BatchRef
    to_facility: Ref = Field(description="Another of your facilities, or a warehouse or port")


class ShipmentExported(EventIn):
    path = "shipment-exported"
    description = (
        "Goods leave the country as a numbered shipment. Controlled goods (the metals, alloys, "
        "oxides and compounds of Sm, Gd, Tb, Dy, Lu, Sc and Y; SmCo magnets; NdFeB magnets "
        "containing Tb or Dy, each above 0.01 wt%) need an export licence: item, customs code, "
        "destination, consignee, end user, validity and remaining quantity are checked, and the "
        "licence is drawn. Uncontrolled goods (a plain NdFeB magnet, La/Ce products) may ship "
        "without one and are recorded as uncontrolled."
    )
    command = c.ExportShipment

    type: Literal["ShipmentExported"] = "ShipmentExported"
    batch: BatchRef
    shipment: Annotated[
        str,
        Field(
            min_length=1,
            max_length=64,
            description="The customs declaration or bill of lading number",
            examples=["BL-2026-000117"],
        ),
    ]
    licence: Ref | None = Field(None, description="Required for controlled goods")
    consignee: Ref
    destination_country: Annotated[str, Field(min_length=2, max_length=2)]
    end_user: Ref
    customs_code: Annotated[str, Field(min_length=4, max_length=16, examples=["8505.11"])]


class ShipmentReceived(EventIn):
    path = "shipment-received"
    description = "The consignee takes delivery abroad; a shortfall is recorded, a surplus refused."
    command = c.ReceiveShipment

    type: Literal["ShipmentReceived"] = "ShipmentReceived"
    batch: BatchRef
    facility: Ref
    received_kg: ExactDecimal | None = Field(
        None, description="Measured on arrival; defaults to the shipped mass"
    )
    shipment: Annotated[str, Field(min_length=1, max_length=64)] | None = Field(
        None, description="The shipment received; must be the one the batch left on"
    )


class BatchQuarantined(EventIn):
    path = "batch-quarantined"
    description = (
        "A hold: nothing moves the batch until it is released (custodian, regulator, admin)."
    )
    command = c.Quarantine

    type: Literal["BatchQuarantined"] = "BatchQuarantined"
    batch: BatchRef
    reason: Annotated[str, Field(max_length=1000)]


class BatchReleased(EventIn):
    path = "batch-released"
    description = "Lifts a hold; a regulator's hold is lifted by a regulator or admin only."
    command = c.Release

    type: Literal["BatchReleased"] = "BatchReleased"
    batch: BatchRef
    reason: Annotated[str, Field(max_length=1000)]


if TYPE_CHECKING:
    AnyEvent = EventIn
else:
    # Built from the table, in its order: a new kind joins the bulk envelope by existing.
    AnyEvent = Annotated[Union[tuple(EVENT_PATHS.values())], Field(discriminator="type")]  # noqa: UP007


class CorrectedFacts(BaseModel):
    """The facts a correction may change, typed as in the events they correct (a hold's
    reason is at most 1,000 characters, like a quarantine's). Which of them an event may
    have corrected is the ledger's rule: another name reaches it and is refused there
    (``correctable-fact``), naming the fact."""

    model_config = ConfigDict(extra="allow")

    mass_kg: Kg | None = None
    composition: Composition | None = None
    occurred_at: AwareDatetime | None = None
    reason: Annotated[str, Field(max_length=1000)] | None = None


class Correction(CommandIn):
    """A correction of one earlier event of a batch. History is never edited: this is
    recorded as a new event naming the event it corrects."""

    command = c.CorrectEvent

    batch: BatchRef
    version: int = Field(ge=1, description="The version of the batch's event being corrected")
    reason: Literal["incorrect-data", "did-not-occur"]
    facts: CorrectedFacts = Field(
        default_factory=CorrectedFacts,
        description="The corrected facts (incorrect-data): for ore extracted or scrap "
        "collected mass_kg, composition, occurred_at; for holds reason, occurred_at; for "
        "sales, moves, exports and receipts occurred_at. Empty for did-not-occur.",
    )
    note: Annotated[str, Field(max_length=2000)] = ""

    def converted(self) -> dict[str, object]:
        # Only the facts given: an absent fact is not corrected.
        return {"facts": self.facts.model_dump(exclude_unset=True, exclude_none=True)}


class BulkIn(Strict):
    """Many events stored whole or not at all, in the order given."""

    events: list[AnyEvent] = Field(min_length=1, max_length=MAX_BULK)
