"""The trade ledger's rows: one line per sale, export and receipt; what the lines need
to know of each batch (its material and composition, kept from its Created event and
its corrections, since a sale does not carry them) and the names of the parties and
licences they refer to. The last two classes are not stored: they are the shapes of
the answers the view's queries give."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from uuid import UUID


@dataclass(frozen=True)
class Line:
    """A sale, an export or a receipt: the event ``version`` of batch ``batch_id``.
    ``revision`` is the batch version that last wrote the row (the event itself, or a
    correction of its time), so a repeated or older event changes nothing."""

    batch_id: UUID
    version: int
    revision: int
    kind: str | None = None  # sale | export | receipt
    seller_id: UUID | None = None  # seller, exporter; for a receipt, the exporter
    client_id: UUID | None = None  # buyer, consignee; for a receipt, the receiver
    end_user: str | None = None  # exports (and their receipts): the end user named
    kg: Decimal | None = None
    price: Decimal | None = None
    currency: str | None = None
    contract: str | None = None
    destination_country: str | None = None
    customs_code: str | None = None
    licence_id: UUID | None = None
    shipment: str | None = None  # exports and receipts: the customs declaration or B/L number
    controlled: int | None = None  # exports: 1 if the goods needed a licence, else 0
    occurred_at: datetime | None = None  # in UTC
    month: str | None = None  # YYYY-MM of occurred_at, in UTC
    corrected_by: int | None = None  # the version of the latest correction of its time


@dataclass(frozen=True)
class TradedBatch:
    """``composition_version``: the batch version whose element rows hold its
    composition now (its Created event, or the latest correction of its composition)."""

    id: UUID
    version: int
    reference: str | None = None
    material: str | None = None
    composition_version: int | None = None


@dataclass(frozen=True)
class Element:
    """One element's mass fraction in a batch, as set by batch version ``version``. A
    correction writes the whole new composition under its own version; rows of an
    older version are no longer the batch's (an element the correction removed)."""

    batch_id: UUID
    element: str
    version: int
    fraction: Decimal


@dataclass(frozen=True)
class Content:
    """One element's content in one line (kg of it: the line's mass times its batch's
    mass fraction now), kept with what totals filter and group lines by, so that a
    total by element is one aggregate over this table alone. ``line`` is
    ``"<batch_id>/<version>"``. ``kind`` is None when the row is no longer the line's:
    its element left the batch's composition in a correction (or the line is not a
    line yet: a correction of its time came first)."""

    line: str
    element: str
    batch_id: UUID
    version: int
    kind: str | None
    seller_id: UUID | None
    client_id: UUID | None
    destination_country: str | None
    material: str | None
    month: str | None
    line_kg: Decimal | None
    kg: Decimal | None


@dataclass(frozen=True)
class KeptTotal:
    """The sum of every line (``element`` "") or every content row of one element with
    that kind, month and material, per ``dimension``: "" (all lines, ``key`` ""),
    "client" (``key`` the client's id) or "destination" (``key`` the country; "" for a
    line with none). Kept as events come, so that a total reads a few rows. ``id``:
    those six joined by "|", one column to key and order the rows by."""

    id: str
    dimension: str
    key: str
    element: str
    kind: str
    month: str
    material: str
    kg: Decimal | None
    lines: int
    element_kg: Decimal | None


@dataclass(frozen=True)
class BatchTotal:
    """What one batch's lines add to a kept total now: subtracted when the batch
    changes, before its new contribution is added."""

    batch_id: UUID
    id: str
    dimension: str
    key: str
    element: str
    kind: str
    month: str
    material: str
    kg: Decimal | None
    lines: int
    element_kg: Decimal | None


@dataclass(frozen=True)
class Party:
    id: UUID
    kind: str  # actor | licence
    code: str  # an actor's code, a licence's number
    name: str
    country: str


@dataclass(frozen=True)
class ListedLine:
    """A line with its batch's reference, material and composition version."""

    batch_id: UUID
    version: int
    revision: int
    kind: str | None
    seller_id: UUID | None
    client_id: UUID | None
    end_user: str | None
    kg: Decimal | None
    price: Decimal | None
    currency: str | None
    contract: str | None
    destination_country: str | None
    customs_code: str | None
    licence_id: UUID | None
    shipment: str | None
    controlled: int | None
    occurred_at: datetime | None
    month: str | None
    corrected_by: int | None
    reference: str | None
    material: str | None
    composition_version: int | None


@dataclass(frozen=True)
class Total:
    """One group of lines: the keys grouped by (None where not grouped), the goods mass,
    the number of lines and, where an element is involved, its content in kg."""

    month: str | None
    client_id: UUID | None
    destination_country: str | None
    element: str | None
    kg: Decimal
    lines: int
    element_kg: Decimal | None
