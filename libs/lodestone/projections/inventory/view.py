"""What the inventory projection writes and reads back while it writes (``Writer``)
and what its readers ask of a view (``InventoryView``), whatever the database."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Protocol
from uuid import UUID

from lodestone.projections.base import View
from lodestone.projections.inventory.rows import HeldBatch, Movement, Place, Step

if TYPE_CHECKING:
    from lodestone.projections.inventory.stock import Holding, Lot


class Writer(Protocol):
    """Inside one transaction of the view. A step's movements depend on where the batch
    was before it, so the projection reads a batch's state back: what this transaction
    wrote, else what is stored. A batch's events arrive in order (one aggregate, one
    Kafka partition), so that state is always the one just before the event."""

    def batch(self, id: UUID) -> HeldBatch | None: ...
    def steps(self, id: UUID) -> list[Step]: ...
    def save_batch(self, row: HeldBatch) -> None: ...
    def save_steps(self, steps: Sequence[Step]) -> None: ...
    def save_movements(self, movements: Sequence[Movement]) -> None: ...
    def save_place(self, place: Place) -> None: ...


class InventoryView(View[Writer]):
    """One implementation per database (``sqlite``, ``postgres`` beside this module)."""

    @abstractmethod
    def held(
        self, *, actor_id: UUID | None = None, facility_id: UUID | None = None
    ) -> list[HeldBatch]:
        """Batches that hold mass now (active, quarantined or in transit), of that holder
        and at that facility when given."""

    @abstractmethod
    def movements(
        self,
        until: datetime,
        *,
        actor_id: UUID | None = None,
        facility_id: UUID | None = None,
    ) -> list[Movement]:
        """Every movement that occurred at or before ``until`` (event time), of that
        holder and at that facility when given."""

    @abstractmethod
    def held_now(
        self, *, actor_id: UUID | None = None, facility_id: UUID | None = None
    ) -> list[Holding]:
        """What is held now, per holder, place and material, from the stock rows kept
        up to date by each event: the same as the holdings of :meth:`held`."""

    @abstractmethod
    def lots(
        self,
        until: datetime,
        *,
        actor_id: UUID | None = None,
        facility_id: UUID | None = None,
    ) -> list[Lot]:
        """What each holder held of each batch at each place at ``until`` (event time):
        the sums of :meth:`movements`, taken by the database, without the zero ones."""

    @abstractmethod
    def batches(self, ids: Iterable[UUID]) -> dict[UUID, HeldBatch]: ...

    @abstractmethod
    def steps_of(self, ids: Iterable[UUID]) -> list[Step]: ...

    @abstractmethod
    def places(self, ids: Iterable[UUID]) -> dict[UUID, Place]: ...
