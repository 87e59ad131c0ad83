"""The stores a long-running process keeps beside the event store (stored rows,
positions, checkpoints) share one connection to its database (lodestone.bootstrap)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lodestone.audit.checkpointer import Checkpointer
from lodestone.bootstrap.settings import Settings
from lodestone.bootstrap.stores import LedgerTables, build_ledger_tables
from lodestone.infra.postgres.database import postgres_env
from lodestone.infra.sqlite.database import sqlite_env
from lodestone.ledger import Ledger
from tests.integration.conftest import NOW, record_chain


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    if request.param == "postgres":
        make: Callable[[], str] = request.getfixturevalue("make_postgres_database")
        return Settings(postgres_url=make())
    return Settings(data_dir=tmp_path)


@pytest.fixture
def ledger(settings: Settings) -> Iterator[Ledger]:
    if settings.postgres_url is not None:
        env = postgres_env(settings.postgres_url.get_secret_value())
    else:
        env = sqlite_env(settings.event_store_path)
    ledger = Ledger(env, clock=lambda: NOW)
    record_chain(ledger)
    yield ledger
    ledger.close()


@pytest.fixture
def tables(settings: Settings, ledger: Ledger) -> Iterator[LedgerTables]:
    tables = build_ledger_tables(settings)
    yield tables
    tables.close()


def test_rows_positions_and_checkpoints_answer_from_one_connection(
    ledger: Ledger, tables: LedgerTables
) -> None:
    last = tables.rows.max_position()
    Checkpointer(ledger.recorder, tables.checkpoints).make()
    tables.positions.set("relay:lodestone.events.v1", last)

    assert last == ledger.recorder.max_notification_id()
    assert tables.positions.get("relay:lodestone.events.v1") == last
    latest = tables.checkpoints.latest()
    assert latest is not None and latest["last_position"] == last


def test_threads_sharing_the_connection_see_each_others_writes(tables: LedgerTables) -> None:
    last = tables.rows.max_position()
    failures: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for position in range(1, 51):
                tables.positions.set(f"loop-{n}", position)
                assert tables.positions.get(f"loop-{n}") == position
                assert len(tables.rows.scan(1, 10, last)) == min(10, last)
                tables.checkpoints.list()
        except BaseException as error:
            failures.append(error)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert failures == []
    assert [tables.positions.get(f"loop-{n}") for n in range(4)] == [50] * 4


def test_closing_one_shared_store_leaves_the_others_working(tables: LedgerTables) -> None:
    tables.rows.close()
    tables.positions.set("relay", 7)

    assert tables.positions.get("relay") == 7
    assert tables.rows.max_position() > 0
