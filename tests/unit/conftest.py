"""Factories for the write-side unit tests: ledgers with a fixed clock (on the backend
under test, or in memory), the registered chain world with an operator key for each
actor, and a ``ChainBuilder`` on it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime

import pytest

from lodestone.domain.access import Principal, Role
from lodestone.ledger import Ledger
from tests.fixtures.backends import Backend, memory_env
from tests.fixtures.factories import closing_factory
from tests.unit.builders import NOW, ChainBuilder, World, register_chain_world


@pytest.fixture
def clock() -> Callable[[], datetime]:
    return lambda: NOW


@pytest.fixture
def make_ledger(backend: Backend, clock: Callable[[], datetime]) -> Iterator[Callable[..., Ledger]]:
    """Builds ledgers on the test's event store (several may share it) and closes them.
    The store is a SQLite file or a PostgreSQL schema: every test here runs on both."""

    def make(cls: type[Ledger] = Ledger) -> Ledger:
        return cls(backend.ledger_env("events"), clock=clock)

    with closing_factory(make) as factory:
        yield factory


@pytest.fixture
def ledger(make_ledger: Callable[..., Ledger]) -> Ledger:
    return make_ledger()


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
def memory_ledger(clock: Callable[[], datetime]) -> Iterator[Ledger]:
    """A ledger on eventsourcing's in-memory store: for rules that need no database."""
    ledger = Ledger(memory_env(), clock=clock)
    yield ledger
    ledger.close()


@pytest.fixture
def chain(ledger: Ledger, world: World, admin: Principal) -> ChainBuilder:
    """Set-up steps on the registered world, and the refusal check."""
    return ChainBuilder(ledger, world, admin)
