"""The licences' rows: each licence or quota as issued with what has been drawn from
it, each draw (and each correction of a draw) with the event that made it, and the
actors licences name."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from uuid import UUID


@dataclass(frozen=True)
class LicenceRow:
    id: UUID
    version: int
    number: str
    kind: str  # mining_quota | separation_quota | export_licence
    holder_id: UUID
    max_kg: Decimal  # kg REO for quotas, kg of goods for export licences
    valid_from: datetime
    valid_until: datetime
    consignee_id: UUID | None
    end_user: str
    end_use: str
    destination_country: str
    contract: str
    items: str  # the licensed items as canonical JSON (export licences)
    issued_at: datetime
    drawn_kg: Decimal
    draws: int  # how many extractions, separations or shipments drew it


@dataclass(frozen=True)
class Draw:
    """One event of a licence that drew it (``kind`` draw) or corrected a draw
    (``correction``: ``kg`` may be negative). ``version`` is the licence's version the
    event made; ``month`` (UTC, YYYY-MM) is when it counts: a draw's own month, and for
    a correction the month of the draw it corrects (``corrects_version``)."""

    licence_id: UUID
    version: int
    kind: str
    cause: str  # extraction | separation | export | correction
    batch_id: UUID  # the batch drawn for (a separation: the transformation's record)
    kg: Decimal
    occurred_at: datetime
    month: str
    corrects_version: int | None


@dataclass(frozen=True)
class Party:
    """An actor a licence names (holder, consignee)."""

    id: UUID
    code: str
    name: str
    country: str
