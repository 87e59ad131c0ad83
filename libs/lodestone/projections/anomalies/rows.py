"""The anomalies read model's rows: the facts its rules need, each written as the event
that states it arrives, keyed by ids (so the order in which batches' events interleave
does not matter), and the reviews of anomalies."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from uuid import UUID


@dataclass
class BatchFact:
    """A batch as made (and as corrected): who made it, how, of what, where, when."""

    id: UUID
    version: int  # of the event that wrote the row: a creation, or a correction
    reference: str | None = None  # ACTOR/LOT
    actor_id: UUID | None = None  # the company that made (mined, collected...) it
    material: str | None = None
    initial_kg: Decimal | None = None
    composition: dict[str, Decimal] | None = None
    facility_id: UUID | None = None  # where it was made
    created_at: datetime | None = None
    kind: str | None = None  # mined | recycled | produced | split | merged
    made_by: UUID | None = None  # the transformation; the parent of a split; itself if merged
    origin_country: str | None = None  # mined or recycled lots
    quota_id: UUID | None = None  # mined lots: the mining quota drawn
    status: str | None = None  # "void": corrected as never having existed


@dataclass(frozen=True)
class StepFact:
    """A transformation (beneficiation, separation, reduction, alloying...) as recorded."""

    id: UUID
    actor_id: UUID
    facility_id: UUID
    process: str
    reference: str
    tolerance: Decimal
    output_kg: dict[str, Decimal]  # kg of each element in all its outputs together
    output_total_kg: Decimal
    untraced_kg: dict[str, Decimal]  # kg of each element in its declared untraced inputs
    occurred_at: datetime


@dataclass(frozen=True)
class InputFact:
    """Mass a transformation (``step_id``: its id) or a merge (the merged batch's id)
    took from one batch."""

    step_id: UUID
    batch_id: UUID
    kg: Decimal


@dataclass
class MovementFact:
    """A sale, export, receipt or move of a batch: one per event, keyed by the batch and
    the event's version. ``corrected_by``: the version of the latest correction of its
    time (0: none)."""

    batch_id: UUID
    version: int
    kind: str | None = None  # sale | export | receipt | move
    from_id: UUID | None = None  # the seller or exporter
    to_id: UUID | None = None  # the buyer, consignee or receiver
    kg: Decimal | None = None
    facility_id: UUID | None = None  # where the batch is after it (sales, receipts, moves)
    price: Decimal | None = None
    currency: str | None = None
    contract: str | None = None
    licence_id: UUID | None = None
    destination_country: str | None = None
    end_user: str | None = None
    customs_code: str | None = None
    occurred_at: datetime | None = None
    corrected_by: int | None = None


@dataclass(frozen=True)
class PartyFact:
    """An actor (company) or a facility: what a reason names it by."""

    id: UUID
    kind: str  # actor | facility
    code: str
    name: str
    country: str
    owner_id: UUID | None  # a facility's owner
    facility_kind: str  # mine, separation_plant, ...; "" for an actor


@dataclass(frozen=True)
class LicenceFact:
    id: UUID
    number: str
    kind: str  # mining_quota | separation_quota | export_licence
    holder_id: UUID
    consignee_id: UUID | None
    end_user: str
    destination_country: str


@dataclass(frozen=True)
class ReviewFact:
    """One decision about an anomaly: the review record's event ``version``."""

    anomaly_id: UUID
    version: int
    rule: str
    status: str  # open | acknowledged | dismissed
    note: str
    by_role: str
    reviewed_by: str  # the principal (credential id) that decided
    reviewed_at: datetime
