"""The aggregates one command (or one bulk submission) reads and changes.

Everything a command loads stays here, so a bulk submission that creates a batch and
then processes it sees its own changes; at the end the ledger saves every aggregate with
pending events in ONE transaction, or nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Repository
from eventsourcing.domain import Aggregate

from lodestone.domain.refusals import Conflict, NotFound
from lodestone.domain.values import ExportControls

A = TypeVar("A", bound=Aggregate)


class UnitOfWork:
    def __init__(
        self,
        repository: Repository[UUID],
        controls: ExportControls | None = None,
        *,
        load: Callable[[UUID], Aggregate | None] | None = None,
        exists: Callable[[UUID], bool] | None = None,
    ) -> None:
        self._repository = repository
        self._aggregates: dict[UUID, Aggregate] = {}
        #: The rules a command applies that are the deployment's to set.
        self.controls = controls or ExportControls()
        # The group writer loads from the state its group has staged so far (copies, so a
        # refused command leaves that state as it was), else from the store.
        self._load = load or self._from_repository
        self._exists = exists or self._stored

    def _from_repository(self, id: UUID) -> Aggregate | None:
        try:
            return self._repository.get(id)
        except AggregateNotFoundError:
            return None

    def _stored(self, id: UUID) -> bool:
        # One indexed select of at most one stored event, not a full aggregate load.
        return bool(self._repository.event_store.recorder.select_events(id, limit=1))

    def find(self, cls: type[A], id: UUID) -> A | None:
        aggregate = self._aggregates.get(id)
        if aggregate is None:
            aggregate = self._load(id)
            if aggregate is None:
                return None
            self._aggregates[id] = aggregate
        return aggregate if isinstance(aggregate, cls) else None

    def get(self, cls: type[A], id: UUID, field: str, what: str) -> A:
        aggregate = self.find(cls, id)
        if aggregate is None:
            raise NotFound(field, "exists", f"{what} is not registered")
        return aggregate

    def require_new(self, id: UUID, field: str, what: str) -> None:
        if id in self._aggregates or self._exists(id):
            raise Conflict(field, "unique", f"{what} already exists")

    def history(self, aggregate: Aggregate) -> list[Any]:
        """Every event of an aggregate: stored ones, then any this unit of work added."""
        stored = list(self._repository.event_store.get(aggregate.id))
        pending = [e for e in aggregate.pending_events if e.originator_version > len(stored)]
        return [*stored, *pending]

    def add(self, *aggregates: Any) -> None:
        for aggregate in aggregates:
            self._aggregates[aggregate.id] = aggregate

    def changed(self) -> list[Aggregate]:
        return [a for a in self._aggregates.values() if a.pending_events]

    def loaded(self) -> dict[UUID, Aggregate]:
        """Every aggregate this unit of work holds, changed or not."""
        return self._aggregates
