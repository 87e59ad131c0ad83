"""What the genealogy projection writes (``Writer``) and what its readers ask of a view
(``GenealogyView``), whatever the database."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterable, Sequence
from typing import Protocol
from uuid import UUID

from lodestone.projections.base import View
from lodestone.projections.genealogy.rows import BatchRow, Edge, Name, Trade


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
    def trades(self, ids: Iterable[UUID]) -> list[Trade]:
        """The trades of these batches, in the order they occurred (then by batch and
        version)."""

    @abstractmethod
    def names(self, ids: Iterable[UUID]) -> dict[UUID, Name]: ...
