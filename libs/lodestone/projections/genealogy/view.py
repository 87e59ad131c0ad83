"""What the genealogy projection writes (``Writer``) and what its readers ask of a view
(``GenealogyView``), whatever the database."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Protocol
from uuid import UUID

from lodestone.projections.base import View
from lodestone.projections.genealogy.rows import BatchRow, Edge, Name, Trade

if TYPE_CHECKING:
    from lodestone.projections.genealogy.provenance import Shares


class Writer(Protocol):
    """What the projection writes, inside one transaction of the view."""

    def upsert_batch(self, row: BatchRow) -> None: ...
    def add_edges(self, edges: Sequence[Edge]) -> None: ...
    def add_trade(self, trade: Trade) -> None: ...
    def upsert_name(self, name: Name) -> None: ...


class GenealogyView(View[Writer]):
    """One implementation per database (``sqlite``, ``postgres`` beside this module)."""

    @abstractmethod
    def batches(self, ids: Iterable[UUID]) -> dict[UUID, BatchRow]: ...

    @abstractmethod
    def ancestors(self, batch_id: UUID) -> list[Edge]:
        """Every edge on a path from a root to ``batch_id``, ordered by (parent, child)."""

    @abstractmethod
    def descendants(self, batch_id: UUID) -> list[Edge]:
        """Every edge on a path from ``batch_id`` to a leaf, ordered by (parent, child)."""

    @abstractmethod
    def traced(self, batch_id: UUID, towards: str) -> dict[UUID, BatchRow]:
        """``batch_id``'s row and those of every batch on a path to it (``towards``
        "up") or from it ("down"), in one query, without composition and creation time
        (None there: a trace shows neither)."""

    @abstractmethod
    def trades(self, ids: Iterable[UUID]) -> list[Trade]:
        """The trades of these batches, in the order they occurred (then by batch and
        version)."""

    @abstractmethod
    def names(self, ids: Iterable[UUID]) -> dict[UUID, Name]: ...

    @abstractmethod
    def shares(self, ids: Iterable[UUID]) -> dict[UUID, Shares]:
        """The kept provenance shares of these batches (see ``provenance.pooled``): every
        batch the view holds has them, kept up to date in the transaction that writes
        what they depend on."""

    @abstractmethod
    def created_by(
        self, reporter_id: UUID | None, since: datetime, before: datetime
    ) -> list[BatchRow]:
        """The batches ``reporter_id`` (None: anyone) made at or after ``since`` and
        before ``before``, by event time as corrected (extracted, collected, produced,
        split off or merged), in the order they were made (then by id)."""

    @abstractmethod
    def inputs(self, ids: Iterable[UUID]) -> list[Edge]:
        """The edges into these batches (what each was made of), by (child, parent)."""

    @abstractmethod
    def actors(self) -> list[Name]:
        """Every registered actor, by code."""
