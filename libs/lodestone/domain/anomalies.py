"""Anomaly reviews: an analyst or a regulator acknowledges or dismisses an anomaly that
the anomalies read model raised, or opens it again, with a note saying why.

The anomalies themselves are the read model's (rules evaluated over the ledger's
facts); what an authority decided about one is a fact of the ledger, recorded here with
who decided and why. One review record per anomaly (its id is the uuid5 of the
anomaly's id), one event per decision.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from uuid import UUID

from eventsourcing.domain import Aggregate

from lodestone.domain.access import Principal
from lodestone.domain.recording import LedgerAggregate
from lodestone.domain.refusals import Conflict, InvalidInput
from lodestone.domain.values import one_of

#: A note says why; a page of text is plenty.
MAX_NOTE = 1000


class ReviewStatus(StrEnum):
    OPEN = "open"  # every anomaly starts open; a review may open it again
    ACKNOWLEDGED = "acknowledged"  # seen and taken up (an inquiry, a hold, a letter)
    DISMISSED = "dismissed"  # seen and explained: no further action


class AnomalyReview(LedgerAggregate):
    class Decided(Aggregate.Event):
        """What every decision records: the new status, the note, who and when."""

        anomaly_id: str
        rule: str
        status: str
        note: str
        by_role: str
        reported_by: str
        occurred_at: datetime

        def apply(self, review: AnomalyReview) -> None:
            review.status = ReviewStatus(self.status)
            review.decisions += 1

    class Started(Decided, Aggregate.Created):
        """The first decision about an anomaly."""

        def apply(self, review: AnomalyReview) -> None:
            review.anomaly_id = self.anomaly_id
            review.rule = self.rule
            review.decisions = 0
            super().apply(review)

    class Reviewed(Decided):
        """A later decision."""

    anomaly_id: str
    rule: str
    status: ReviewStatus
    decisions: int

    def __init__(self) -> None:
        pass

    @classmethod
    def start(
        cls,
        id: UUID,
        anomaly_id: str,
        rule: str,
        status: str,
        note: str,
        principal: Principal,
        at: datetime,
    ) -> AnomalyReview:
        decided, text = _checked(status, note, ReviewStatus.OPEN)
        return cls._create(
            cls.Started,
            id=id,
            anomaly_id=anomaly_id,
            rule=rule,
            status=decided.value,
            note=text,
            by_role=principal.role.value,
            reported_by=principal.id,
            occurred_at=at,
        )

    def review(self, status: str, note: str, principal: Principal, at: datetime) -> None:
        decided, text = _checked(status, note, self.status)
        self.trigger_event(
            self.Reviewed,
            anomaly_id=self.anomaly_id,
            rule=self.rule,
            status=decided.value,
            note=text,
            by_role=principal.role.value,
            reported_by=principal.id,
            occurred_at=at,
        )


def _checked(status: str, note: str, current: ReviewStatus) -> tuple[ReviewStatus, str]:
    decided = one_of(ReviewStatus, status, "status", "review-status")
    text = note.strip()
    if not text:
        raise InvalidInput("note", "required", "say why: a review carries a note")
    if len(text) > MAX_NOTE:
        raise InvalidInput("note", "note-length", f"at most {MAX_NOTE} characters")
    if decided is current:
        raise Conflict("status", "status-unchanged", f"the anomaly is already {current.value}")
    return decided, text
