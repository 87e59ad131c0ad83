"""The trade-ledger read model on SQLite and PostgreSQL: the lines of a small chain with
their parties and element content, exact totals, corrections, and the same state
whatever the order of batches and after a rebuild from position 0."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal as D
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from lodestone.bootstrap.settings import Settings
from lodestone.bootstrap.stores import open_view
from lodestone.domain.batches import Batch
from lodestone.infra.postgres.database import postgres_env
from lodestone.infra.sqlite.database import sqlite_env
from lodestone.ledger import Ledger
from lodestone.ledger import commands as c
from lodestone.projections.registry import REGISTRY
from lodestone.projections.trades import LineFilter, ListedLine, TradesProjection, TradesView
from lodestone.projections.trades.postgres import PostgresTradesView
from lodestone.projections.trades.sqlite import SQLiteTradesView
from lodestone.streaming.feeds import NotificationLogFeed
from lodestone.streaming.projector import Projector
from tests.fixtures.backends import Backend, PostgresBackend
from tests.integration.conftest import NOW, at, operator, record_chain

Events = list[tuple[int, Any]]
Opener = Callable[[str], TradesView]


@pytest.fixture
def open_trades(backend: Backend, tmp_path: Path) -> Iterator[Opener]:
    """Opens trade-ledger views private to the test on the backend under test."""
    opened: list[TradesView] = []

    def open_(name: str) -> TradesView:
        view: TradesView
        if isinstance(backend, PostgresBackend):
            view = PostgresTradesView(backend.url, schema=f"trades_{name}")
        else:
            view = SQLiteTradesView(tmp_path / f"trades-{name}.sqlite")
        opened.append(view)
        return view

    yield open_
    for view in opened:
        view.close()


def project(ledger: Ledger, view: TradesView) -> Projector:
    projector = Projector(
        TradesProjection(), view, NotificationLogFeed(ledger.recorder, ledger.mapper), batch_size=7
    )
    projector.catch_up()
    return projector


def all_events(ledger: Ledger) -> Events:
    items = NotificationLogFeed(ledger.recorder, ledger.mapper).poll(lambda source: 0, 100_000)
    return [(item.position, item.event) for item in items]


def apply(view: TradesView, events: Events) -> None:
    projection = TradesProjection()
    for position, event in events:
        with view.transaction({"test": position}) as writer:
            projection.process_event(event, writer)


def interleaved(events: Events, seed: int) -> Events:
    """Each aggregate's events in their own order (as a Kafka partition keeps them),
    the aggregates dealt in a random order."""
    queues: dict[UUID, Events] = {}
    for item in events:
        queues.setdefault(item[1].originator_id, []).append(item)
    rng = random.Random(seed)
    dealt: Events = []
    while queues:
        key = rng.choice(sorted(queues, key=str))
        dealt.append(queues[key].pop(0))
        if not queues[key]:
            del queues[key]
    return dealt


def codes(view: TradesView, ids: list[UUID | None]) -> list[str | None]:
    parties = view.parties(i for i in ids if i)
    return [parties[i].code if i else None for i in ids]


def content(view: TradesView, line: ListedLine) -> dict[str, D]:
    assert line.composition_version is not None and line.kg is not None
    composition = view.compositions({line.batch_id: line.composition_version})[line.batch_id]
    return {e: line.kg * f for e, f in composition.items()}


def line_of(view: TradesView, kind: str, reference: str) -> ListedLine:
    (found,) = [
        line
        for line in view.lines(LineFilter(kinds=(kind,)), 1000, 0)
        if line.reference == reference
    ]
    return found


# --- the lines -------------------------------------------------------------------------------


def test_every_sale_export_and_receipt_is_a_line_with_its_seller_and_client(
    chain_ledger: Ledger, open_trades: Opener
) -> None:
    view = open_trades("rm")
    project(chain_ledger, view)

    found = view.lines(LineFilter(), 1000, 0)

    assert [(line.kind, line.reference, line.kg) for line in found] == [
        ("sale", "SOUTH/ORE-S", D("100000")),
        ("sale", "NORTH/CON-N", D("500")),
        ("sale", "NORTH/CON-N", D("500")),
        ("sale", "NORTH/OX-A", D("100")),
        ("export", "NORTH/OX-B", D("200")),
        ("receipt", "NORTH/OX-B", D("199.5")),
    ]
    assert codes(view, [line.seller_id for line in found]) == [
        "SOUTH",
        "NORTH",
        "TRADER",
        "NORTH",
        "NORTH",
        "NORTH",
    ]
    assert codes(view, [line.client_id for line in found]) == [
        "NORTH",
        "TRADER",
        "NORTH",
        "TRADER",
        "AUTO",
        "AUTO",
    ]
    assert view.count(LineFilter()) == 6


def test_a_sale_line_carries_its_price_currency_contract_and_utc_month(
    chain_ledger: Ledger, open_trades: Opener
) -> None:
    view = open_trades("rm")
    project(chain_ledger, view)

    sale = line_of(view, "sale", "NORTH/OX-A")

    assert (sale.price, sale.currency, sale.contract) == (D("8500.50"), "USD", "K-4")
    assert sale.material == "oxide"
    assert sale.occurred_at == at(10)
    assert sale.month == "2026-03"


def test_an_export_line_names_consignee_end_user_destination_customs_code_and_licence(
    chain_ledger: Ledger, open_trades: Opener
) -> None:
    view = open_trades("rm")
    project(chain_ledger, view)

    export = line_of(view, "export", "NORTH/OX-B")

    assert codes(view, [export.client_id, export.licence_id]) == ["AUTO", "N-EX"]
    assert (export.end_user, export.destination_country, export.customs_code) == (
        "Auto GmbH",
        "DE",
        "2846.90",
    )
    assert export.price is None and export.contract is None


def test_a_receipt_line_carries_the_exporter_destination_and_licence_of_its_export(
    chain_ledger: Ledger, open_trades: Opener
) -> None:
    view = open_trades("rm")
    project(chain_ledger, view)

    receipt = line_of(view, "receipt", "NORTH/OX-B")

    assert codes(view, [receipt.seller_id, receipt.client_id, receipt.licence_id]) == [
        "NORTH",
        "AUTO",
        "N-EX",
    ]
    assert (receipt.destination_country, receipt.customs_code) == ("DE", "2846.90")


def test_a_line_s_element_content_is_its_mass_times_its_batch_s_composition(
    chain_ledger: Ledger, open_trades: Opener
) -> None:
    view = open_trades("rm")
    project(chain_ledger, view)

    # OX-B is 300 kg of NdPr oxide (0.67 Nd, 0.17 Pr) merged with 20 kg of Dy oxide
    # (0.87 Dy): Dy 17.4 / 320 = 0.054375; 200 kg of it exported carry 10.875 kg Dy.
    assert content(view, line_of(view, "export", "NORTH/OX-B")) == {
        "Nd": D("125.625"),
        "Pr": D("31.875"),
        "Dy": D("10.875"),
    }
    assert content(view, line_of(view, "sale", "SOUTH/ORE-S")) == {
        "Nd": D("40"),
        "Dy": D("30"),
        "Y": D("80"),
    }


# --- totals -----------------------------------------------------------------------------------


def test_totals_by_element_are_the_exact_sums_of_the_lines_content(
    chain_ledger: Ledger, open_trades: Opener
) -> None:
    view = open_trades("rm")
    project(chain_ledger, view)
    expected: dict[str, D] = {}
    for line in view.lines(LineFilter(), 1000, 0):
        for element, kg in content(view, line).items():
            expected[element] = expected.get(element, D(0)) + kg

    totals = view.totals(LineFilter(), ("element",))

    assert {t.element: t.element_kg for t in totals} == expected
    # 30 + 2.5 + 2.5 + 5.4375 + 10.875 + 10.8478125: exact, not floating point.
    assert expected["Dy"] == D("62.1603125")
    assert {t.element: t.lines for t in totals}["Y"] == 1


def test_totals_by_month_and_destination_sum_the_mass_of_the_lines_filtered(
    chain_ledger: Ledger, open_trades: Opener
) -> None:
    view = open_trades("rm")
    project(chain_ledger, view)

    by_month = view.totals(LineFilter(kinds=("sale", "export")), ("month",))
    exports = view.totals(LineFilter(kinds=("export",), elements=("Dy",)), ("destination",))

    assert [(t.month, t.kg, t.lines) for t in by_month] == [("2026-03", D("101300"), 5)]
    assert [(t.destination_country, t.kg, t.element_kg) for t in exports] == [
        ("DE", D("200"), D("10.875"))
    ]


def test_filters_select_lines_by_seller_client_party_material_country_and_period(
    chain_ledger: Ledger, open_trades: Opener
) -> None:
    view = open_trades("rm")
    project(chain_ledger, view)
    north, trader = (chain_ledger.actor_by_code(code).id for code in ("NORTH", "TRADER"))

    def refs(where: LineFilter) -> list[tuple[str | None, str | None]]:
        return [(line.kind, line.reference) for line in view.lines(where, 1000, 0)]

    assert refs(LineFilter(seller=trader)) == [("sale", "NORTH/CON-N")]
    assert refs(LineFilter(client=trader)) == [("sale", "NORTH/CON-N"), ("sale", "NORTH/OX-A")]
    assert len(refs(LineFilter(party=north))) == 6
    assert refs(LineFilter(material="ore")) == [("sale", "SOUTH/ORE-S")]
    assert refs(LineFilter(country="DE", kinds=("export",))) == [("export", "NORTH/OX-B")]
    assert refs(LineFilter(elements=("Y",))) == [("sale", "SOUTH/ORE-S")]
    assert refs(LineFilter(from_month="2026-04")) == []
    assert len(refs(LineFilter(from_month="2026-03", to_month="2026-03"))) == 6


def test_lines_come_a_page_at_a_time_in_the_order_they_occurred(
    chain_ledger: Ledger, open_trades: Opener
) -> None:
    view = open_trades("rm")
    project(chain_ledger, view)
    every = view.lines(LineFilter(), 1000, 0)

    pages = [view.lines(LineFilter(), 4, offset) for offset in (0, 4)]

    assert [len(page) for page in pages] == [4, 2]
    assert pages[0] + pages[1] == every


# --- corrections ------------------------------------------------------------------------------


def sold_then_corrected(ledger: Ledger) -> None:
    """NORTH mines ORE-X in March and sells it to TRADER; then corrects the sale's time
    to April, and the ore's composition."""
    north = operator("NORTH")
    ore = {"Nd": D("0.04"), "Dy": D("0.001")}
    ledger.execute(
        north,
        [
            c.ExtractOre(
                facility="N-MINE",
                quota="N-Q",
                lot_code="ORE-X",
                mass_kg=D("1000"),
                composition=ore,
                occurred_at=at(1),
            )
        ],
    )
    ledger.execute(
        north,
        [c.TransferCustody(batch="ORE-X", buyer="TRADER", contract="K-9", occurred_at=at(25))],
    )
    ledger.execute(
        north,
        [
            c.CorrectEvent(
                batch="ORE-X",
                version=2,
                reason="incorrect-data",
                facts={"occurred_at": "2026-04-02T08:00:00+00:00"},
                note="the truck left in April",
            )
        ],
    )
    ledger.execute(
        north,
        [
            c.CorrectEvent(
                batch="ORE-X",
                version=1,
                reason="incorrect-data",
                facts={"composition": {"Nd": "0.05", "Y": "0.002"}},
                note="assay redone",
            )
        ],
    )


def test_a_correction_of_a_sale_s_time_moves_its_line_to_the_new_month(
    chain_ledger: Ledger, open_trades: Opener
) -> None:
    sold_then_corrected(chain_ledger)
    view = open_trades("rm")
    project(chain_ledger, view)

    sale = line_of(view, "sale", "NORTH/ORE-X")

    assert sale.occurred_at == datetime(2026, 4, 2, 8, tzinfo=UTC)
    assert sale.month == "2026-04"
    assert sale.corrected_by == 3
    assert (sale.kg, sale.contract) == (D("1000"), "K-9")  # the rest of the sale stays


def test_a_correction_of_a_composition_changes_the_content_of_the_batch_s_lines(
    chain_ledger: Ledger, open_trades: Opener
) -> None:
    sold_then_corrected(chain_ledger)
    view = open_trades("rm")
    project(chain_ledger, view)

    sale = line_of(view, "sale", "NORTH/ORE-X")

    # Dy is gone from the corrected composition; Y is new.
    assert content(view, sale) == {"Nd": D("50"), "Y": D("2")}


def test_an_element_a_correction_removed_no_longer_counts_for_the_batch_s_lines(
    chain_ledger: Ledger, open_trades: Opener
) -> None:
    sold_then_corrected(chain_ledger)
    view = open_trades("rm")
    project(chain_ledger, view)
    ores = LineFilter(material="ore")

    with_dy = view.lines(replace(ores, elements=("Dy",)), 10, 0)
    dy = view.totals(ores, ("element",))

    assert [line.reference for line in with_dy] == ["SOUTH/ORE-S"]
    assert {t.element: t.element_kg for t in dy}["Dy"] == D("30")


def test_a_sale_repeated_after_its_correction_leaves_the_corrected_line(
    chain_ledger: Ledger, open_trades: Opener
) -> None:
    sold_then_corrected(chain_ledger)
    view = open_trades("rm")
    project(chain_ledger, view)
    before = view.fingerprint()
    ore_x = chain_ledger.batch("NORTH/ORE-X").id

    apply(view, [e for e in all_events(chain_ledger) if e[1].originator_id == ore_x][1:2])

    assert line_of(view, "sale", "NORTH/ORE-X").month == "2026-04"
    assert view.fingerprint() == before


# --- the same state, whatever the order -----------------------------------------------------


def test_rebuild_from_position_zero_gives_the_identical_state(
    chain_ledger: Ledger, open_trades: Opener
) -> None:
    sold_then_corrected(chain_ledger)
    view = open_trades("rm")
    projector = project(chain_ledger, view)
    before = view.fingerprint()

    view.reset()
    assert projector.position() == 0
    assert view.count(LineFilter()) == 0
    projector.catch_up()

    assert view.fingerprint() == before
    assert projector.position() == chain_ledger.recorder.max_notification_id()


def test_repeated_events_change_nothing(chain_ledger: Ledger, open_trades: Opener) -> None:
    sold_then_corrected(chain_ledger)
    view = open_trades("rm")
    project(chain_ledger, view)
    before = view.fingerprint()

    apply(view, all_events(chain_ledger))

    assert view.fingerprint() == before


def test_the_rows_do_not_depend_on_how_the_batches_interleave(
    chain_ledger: Ledger, open_trades: Opener
) -> None:
    sold_then_corrected(chain_ledger)
    in_order = open_trades("ordered")
    project(chain_ledger, in_order)
    events = all_events(chain_ledger)
    orders = [interleaved(events, seed) for seed in (3, 8)]
    assert orders[0] != events and orders[1] != events and orders[0] != orders[1]
    views = [open_trades("first"), open_trades("second")]

    for view, order in zip(views, orders, strict=True):
        apply(view, order)

    assert [view.fingerprint() for view in views] == [in_order.fingerprint()] * 2


def test_a_sale_applied_before_its_batch_s_creation_gets_its_content_when_it_arrives(
    chain_ledger: Ledger, open_trades: Opener
) -> None:
    view = open_trades("rm")
    ore_s = chain_ledger.batch("SOUTH/ORE-S").id
    events = [e for e in all_events(chain_ledger) if e[1].originator_id == ore_s]
    sale = [e for e in events if isinstance(e[1], Batch.CustodyTransferred)]
    apply(view, sale)
    (early,) = view.lines(LineFilter(), 10, 0)
    assert (early.reference, early.composition_version, early.kg) == (None, None, D("100000"))

    apply(view, [e for e in events if isinstance(e[1], Batch.Created)])

    assert content(view, line_of(view, "sale", "SOUTH/ORE-S")) == {
        "Nd": D("40"),
        "Dy": D("30"),
        "Y": D("80"),
    }


# --- both databases, and the registry ---------------------------------------------------------


@pytest.mark.postgres
def test_sqlite_and_postgres_give_the_same_lines_and_totals(
    make_postgres_database: Callable[[], str], tmp_path: Path
) -> None:
    url = make_postgres_database()
    ledgers = [
        Ledger(sqlite_env(tmp_path / "events.sqlite"), clock=lambda: NOW),
        Ledger(postgres_env(url), clock=lambda: NOW),
    ]
    views: list[TradesView] = [SQLiteTradesView(tmp_path / "rm.sqlite"), PostgresTradesView(url)]
    try:
        for ledger, view in zip(ledgers, views, strict=True):
            record_chain(ledger)  # same commands, same clock, same uuid5 ids
            sold_then_corrected(ledger)
            project(ledger, view)
        on_sqlite, on_postgres = views

        assert on_sqlite.fingerprint() == on_postgres.fingerprint()
        assert on_sqlite.lines(LineFilter(), 1000, 0) == on_postgres.lines(LineFilter(), 1000, 0)
        for by in (("element",), ("month", "client"), ("destination",)):
            assert sorted(on_sqlite.totals(LineFilter(), by), key=repr) == sorted(
                on_postgres.totals(LineFilter(), by), key=repr
            )
    finally:
        for view in views:
            view.close()
        for ledger in ledgers:
            ledger.close()


def test_the_registry_opens_the_trades_view_of_the_configured_database(
    backend: Backend, tmp_path: Path
) -> None:
    if isinstance(backend, PostgresBackend):
        settings = Settings(postgres_url=backend.url, data_dir=tmp_path / "unused")
        expected: type[TradesView] = PostgresTradesView
    else:
        settings = Settings(data_dir=tmp_path / "data", postgres_url=None)
        expected = SQLiteTradesView

    view = open_view(settings, REGISTRY["trades"])
    try:
        assert type(view) is expected
        assert view.position("ledger") == 0
    finally:
        view.close()
