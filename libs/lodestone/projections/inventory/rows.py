"""The inventory's rows: each batch where it is now, the steps that moved or took its
mass (the facts its movements are derived from), the signed movements themselves, and
the names of actors and facilities."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from uuid import UUID


@dataclass(frozen=True)
class HeldBatch:
    """A batch as the inventory knows it after its latest event (``version``)."""

    id: UUID
    version: int
    reference: str
    material: str
    composition: dict[str, Decimal]
    actor_id: UUID | None  # the holder (custodian); an exporter until its shipment arrives
    facility_id: UUID | None  # None while in transit on an export shipment
    remaining_kg: Decimal
    status: str  # active | consumed | in_transit | quarantined | void
    created_at: datetime


@dataclass(frozen=True)
class Step:
    """One event of a batch that changed its mass, place or holder, as corrected so far.

    ``kind``: created | taken | sold | moved | exported | received. ``actor_id`` and
    ``facility_id`` are where the batch is after the step (none for ``taken``; no
    facility after ``exported``); ``kg`` is the mass made (created), taken (taken) or
    received (received). ``void`` = 1: corrected as never having happened."""

    batch_id: UUID
    version: int
    kind: str
    occurred_at: datetime
    actor_id: UUID | None
    facility_id: UUID | None
    kg: Decimal | None
    void: int


@dataclass(frozen=True)
class Movement:
    """A signed change of the mass a holder holds at a place, dated by event time.

    ``entry`` numbers a batch's movements: 2 x version for a step's leg out (the mass
    leaving its old place, negative), 2 x version + 1 for its leg in (positive), so the
    stock of any holder or place at T is the sum of its movements up to T."""

    batch_id: UUID
    entry: int
    version: int
    occurred_at: datetime
    actor_id: UUID | None
    facility_id: UUID | None  # None: in transit
    kg: Decimal


@dataclass(frozen=True)
class Place:
    """An actor or a facility: ``kind`` actor | facility; ``facility_kind`` (mine,
    warehouse, port...) and ``owner_id`` for facilities."""

    id: UUID
    kind: str
    code: str
    name: str
    country: str
    facility_kind: str
    owner_id: UUID | None


@dataclass(frozen=True)
class Stock:
    """What one holder holds at one place of one material now, kept up to date by each
    event: with ``element`` "" the material's whole mass (``kg``) and how many batches
    hold some of it; with an element symbol that element's mass in them (kg x mass
    fraction) and how many of them have it in their composition. ``holding`` is
    ``"<actor_id>/<facility_id>/<material>"`` ("" for no id): the row's key with
    ``element``. A row whose ``batches`` fell to 0 holds nothing now."""

    holding: str
    element: str
    actor_id: UUID | None
    facility_id: UUID | None  # None: in transit
    material: str
    kg: Decimal
    batches: int
