"""Reviewing an anomaly through the ledger (in memory, no database): a decision is an
event of its own with who decided and why; every refusal stores nothing."""

from __future__ import annotations

from uuid import uuid4

import pytest

from lodestone.domain import ids
from lodestone.domain.access import Principal, Role
from lodestone.domain.anomalies import MAX_NOTE, AnomalyReview
from lodestone.domain.refusals import Conflict, Forbidden, InvalidInput, Refusal
from lodestone.ledger import Ledger
from lodestone.ledger import commands as c
from tests.unit.builders import NOW

ANALYST = Principal("key:analyst", Role.ANALYST)
REGULATOR = Principal("key:regulator", Role.REGULATOR)
ANOMALY = str(uuid4())


def decide(status: str, note: str = "asked for the assay", anomaly: str = ANOMALY):
    return c.ReviewAnomaly(anomaly_id=anomaly, rule="mass-balance-stress", status=status, note=note)


def review_of(ledger: Ledger, anomaly: str = ANOMALY) -> AnomalyReview:
    found = ledger.repository.get(ids.anomaly_review_id(anomaly))
    assert isinstance(found, AnomalyReview)
    return found


def test_a_first_review_records_the_decision_with_who_and_why(memory_ledger: Ledger) -> None:
    outcome = memory_ledger.execute(ANALYST, [decide("acknowledged")])

    assert outcome.results == [
        {"event": "AnomalyReviewed", "anomaly_id": ANOMALY, "status": "acknowledged"}
    ]
    (event,) = memory_ledger.repository.event_store.get(ids.anomaly_review_id(ANOMALY))
    assert (event.anomaly_id, event.rule, event.status) == (
        ANOMALY,
        "mass-balance-stress",
        "acknowledged",
    )
    assert (event.reported_by, event.by_role, event.note) == (
        "key:analyst",
        "analyst",
        "asked for the assay",
    )
    assert event.occurred_at == event.timestamp == NOW


def test_a_later_review_adds_a_decision_to_the_same_record(memory_ledger: Ledger) -> None:
    memory_ledger.execute(ANALYST, [decide("acknowledged")])

    memory_ledger.execute(REGULATOR, [decide("dismissed", "explained by the plant")])

    review = review_of(memory_ledger)
    assert (review.status.value, review.decisions, review.version) == ("dismissed", 2, 2)


def test_an_anomaly_reviewed_can_be_opened_again(memory_ledger: Ledger) -> None:
    memory_ledger.execute(ANALYST, [decide("dismissed")])

    memory_ledger.execute(REGULATOR, [decide("open", "the plant's explanation did not hold")])

    assert review_of(memory_ledger).status.value == "open"


def refused(ledger: Ledger, principal: Principal, command: c.Command) -> Refusal:
    before = ledger.recorder.max_notification_id()
    with pytest.raises(Refusal) as caught:
        ledger.execute(principal, [command])
    assert ledger.recorder.max_notification_id() == before, "a refusal stored something"
    return caught.value


@pytest.mark.parametrize(
    ("command", "kind", "field", "rule"),
    [
        (decide("closed"), InvalidInput, "status", "review-status"),
        (decide("open"), Conflict, "status", "status-unchanged"),
        (decide("acknowledged", "  "), InvalidInput, "note", "required"),
        (decide("acknowledged", "x" * (MAX_NOTE + 1)), InvalidInput, "note", "note-length"),
        (decide("acknowledged", anomaly="not-an-id"), InvalidInput, "anomaly_id", "uuid"),
    ],
)
def test_a_bad_review_is_refused_naming_field_and_rule(
    memory_ledger: Ledger, command: c.Command, kind: type, field: str, rule: str
) -> None:
    refusal = refused(memory_ledger, ANALYST, command)

    assert (type(refusal), refusal.field, refusal.rule) == (kind, field, rule)


def test_the_status_an_anomaly_already_has_is_refused(memory_ledger: Ledger) -> None:
    memory_ledger.execute(ANALYST, [decide("acknowledged")])

    refusal = refused(memory_ledger, REGULATOR, decide("acknowledged", "again"))

    assert (refusal.field, refusal.rule) == ("status", "status-unchanged")


@pytest.mark.parametrize("role", [Role.AUDITOR, Role.OPERATOR])
def test_a_role_that_may_not_review_is_refused(memory_ledger: Ledger, role: Role) -> None:
    refusal = refused(memory_ledger, Principal("key:someone", role), decide("acknowledged"))

    assert (type(refusal), refusal.rule) == (Forbidden, "role")


def test_the_roles_that_may_review_are_the_commands_submitters() -> None:
    assert set(c.ReviewAnomaly.submitters) == {Role.ANALYST, Role.REGULATOR, Role.ADMIN}
