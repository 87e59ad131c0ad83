"""Element content kept with the trade lines and stock kept by each event, on SQLite and
PostgreSQL, over random demo histories (mines to end clients, with corrections): each
line's recorded content is its mass times its batch's composition; totals by element
are the sums over the lines; the stock rows are what the held batches add up to; stock
at a moment is each batch replayed to that moment; and a read model of the previous
version is emptied and rebuilt."""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from lodestone.demo.generator import load
from lodestone.domain.values import EXACT, ZERO
from lodestone.infra.sqlite.database import sqlite_env
from lodestone.ledger import Ledger
from lodestone.projections.base import View
from lodestone.projections.inventory import InventoryView, holdings, lots_from, lots_now, stock
from lodestone.projections.inventory.postgres import PostgresInventoryView
from lodestone.projections.inventory.sqlite import SQLiteInventoryView
from lodestone.projections.postgres import PostgresView
from lodestone.projections.registry import REGISTRY
from lodestone.projections.sqlite import SQLiteView
from lodestone.projections.trades import LineFilter, TradesView
from lodestone.projections.trades.postgres import PostgresTradesView
from lodestone.projections.trades.sqlite import SQLiteTradesView
from lodestone.streaming.feeds import NotificationLogFeed
from lodestone.streaming.projector import Projector
from tests.fixtures.backends import Backend, PostgresBackend
from tests.integration.test_stock_read_models import ledger_stock

SEEDS = (3, 11)
DEMO_SIZE = 400
VIEWS: dict[str, tuple[type[Any], type[Any]]] = {
    "trades": (SQLiteTradesView, PostgresTradesView),
    "inventory": (SQLiteInventoryView, PostgresInventoryView),
}
OpenView = Callable[[str, str], Any]


@pytest.fixture(scope="module")
def demo_ledgers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[int, Ledger]]:
    """One demo ledger per seed, shared by the module's tests (they only read it)."""
    ledgers = {}
    for seed in SEEDS:
        ledger = Ledger(sqlite_env(tmp_path_factory.mktemp(f"demo-{seed}") / "events.sqlite"))
        load(ledger, seed=seed, size=DEMO_SIZE)
        ledgers[seed] = ledger
    yield ledgers
    for ledger in ledgers.values():
        ledger.close()


@pytest.fixture
def open_view(backend: Backend, tmp_path: Path) -> Iterator[OpenView]:
    opened: list[View[Any]] = []

    def open_(model: str, name: str) -> Any:
        on_sqlite, on_postgres = VIEWS[model]
        if isinstance(backend, PostgresBackend):
            view = on_postgres(backend.url, schema=f"{model}_{name}")
        else:
            view = on_sqlite(tmp_path / f"{model}-{name}.sqlite")
        opened.append(view)
        return view

    yield open_
    for view in reversed(opened):
        view.close()


def projected(ledger: Ledger, model: str, view: Any, batch_size: int = 1000) -> Any:
    feed = NotificationLogFeed(ledger.recorder, ledger.mapper)
    Projector(REGISTRY[model].projection(), view, feed, batch_size=batch_size).catch_up()
    return view


def every_line(view: TradesView, where: LineFilter) -> list[Any]:
    found, offset = [], 0
    while page := view.lines(where, 1000, offset):
        found += page
        offset += len(page)
    return found


def add(into: dict[Any, D], key: Any, value: D) -> None:
    into[key] = EXACT.add(into.get(key, ZERO), value)


# --- trades ------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_each_line_s_recorded_content_is_its_mass_times_its_batch_s_composition(
    demo_ledgers: dict[int, Ledger], open_view: OpenView, seed: int
) -> None:
    view: TradesView = projected(demo_ledgers[seed], "trades", open_view("trades", "rm"))
    lines = every_line(view, LineFilter())
    assert len(lines) > 50

    contents = view.contents((line.batch_id, line.version) for line in lines)
    compositions = view.compositions({line.batch_id: line.composition_version for line in lines})

    for line in lines:
        expected = {e: line.kg * f for e, f in compositions[line.batch_id].items()}
        assert contents[line.batch_id, line.version] == expected, line


FILTERS = [
    LineFilter(),
    LineFilter(kinds=("sale", "export")),
    LineFilter(kinds=("export",)),
    LineFilter(kinds=("receipt",)),
    LineFilter(material="magnet"),
    LineFilter(from_month="2026-03", to_month="2026-05"),
    LineFilter(kinds=("export",), elements=("Sm", "Gd", "Tb", "Dy", "Lu", "Sc", "Y")),
]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("where", FILTERS, ids=range(len(FILTERS)))
def test_totals_by_element_destination_and_month_are_the_sums_over_the_lines(
    demo_ledgers: dict[int, Ledger], open_view: OpenView, seed: int, where: LineFilter
) -> None:
    view: TradesView = projected(demo_ledgers[seed], "trades", open_view("trades", "rm"))
    lines = every_line(view, replace_elements(where))
    contents = view.contents((line.batch_id, line.version) for line in lines)
    mass: dict[Any, D] = {}
    content: dict[Any, D] = {}
    count: dict[Any, int] = {}
    for line in lines:
        for element, kg in contents[line.batch_id, line.version].items():
            if where.elements and element not in where.elements:
                continue
            key = (element, line.destination_country, line.month)
            add(mass, key, line.kg)
            add(content, key, kg)
            count[key] = count.get(key, 0) + 1
    assert count

    totals = view.totals(where, ("element", "destination", "month"))

    assert {(t.element, t.destination_country, t.month): t.element_kg for t in totals} == content
    assert {(t.element, t.destination_country, t.month): t.kg for t in totals} == mass
    assert {(t.element, t.destination_country, t.month): t.lines for t in totals} == count


def replace_elements(where: LineFilter) -> LineFilter:
    """The lines of ``where`` whatever their elements (the test filters them itself)."""
    return LineFilter(
        kinds=where.kinds,
        material=where.material,
        from_month=where.from_month,
        to_month=where.to_month,
    )


@pytest.mark.parametrize("seed", SEEDS)
def test_a_total_of_one_element_sums_the_lines_that_carry_it(
    demo_ledgers: dict[int, Ledger], open_view: OpenView, seed: int
) -> None:
    view: TradesView = projected(demo_ledgers[seed], "trades", open_view("trades", "rm"))
    for element in ("Dy", "Nd", "Tb"):
        lines = every_line(view, LineFilter(elements=(element,), kinds=("sale", "export")))
        contents = view.contents((line.batch_id, line.version) for line in lines)
        assert lines and all(element in contents[line.batch_id, line.version] for line in lines)

        [total] = view.totals(LineFilter(elements=(element,), kinds=("sale", "export")), ())

        assert total.lines == len(lines)
        assert total.kg == sum((line.kg for line in lines), ZERO)
        assert total.element_kg == sum(
            (contents[line.batch_id, line.version][element] for line in lines), ZERO
        )


# --- inventory ---------------------------------------------------------------------------


def held_batches(view: InventoryView, **where: Any) -> list[Any]:
    """What the held batches add up to (the read path before stock rows were kept)."""
    held = view.held(**where)
    return holdings(lots_now(held), {b.id: b for b in held})


@pytest.mark.parametrize("seed", SEEDS)
def test_stock_rows_kept_by_each_event_are_what_the_held_batches_add_up_to(
    demo_ledgers: dict[int, Ledger], open_view: OpenView, seed: int
) -> None:
    view: InventoryView = projected(
        demo_ledgers[seed], "inventory", open_view("inventory", "rm"), batch_size=13
    )
    found = view.held_now()
    assert len(found) > 10

    assert found == held_batches(view)
    for actor in {h.actor_id for h in found}:
        assert view.held_now(actor_id=actor) == held_batches(view, actor_id=actor)
    for facility in {h.facility_id for h in found if h.facility_id}:
        assert view.held_now(facility_id=facility) == held_batches(view, facility_id=facility)


@pytest.mark.parametrize("seed", SEEDS)
def test_stock_at_a_moment_is_the_movements_up_to_it_and_each_batch_replayed_to_it(
    demo_ledgers: dict[int, Ledger], open_view: OpenView, seed: int
) -> None:
    ledger = demo_ledgers[seed]
    view: InventoryView = projected(ledger, "inventory", open_view("inventory", "rm"))
    times = sorted(m.occurred_at for m in view.movements(datetime(2100, 1, 1, tzinfo=UTC)))
    rng = random.Random(seed)
    moments = [times[0] - timedelta(seconds=1), times[-1]]
    moments += rng.sample(times, 4)
    moments += [t - timedelta(microseconds=1) for t in rng.sample(times, 2)]

    # The ledger's own replay knows a correction only from its version on; the
    # inventory applies it from the start (it states what was true all along).
    corrected = {
        n.originator_id
        for n in ledger.recorder.select_notifications(start=1, limit=100_000)
        if n.topic.endswith("Batch.Corrected")
    }
    assert corrected

    for moment in moments:
        lots = view.lots(moment)
        found = {(a, f, b): kg for a, f, b, kg in lots}

        assert found == {(a, f, b): kg for a, f, b, kg in lots_from(view.movements(moment))}
        replayed = ledger_stock(ledger, moment)
        assert {k: kg for k, kg in found.items() if k[2] not in corrected} == {
            k: kg for k, kg in replayed.items() if k[2] not in corrected
        }, moment
        assert stock(view, at=moment) == holdings(lots, view.batches({b for *_, b, _ in lots}))


@pytest.mark.parametrize("seed", SEEDS)
def test_stock_rows_do_not_depend_on_how_events_are_grouped_into_transactions(
    demo_ledgers: dict[int, Ledger], open_view: OpenView, seed: int
) -> None:
    one = projected(demo_ledgers[seed], "inventory", open_view("inventory", "one"), batch_size=1)
    many = projected(demo_ledgers[seed], "inventory", open_view("inventory", "many"))

    assert one.fingerprint() == many.fingerprint()


# --- a read model of the previous version ------------------------------------------------


def stamp_version(backend: Backend, view: Any, projection: str, version: int) -> None:
    """Marks the view's rows as written by another version of the projection."""
    update = "UPDATE projection_versions SET version = {} WHERE projection = '{}'"
    statement = update.format(int(version), projection)
    if isinstance(backend, PostgresBackend):
        assert isinstance(view, PostgresView)
        with psycopg.connect(backend.url, autocommit=True) as conn:
            conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(view.schema)))
            conn.execute(statement.encode())
        return
    assert isinstance(view, SQLiteView)
    with closing(sqlite3.connect(view.path)) as db, db:
        db.execute(statement)


@pytest.mark.parametrize("model", sorted(VIEWS))
def test_a_read_model_of_version_1_is_emptied_and_rebuilt_to_the_same_rows(
    demo_ledgers: dict[int, Ledger], backend: Backend, open_view: OpenView, model: str
) -> None:
    ledger = demo_ledgers[SEEDS[0]]
    assert REGISTRY[model].version >= 2  # trades is at 3 since its kept totals
    old = projected(ledger, model, open_view(model, "rm"))
    before = old.fingerprint()
    stamp_version(backend, old, model, 1)
    old.close()

    reopened = open_view(model, "rm")

    assert reopened.position(NotificationLogFeed.source) == 0
    projected(ledger, model, reopened)
    assert reopened.fingerprint() == before
