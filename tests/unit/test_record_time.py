"""Record time is the ledger's "now": every event one command records carries the
instant its clock gave (or the ``now`` the caller gave), in memory, no database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from lodestone.domain.access import Principal, Role
from lodestone.domain.actors import Actor
from lodestone.domain.recording import recording_at
from lodestone.ledger import Ledger
from lodestone.ledger import commands as c
from tests.fixtures.backends import memory_env

ADMIN = Principal("admin", Role.ADMIN)
CLOCK = datetime(2026, 5, 1, 8, tzinfo=UTC)


def stored(ledger: Ledger) -> list:
    notifications = ledger.recorder.select_notifications(start=1, limit=1000)
    return [ledger.mapper.to_domain_event(n) for n in notifications]


def registrations(*codes: str) -> list[c.Command]:
    return [c.RegisterActor(code, f"{code} Ltd", "CN", []) for code in codes]


def test_every_event_of_a_command_is_recorded_at_the_clocks_now() -> None:
    ledger = Ledger(memory_env(), clock=lambda: CLOCK)

    ledger.execute(ADMIN, registrations("A", "B"))

    assert [e.timestamp for e in stored(ledger)] == [CLOCK, CLOCK]


def test_a_command_given_its_now_is_recorded_then_and_dated_then() -> None:
    ledger = Ledger(memory_env(), clock=lambda: CLOCK)
    then = CLOCK - timedelta(days=90)

    ledger.execute(ADMIN, registrations("A"), now=then)

    (event,) = stored(ledger)
    assert event.timestamp == event.occurred_at == then


def test_an_event_made_outside_any_command_is_recorded_at_the_wall_clock() -> None:
    before = datetime.now(UTC)

    actor = Actor.register(Actor.create_id(), "X", "X Ltd", "CN", [], "admin", CLOCK)

    assert actor.created_on >= before


def test_the_record_time_holds_in_its_own_context_only() -> None:
    before = datetime.now(UTC)
    with recording_at(CLOCK):
        inside = Actor.register(Actor.create_id(), "X", "X Ltd", "CN", [], "admin", CLOCK)
    outside = Actor.register(Actor.create_id(), "Y", "Y Ltd", "CN", [], "admin", CLOCK)

    assert inside.created_on == CLOCK
    assert outside.created_on >= before
