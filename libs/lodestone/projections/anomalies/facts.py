"""Every fact of the anomalies read model at once, indexed as the rules read them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from uuid import UUID

from lodestone.projections.anomalies.rows import (
    BatchFact,
    InputFact,
    LicenceFact,
    MovementFact,
    PartyFact,
    ReviewFact,
    StepFact,
)


@dataclass(frozen=True)
class Facts:
    batches: dict[UUID, BatchFact] = field(default_factory=dict)
    steps: dict[UUID, StepFact] = field(default_factory=dict)
    #: By the id of the transformation or merged batch that took them, by batch id.
    inputs: dict[UUID, list[InputFact]] = field(default_factory=dict)
    #: In the order they happened (then by batch and version).
    movements: list[MovementFact] = field(default_factory=list)
    parties: dict[UUID, PartyFact] = field(default_factory=dict)
    licences: dict[UUID, LicenceFact] = field(default_factory=dict)
    #: Per anomaly, its decisions oldest first.
    reviews: dict[UUID, list[ReviewFact]] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        batches: Iterable[BatchFact] = (),
        steps: Iterable[StepFact] = (),
        inputs: Iterable[InputFact] = (),
        movements: Iterable[MovementFact] = (),
        parties: Iterable[PartyFact] = (),
        licences: Iterable[LicenceFact] = (),
        reviews: Iterable[ReviewFact] = (),
    ) -> Facts:
        """The facts indexed and sorted, whatever order the rows came in."""
        by_step: dict[UUID, list[InputFact]] = {}
        for row in sorted(inputs, key=lambda i: (str(i.step_id), str(i.batch_id))):
            by_step.setdefault(row.step_id, []).append(row)
        by_anomaly: dict[UUID, list[ReviewFact]] = {}
        for review in sorted(reviews, key=lambda r: (str(r.anomaly_id), r.version)):
            by_anomaly.setdefault(review.anomaly_id, []).append(review)
        return cls(
            batches={row.id: row for row in batches},
            steps={row.id: row for row in steps},
            inputs=by_step,
            movements=sorted(
                (m for m in movements if m.kind is not None),
                key=lambda m: (m.occurred_at is None, m.occurred_at, str(m.batch_id), m.version),
            ),
            parties={row.id: row for row in parties},
            licences={row.id: row for row in licences},
            reviews=by_anomaly,
        )
