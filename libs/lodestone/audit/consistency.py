"""``lodestone check``: rebuild state from the event store and compare every read model.

The event store is the authority. This folds every event, in store order, into fresh
aggregates (never through a snapshot or the cache) and compares:

- the genealogy view's row of every batch (version, reference, material, masses,
  composition, place, custodian, status, origin, creation time, corrections count);
- every aggregate's newest snapshot with the same aggregate folded up to the snapshot's
  version (a snapshot is a read model too: the repository starts from it).

Each difference names the aggregate, the field, the value from the events and the value
the read model holds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate

from lodestone.audit.pages import pages
from lodestone.domain.batches import Batch
from lodestone.ledger import Ledger
from lodestone.projections.genealogy import BatchRow, GenealogyView

PAGE = 5_000
MAX_DIFFERENCES = 200


@dataclass(frozen=True)
class Difference:
    read_model: str  # "genealogy" | "snapshots"
    aggregate_id: str
    field: str
    from_events: str
    in_read_model: str


@dataclass
class ConsistencyReport:
    events: int = 0
    aggregates: int = 0
    batches_compared: int = 0
    snapshots_compared: int = 0
    differences: list[Difference] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.differences


def _fold(ledger: Ledger, progress: Callable[[int], None] | None) -> tuple[int, dict[UUID, Any]]:
    aggregates: dict[UUID, Any] = {}
    count = 0
    top = ledger.recorder.max_notification_id() or 0
    for page in pages(ledger.recorder, 1, top, PAGE):
        for notification in page:
            event: Any = ledger.mapper.to_domain_event(notification)
            aggregates[event.originator_id] = event.mutate(aggregates.get(event.originator_id))
        count += len(page)
        if progress is not None:
            progress(len(page))
    return count, aggregates


def expected_row(batch: Batch) -> dict[str, Any]:
    origin = batch.origin or {}
    return {
        "version": batch.version,
        "reference": batch.reference,
        "material": batch.material.value,
        "initial_kg": batch.initial_kg,
        "remaining_kg": batch.remaining_kg,
        "composition": dict(batch.composition),
        "facility_id": batch.facility_id,
        "custodian_id": batch.custodian_id,
        "status": batch.status.value,
        "origin_kind": origin.get("kind"),
        "origin_facility_id": origin.get("facility_id"),
        "origin_licence_id": origin.get("licence_id"),
        "origin_country": origin.get("country"),
        "created_at": batch.created_at,
        # The view keeps how many corrections a batch's history has had (none: NULL).
        "corrections": len(getattr(batch, "corrections", None) or []) or None,
    }


def check(
    ledger: Ledger, view: GenealogyView, progress: Callable[[int], None] | None = None
) -> ConsistencyReport:
    report = ConsistencyReport()
    count, aggregates = _fold(ledger, progress)
    report.events = count
    report.aggregates = len(aggregates)
    diffs = report.differences

    def differ(model: str, id: UUID, name: str, mine: Any, theirs: Any) -> None:
        if len(diffs) < MAX_DIFFERENCES:
            diffs.append(Difference(model, str(id), name, repr(mine), repr(theirs)))

    batch_ids = [id for id, a in aggregates.items() if isinstance(a, Batch)]
    for n in range(0, len(batch_ids), PAGE):
        chunk = batch_ids[n : n + PAGE]
        rows: dict[UUID, BatchRow] = view.batches(chunk)
        for id in chunk:
            row = rows.get(id)
            if row is None:
                differ("genealogy", id, "row", "a batch", "missing")
                continue
            for name, mine in expected_row(aggregates[id]).items():
                if mine != getattr(row, name):
                    differ("genealogy", id, name, mine, getattr(row, name))
            report.batches_compared += 1

    for id in aggregates:
        snapshot: Any = (
            next(iter(ledger.snapshots.get(id, desc=True, limit=1)), None)
            if ledger.snapshots
            else None
        )
        if snapshot is None:
            continue
        report.snapshots_compared += 1
        from_snapshot = snapshot.mutate(None)
        folded: Aggregate | None = None
        for event in ledger.events.get(id, lte=snapshot.originator_version):
            folded = event.mutate(folded)  # type: ignore[attr-defined]
        mine, theirs = vars(folded), vars(from_snapshot)
        for name in sorted(set(mine) | set(theirs)):
            if name.startswith("_") and name not in ("_id", "_version"):
                continue
            if mine.get(name) != theirs.get(name):
                differ("snapshots", id, name, mine.get(name), theirs.get(name))
    return report
