"""What the anomalies projection writes (``Writer``) and what its readers ask of a view
(``AnomaliesView``: every fact at once, for the rules), whatever the database."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from typing import Protocol

from lodestone.projections.anomalies.facts import Facts
from lodestone.projections.anomalies.rows import (
    BatchFact,
    InputFact,
    LicenceFact,
    MovementFact,
    PartyFact,
    ReviewFact,
    StepFact,
)
from lodestone.projections.base import View


class Writer(Protocol):
    """What the projection writes, inside one transaction of the view."""

    def upsert_batch(self, row: BatchFact) -> None: ...
    def add_step(self, row: StepFact) -> None: ...
    def add_inputs(self, rows: Sequence[InputFact]) -> None: ...
    def upsert_movement(self, row: MovementFact) -> None: ...
    def upsert_party(self, row: PartyFact) -> None: ...
    def upsert_licence(self, row: LicenceFact) -> None: ...
    def add_review(self, row: ReviewFact) -> None: ...


class AnomaliesView(View[Writer]):
    """One implementation per database (``sqlite``, ``postgres`` beside this module)."""

    @abstractmethod
    def facts(self) -> Facts:
        """Every fact the view holds, as the rules read them."""
