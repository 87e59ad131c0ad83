"""The ledger and the genealogy view on a real PostgreSQL server: durability, rebuilds,
concurrent writers and a server killed mid-way."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest
from eventsourcing.persistence import IntegrityError, PersistenceError

from lodestone.devtools.postgres_local import LocalPostgres
from lodestone.domain import ids
from lodestone.domain.refusals import NotFound, Refusal
from lodestone.infra.postgres.database import postgres_env
from lodestone.infra.sqlite.database import sqlite_env
from lodestone.ledger import Ledger
from lodestone.ledger import commands as c
from lodestone.projections.genealogy import GenealogyProjection, GenealogyView
from lodestone.projections.genealogy.postgres import PostgresGenealogyView
from lodestone.projections.genealogy.sqlite import SQLiteGenealogyView
from lodestone.streaming.feeds import NotificationLogFeed
from lodestone.streaming.projector import Projector
from tests.fixtures.factories import closing_factory
from tests.integration.conftest import ADMIN, NOW, at, operator, record_chain

# Global fixtures; harmless once the root conftest registers the same plugin.

pytestmark = pytest.mark.postgres

NORTH = operator("NORTH")
MakeLedger = Callable[[dict[str, str]], Ledger]
MakeView = Callable[[str], PostgresGenealogyView]


@pytest.fixture
def ledgers() -> Iterator[MakeLedger]:
    """Ledgers on a given store, closed (their pools with them) when the test ends."""

    def make(env: dict[str, str]) -> Ledger:
        return Ledger(env, clock=lambda: NOW)

    with closing_factory(make) as factory:
        yield factory


@pytest.fixture
def views() -> Iterator[MakeView]:
    """Genealogy views on a given database, closed when the test ends."""
    with closing_factory(PostgresGenealogyView) as factory:
        yield factory


@pytest.fixture
def chain_url(make_postgres_database: Callable[[], str], ledgers: MakeLedger) -> str:
    """A fresh database holding the whole demo chain (and nothing else yet)."""
    url = make_postgres_database()
    record_chain(ledgers(postgres_env(url)))
    return url


def project(ledger: Ledger, view: GenealogyView) -> Projector:
    projector = Projector(
        GenealogyProjection(),
        view,
        NotificationLogFeed(ledger.recorder, ledger.mapper),
        batch_size=7,
    )
    projector.catch_up()
    return projector


def register_north_with_ore(ledger: Ledger, kg: str) -> None:
    year = (at(-60), at(300))
    ledger.execute(
        ADMIN,
        [
            c.RegisterActor("NORTH", "North Mining", "CN", ["miner"]),
            c.RegisterFacility("N-MINE", "Bayan pit", "mine", "NORTH", "CN"),
            c.IssueLicence("N-Q", "mining_quota", "NORTH", D("1000000"), *year),
        ],
    )
    ledger.execute(
        NORTH,
        [
            c.ExtractOre(
                facility="N-MINE",
                quota="N-Q",
                lot_code="ORE-N",
                mass_kg=D(kg),
                composition={"Nd": D("0.04")},
                occurred_at=at(1),
            )
        ],
    )


def is_registered(ledger: Ledger, code: str) -> bool:
    try:
        ledger.actor_by_code(code)
    except NotFound:
        return False
    return True


def wait_until(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_the_chain_records_on_the_postgres_ledger(chain_url: str, ledgers: MakeLedger) -> None:
    reloaded = ledgers(
        postgres_env(chain_url)
    )  # a new application: no cache, all from the database

    received = reloaded.batch("NORTH/OX-B")

    assert received.remaining_kg == D("199.5")
    assert received.custodian_id == ids.actor_id("AUTO")


def test_rebuild_on_postgres_gives_the_identical_fingerprint(
    chain_url: str, ledgers: MakeLedger, views: MakeView
) -> None:
    ledger = ledgers(postgres_env(chain_url))
    view = views(chain_url)
    projector = project(ledger, view)
    before = view.fingerprint()

    view.reset()
    assert projector.position() == 0
    projector.catch_up()

    assert view.fingerprint() == before
    assert projector.position() == ledger.recorder.max_notification_id()


def test_postgres_and_sqlite_views_hold_the_same_rows(
    chain_url: str, ledgers: MakeLedger, views: MakeView, tmp_path: Path
) -> None:
    on_postgres = ledgers(postgres_env(chain_url))
    on_sqlite = ledgers(sqlite_env(tmp_path / "events.sqlite"))
    record_chain(on_sqlite)  # same commands, same clock, same uuid5 ids
    postgres_view = views(chain_url)
    sqlite_view = SQLiteGenealogyView(tmp_path / "rm.sqlite")

    project(on_postgres, postgres_view)
    project(on_sqlite, sqlite_view)

    assert postgres_view.fingerprint() == sqlite_view.fingerprint()
    sqlite_view.close()


def test_repeated_events_change_nothing_on_postgres(
    chain_url: str, ledgers: MakeLedger, views: MakeView
) -> None:
    ledger = ledgers(postgres_env(chain_url))
    view = views(chain_url)
    project(ledger, view)
    before = view.fingerprint()
    items = NotificationLogFeed(ledger.recorder, ledger.mapper).poll(lambda source: 0, 100_000)

    projection = GenealogyProjection()
    for item in items:
        with view.transaction({"again": item.position}) as writer:
            projection.process_event(item.event, writer)

    assert view.fingerprint() == before


def test_concurrent_writers_on_one_batch_lose_no_update(
    make_postgres_database: Callable[[], str], ledgers: MakeLedger
) -> None:
    env = postgres_env(make_postgres_database())
    first, second = ledgers(env), ledgers(env)
    register_north_with_ore(first, "10000")
    conflicts = [_count_conflicts(first), _count_conflicts(second)]
    rounds = 25
    # Both writers start each round together, so most rounds one of them saves on a
    # stale batch, loses on the (id, version) key and runs again on fresh state.
    barrier = threading.Barrier(2)
    failures: list[BaseException] = []

    def split_off(ledger: Ledger, prefix: str) -> None:
        try:
            for n in range(rounds):
                barrier.wait(timeout=30)
                ledger.execute(NORTH, [c.Split(batch="ORE-N", parts=[(f"{prefix}-{n}", D("1"))])])
        except BaseException as error:
            failures.append(error)
            barrier.abort()

    threads = [
        threading.Thread(target=split_off, args=(first, "A")),
        threading.Thread(target=split_off, args=(second, "B")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert failures == []
    assert sum(counter[0] for counter in conflicts) > 0  # the retry path really ran
    fresh = ledgers(env)
    assert fresh.batch("NORTH/ORE-N").remaining_kg == D("10000") - 2 * rounds
    parts = [fresh.batch(f"NORTH/{p}-{n}") for p in "AB" for n in range(rounds)]
    assert all(part.initial_kg == D("1") for part in parts)


@pytest.mark.slow  # a private server, killed and restarted
def test_a_killed_server_loses_no_acknowledged_event(
    local_postgres: Callable[[], LocalPostgres], ledgers: MakeLedger
) -> None:
    server = local_postgres()
    env = postgres_env(server.url, connect_timeout=10)
    writer = ledgers(env)
    acknowledged: list[str] = []
    stop = threading.Event()

    def register_actors() -> None:
        n = 0
        while not stop.is_set():
            code = f"A{n:05d}"
            n += 1
            try:
                writer.execute(ADMIN, [c.RegisterActor(code, f"Actor {code}", "CN", ["miner"])])
            except (PersistenceError, Refusal):
                # The server went down under this one: it may or may not be stored
                # (a commit whose answer was lost), but nobody was told it was.
                continue
            acknowledged.append(code)

    thread = threading.Thread(target=register_actors)
    thread.start()
    try:
        wait_until(lambda: len(acknowledged) >= 50)
        server.kill()  # mid-stream: a save is almost surely in flight
        server.start()
        count = len(acknowledged)
        wait_until(lambda: len(acknowledged) >= count + 20)
    finally:
        stop.set()
        thread.join(timeout=120)

    reader = ledgers(env)
    assert [code for code in acknowledged if not is_registered(reader, code)] == []


@pytest.mark.slow  # a private server, killed and restarted
def test_the_ledger_writes_again_once_a_killed_server_is_back(
    local_postgres: Callable[[], LocalPostgres], ledgers: MakeLedger
) -> None:
    server = local_postgres()
    ledger = ledgers(postgres_env(server.url))
    ledger.execute(ADMIN, [c.RegisterActor("NORTH", "North Mining", "CN", ["miner"])])

    server.kill()
    server.start()
    ledger.execute(ADMIN, [c.RegisterActor("SOUTH", "South Clay", "MM", ["miner"])])

    assert is_registered(ledgers(postgres_env(server.url)), "SOUTH")


def _count_conflicts(ledger: Ledger) -> list[int]:
    """Counts the saves that lost the race, by wrapping this ledger's save."""
    counter = [0]
    save = ledger.save

    def counting_save(*args: Any, **kwargs: Any) -> Any:
        try:
            return save(*args, **kwargs)
        except IntegrityError:
            counter[0] += 1
            raise

    ledger.save = counting_save  # type: ignore[method-assign]
    return counter
