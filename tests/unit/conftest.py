"""Factories for the write-side unit tests: ledgers with a fixed clock (on the backend
under test, or in memory), and a minimal registered chain world with an operator key for
each actor."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal as D
from typing import Any

import pytest

from lodestone.domain import ids
from lodestone.domain.access import Principal, Role
from lodestone.domain.refusals import Refusal
from lodestone.ledger import Ledger
from lodestone.ledger import commands as c
from tests.fixtures.backends import Backend, memory_env

#: The server's "now" in every unit test: reports default to it, the future starts after it.
NOW = datetime(2026, 6, 1, tzinfo=UTC)
YEAR_2026 = (datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))


def operator(code: str) -> Principal:
    return Principal(f"key:{code}", Role.OPERATOR, ids.actor_id(code))


@dataclass(frozen=True)
class World:
    """What ``register_chain_world`` registered, and a key for each actor.

    MINECO  (CN) mine M-PIT; mining quota MQ-1
    SEPCO   (CN) separation plant S-SEP, metal plant S-MET; separation quota SQ-1;
                 export licence EX-1: oxide (2846) to AUTO in DE, end user "Auto GmbH"
    ALLOYCO (CN) alloy plant A-ALLOY, magnet plant A-MAG
    TRADER  (CN) warehouse T-WH
    AUTO    (DE) magnet plant D-PLANT, the licensed consignee
    RIVAL   (DE) magnet plant R-PLANT;  FRANCO (FR) magnet plant F-PLANT
    """

    now: datetime
    mine: Principal
    separator: Principal
    alloyer: Principal
    trader: Principal
    auto: Principal
    rival: Principal
    franco: Principal


def register_chain_world(ledger: Ledger, admin: Principal) -> World:
    ledger.execute(
        admin,
        [
            c.RegisterActor("MINECO", "Mine Co", "CN", ["miner"]),
            c.RegisterActor("SEPCO", "Separation Co", "CN", ["separator", "exporter"]),
            c.RegisterActor("ALLOYCO", "Alloy Co", "CN", ["alloy_maker", "magnet_maker"]),
            c.RegisterActor("TRADER", "Trader Ltd", "CN", ["trader"]),
            c.RegisterActor("AUTO", "Auto GmbH", "DE", ["importer", "end_client"]),
            c.RegisterActor("RIVAL", "Rival AG", "DE", ["importer"]),
            c.RegisterActor("FRANCO", "Franco SA", "FR", ["importer"]),
            c.RegisterFacility("M-PIT", "Open pit", "mine", "MINECO", "CN"),
            c.RegisterFacility("S-SEP", "Separation plant", "separation_plant", "SEPCO", "CN"),
            c.RegisterFacility("S-MET", "Metal plant", "metal_plant", "SEPCO", "CN"),
            c.RegisterFacility("A-ALLOY", "Alloy plant", "alloy_plant", "ALLOYCO", "CN"),
            c.RegisterFacility("A-MAG", "Magnet plant", "magnet_plant", "ALLOYCO", "CN"),
            c.RegisterFacility("T-WH", "Warehouse", "warehouse", "TRADER", "CN"),
            c.RegisterFacility("D-PLANT", "Motor plant", "magnet_plant", "AUTO", "DE"),
            c.RegisterFacility("R-PLANT", "Rival plant", "magnet_plant", "RIVAL", "DE"),
            c.RegisterFacility("F-PLANT", "Franco plant", "magnet_plant", "FRANCO", "FR"),
            c.IssueLicence("MQ-1", "mining_quota", "MINECO", D("1000000"), *YEAR_2026),
            c.IssueLicence("SQ-1", "separation_quota", "SEPCO", D("1000000"), *YEAR_2026),
            c.IssueLicence(
                "EX-1",
                "export_licence",
                "SEPCO",
                D("10000"),
                *YEAR_2026,
                items=[{"material": "oxide", "customs_code": "2846"}],
                consignee="AUTO",
                end_user="Auto GmbH",
                destination_country="DE",
            ),
        ],
    )
    return World(
        now=NOW,
        mine=operator("MINECO"),
        separator=operator("SEPCO"),
        alloyer=operator("ALLOYCO"),
        trader=operator("TRADER"),
        auto=operator("AUTO"),
        rival=operator("RIVAL"),
        franco=operator("FRANCO"),
    )


@pytest.fixture
def clock() -> Callable[[], datetime]:
    return lambda: NOW


@pytest.fixture
def make_ledger(backend: Backend, clock: Callable[[], datetime]) -> Iterator[Callable[..., Ledger]]:
    """Builds ledgers on the test's event store (several may share it) and closes them.
    The store is a SQLite file or a PostgreSQL schema: every test here runs on both."""
    built: list[Ledger] = []

    def make(cls: type[Ledger] = Ledger) -> Ledger:
        ledger = cls(backend.ledger_env("events"), clock=clock)
        built.append(ledger)
        return ledger

    yield make
    for ledger in built:
        ledger.close()


@pytest.fixture
def ledger(make_ledger: Callable[..., Ledger]) -> Ledger:
    return make_ledger()


@pytest.fixture
def memory_ledger(clock: Callable[[], datetime]) -> Iterator[Ledger]:
    """A ledger on eventsourcing's in-memory store: for rules that need no database."""
    ledger = Ledger(memory_env(), clock=clock)
    yield ledger
    ledger.close()


@pytest.fixture
def admin() -> Principal:
    return Principal("admin", Role.ADMIN)


@pytest.fixture
def regulator() -> Principal:
    return Principal("regulator", Role.REGULATOR)


@pytest.fixture
def register_world(admin: Principal) -> Callable[[Ledger], World]:
    """For tests that build their own ledgers (several, or an instrumented subclass)."""
    return lambda ledger: register_chain_world(ledger, admin)


@pytest.fixture
def world(ledger: Ledger, register_world: Callable[[Ledger], World]) -> World:
    return register_world(ledger)


@pytest.fixture
def assert_refused(ledger: Ledger) -> Callable[..., Refusal]:
    """Runs commands that must be refused with exactly this kind, field and rule, and
    checks that nothing at all was stored (the notification log did not move)."""

    def check(
        principal: Principal,
        commands: Sequence[c.Command],
        kind: type[Refusal],
        field: str,
        rule: str,
        **execute: Any,
    ) -> Refusal:
        before = ledger.recorder.max_notification_id()
        with pytest.raises(Refusal) as caught:
            ledger.execute(principal, list(commands), **execute)
        refusal = caught.value
        assert (type(refusal), refusal.field, refusal.rule) == (kind, field, rule), refusal
        assert ledger.recorder.max_notification_id() == before
        return refusal

    return check
