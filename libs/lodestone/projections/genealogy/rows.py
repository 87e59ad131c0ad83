"""The genealogy's rows: batches, the input->output edges between them with the masses
taken, trades (sales, exports, receipts), the names of actors, facilities and
licences, and each batch's provenance shares (derived by the view from the others)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from uuid import UUID


@dataclass
class BatchRow:
    id: UUID
    version: int
    reference: str | None = None
    material: str | None = None
    initial_kg: Decimal | None = None
    remaining_kg: Decimal | None = None
    composition: dict[str, Decimal] | None = None
    facility_id: UUID | None = None
    custodian_id: UUID | None = None
    reporter_id: UUID | None = None
    status: str | None = None
    origin_kind: str | None = None
    origin_facility_id: UUID | None = None
    origin_licence_id: UUID | None = None
    origin_country: str | None = None
    created_at: datetime | None = None
    corrections: int | None = None  # how many corrections its history has had


@dataclass(frozen=True)
class Edge:
    parent_id: UUID
    child_id: UUID
    kg: Decimal  # mass the step that made the child took from the parent
    operation: str  # a process name, "split" or "merge"
    operation_id: UUID


@dataclass(frozen=True)
class Trade:
    batch_id: UUID
    version: int
    kind: str  # sale | export | receipt
    from_id: UUID | None
    to_id: UUID | None
    kg: Decimal
    contract: str
    price: Decimal | None
    currency: str
    destination_country: str
    occurred_at: datetime


@dataclass(frozen=True)
class Name:
    id: UUID
    kind: str  # actor | facility | licence
    code: str
    name: str
    country: str


@dataclass(frozen=True)
class ProvenanceRow:
    batch_id: UUID
    shares: str  # per element, each origin's exact share: ``provenance.encode``
