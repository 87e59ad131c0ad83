"""What the trade-ledger projection writes (``Writer``) and what its readers ask of a
view (``TradesView``), whatever the database."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal, Protocol
from uuid import UUID

from lodestone.projections.base import View
from lodestone.projections.trades.rows import (
    Element,
    Line,
    ListedLine,
    Party,
    Total,
    TradedBatch,
)

#: What totals group lines by.
Key = Literal["month", "client", "destination", "element"]


class Writer(Protocol):
    """What the projection writes, inside one transaction of the view."""

    def upsert_batch(self, row: TradedBatch) -> None: ...
    def set_composition(self, rows: Sequence[Element]) -> None: ...
    def upsert_line(self, line: Line) -> None: ...
    def fill_receipt(self, batch_id: UUID, version: int) -> None:
        """Give receipt ``version`` of the batch the exporter, destination, customs
        code, licence and end user of the batch's export before it (its own batch's
        rows only, so the order of other batches' events does not matter)."""
        ...

    def upsert_party(self, party: Party) -> None: ...


@dataclass(frozen=True)
class LineFilter:
    """Which lines a query covers; every condition given must hold.

    ``party``: lines where this actor is seller or client (an operator's own lines).
    ``elements``: lines whose batch carries one of these elements; a total not grouped
    by element takes at most one (it then also sums that element's content).
    Months are ``YYYY-MM``, both ends included."""

    kinds: tuple[str, ...] = ()
    seller: UUID | None = None
    client: UUID | None = None
    party: UUID | None = None
    elements: tuple[str, ...] = ()
    material: str | None = None
    country: str | None = None
    from_month: str | None = None
    to_month: str | None = None


class TradesView(View[Writer]):
    """One implementation per database (``sqlite``, ``postgres`` beside this module)."""

    @abstractmethod
    def lines(self, where: LineFilter, limit: int, offset: int) -> list[ListedLine]:
        """The lines ``where`` covers, in the order they occurred (then by batch and
        version), from ``offset``, at most ``limit``."""

    @abstractmethod
    def count(self, where: LineFilter) -> int: ...

    @abstractmethod
    def totals(self, where: LineFilter, by: Sequence[Key]) -> list[Total]:
        """One total per group of the lines ``where`` covers, in no given order."""

    @abstractmethod
    def compositions(self, versions: Mapping[UUID, int]) -> dict[UUID, dict[str, Decimal]]:
        """Per batch id, its composition (element -> mass fraction) as set by the given
        version (a line's ``composition_version``)."""

    @abstractmethod
    def contents(
        self, lines: Iterable[tuple[UUID, int]]
    ) -> dict[tuple[UUID, int], dict[str, Decimal]]:
        """Per line (batch id, version), its content of each element of its batch's
        composition now, in kg, as recorded with the line."""

    @abstractmethod
    def parties(self, ids: Iterable[UUID]) -> dict[UUID, Party]: ...

    @abstractmethod
    def traders(self, month: str) -> set[UUID]:
        """The actors with a line of their own in ``month`` (YYYY-MM): sellers of its
        sales and exports, buyers of its sales and receivers of its receipts."""
