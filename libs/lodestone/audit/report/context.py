"""What every part of the report reads: the batch, its two lineages, the decoded events
of its genealogy and the names of everything they mention; and two facts of an event
that the sections, the sentences and the anomaly rules all ask."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from uuid import UUID

from lodestone.domain.batches import Batch
from lodestone.ledger import Ledger
from lodestone.projections import genealogy
from lodestone.reads.history import Entry
from lodestone.reads.history import reporter as reporter_label


@dataclass
class Context:
    """Built once by ``gather.build``; the sections, sentences and rules only read it
    (apart from the reporters, looked up once each on first use)."""

    ledger: Ledger
    batch: Batch
    up: genealogy.Lineage
    down: genealogy.Lineage
    rows: dict[UUID, genealogy.BatchRow]
    names: dict[UUID, genealogy.Name]
    events: list[Entry]  # of every batch and step in the genealogy, in store order
    steps: dict[UUID, Entry]  # transformation id -> its BatchTransformed event
    licence_events: list[Entry]
    reporters: dict[str, dict[str, Any]]

    def ref(self, id: UUID | None) -> str | None:
        """A batch's ACTOR/LOT, a step's work order, or an actor, facility or licence code."""
        if id is None:
            return None
        row = self.rows.get(id)
        if row is not None and row.reference:
            return row.reference
        if id in self.steps:
            return f"work order {self.work_order(id)}"
        name = self.names.get(id)
        return name.code if name else str(id)

    def work_order(self, step_id: UUID) -> str | None:
        step = self.steps.get(step_id)
        return str(step.facts.get("reference")) if step is not None else None

    def party(self, id: UUID | None) -> dict[str, Any] | None:
        if id is None:
            return None
        name = self.names.get(id)
        if name is None:
            return {"code": str(id), "name": None, "country": None}
        return {"code": name.code, "name": name.name, "country": name.country}

    def reporter(self, principal_id: str | None) -> dict[str, Any] | None:
        if not principal_id:
            return None
        if principal_id not in self.reporters:
            self.reporters[principal_id] = dict(reporter_label(self.ledger, principal_id))
        return self.reporters[principal_id]


def is_correction(entry: Entry) -> bool:
    """``Batch.Corrected``, ``Licence.DrawCorrected``: every correction's type says so."""
    return entry.type.endswith("Corrected")


def lag_days(entry: Entry) -> Decimal | None:
    """How many days after it happened the event was recorded, to a tenth."""
    if entry.occurred_at is None:
        return None
    seconds = Decimal(int((entry.recorded_at - entry.occurred_at).total_seconds()))
    return (seconds / Decimal(86_400)).quantize(Decimal("0.1"))
