"""What a write answers (201): the event recorded and the ids and references it made
or changed. The ledger's handlers build these answers; these models document them in
the OpenAPI document (the routes return the ledger's answer as it is)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Recorded(BaseModel):
    """One recorded event. ``event`` names it; the other fields are those it has."""

    model_config = ConfigDict(extra="forbid")

    event: str = Field(examples=["OreExtracted"])
    # A step on one batch (extraction, sale, move, export, receipt, hold, correction):
    batch_id: str | None = None
    lot_code: str | None = None
    batch: str | None = Field(None, description="ACTOR/LOT")
    mass_kg: str | None = None
    reo_kg: str | None = None
    buyer: str | None = None
    volume_kg: str | None = None
    to_facility: str | None = None
    shipment: str | None = None
    controlled: str | None = Field(None, description="true | false: whether a licence was needed")
    licence: str | None = None
    kg: str | None = None
    licence_remaining_kg: str | None = None
    received_kg: str | None = None
    corrects_version: str | None = None
    # A transformation or split: what it made.
    transformation_id: str | None = None
    outputs: list[str] | None = Field(None, description="ACTOR/LOT of each output")
    output_ids: list[str] | None = None
    parts: list[str] | None = Field(None, description="ACTOR/LOT of each part split off")
    part_ids: list[str] | None = None
    remaining_kg: str | None = None
    # The registry:
    actor_id: str | None = None
    facility_id: str | None = None
    licence_id: str | None = None
    credential_id: str | None = None
    code: str | None = None
    number: str | None = None
    kind: str | None = None
    role: str | None = None
    key: str | None = Field(None, description="A new API key: shown in this answer only")
    expires_at: str | None = None
    replaces: str | None = Field(None, description="The rotated credential")
    replaced_expires_at: str | None = Field(None, description="When the rotated key expires")
    # A review of an anomaly:
    anomaly_id: str | None = None
    status: str | None = Field(None, description="The anomaly's status after the review")


class BulkRecorded(BaseModel):
    model_config = ConfigDict(extra="forbid")

    results: list[Recorded] = Field(description="One answer per event, in the order sent")
