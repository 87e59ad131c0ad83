"""The trade totals kept as rows (``trade_totals``) on SQLite and PostgreSQL: after a
random history of sales, exports, receipts and corrections of times and compositions,
every total read from them equals the sum over the lines and their content, and equals
the aggregate over the lines the view ran before; and they are the same whatever order
the batches' events interleave in and however the events are grouped in transactions."""

from __future__ import annotations

import random
from collections.abc import Iterator
from decimal import Decimal as D
from typing import Any

import pytest

from lodestone.ledger import Ledger
from lodestone.ledger import commands as c
from lodestone.projections.trades import Key, LineFilter, Total, TradesProjection, TradesView
from lodestone.projections.trades.schema import totals_query
from tests.integration.conftest import at, operator
from tests.integration.test_trades_projection import (
    Events,
    Opener,
    all_events,
    apply,
    interleaved,
    project,
)
from tests.integration.test_trades_projection import open_trades as open_trades  # a fixture

SEEDS = (1, 2, 3)
Group = tuple[Any, ...]


def random_history(ledger: Ledger, seed: int) -> None:
    """On top of the chain: ores mined by NORTH with random compositions, each sold to
    TRADER some day of March to May; then some sales moved to another day and some
    compositions corrected (an element added, one dropped)."""
    rng = random.Random(seed)
    north = operator("NORTH")
    lots = [f"R{seed}-{n}" for n in range(8)]
    for lot in lots:
        composition = {
            e: D(rng.randint(1, 900)) / D(10_000)
            for e in rng.sample(["Nd", "Pr", "Dy", "Tb", "Y"], rng.randint(1, 3))
        }
        ledger.execute(
            north,
            [
                c.ExtractOre(
                    facility="N-MINE",
                    quota="N-Q",
                    lot_code=lot,
                    mass_kg=D(rng.randint(1, 99_999)) / D(1000),
                    composition=composition,
                    occurred_at=at(rng.randint(0, 20)),
                )
            ],
        )
        ledger.execute(
            north,
            [
                c.TransferCustody(
                    batch=lot,
                    buyer="TRADER",
                    contract=f"K-{lot}",
                    occurred_at=at(rng.randint(21, 80)),
                )
            ],
        )
    for lot in rng.sample(lots, 4):
        ledger.execute(
            north,
            [
                c.CorrectEvent(
                    batch=lot,
                    version=2,
                    reason="incorrect-data",
                    facts={"occurred_at": at(rng.randint(21, 80)).isoformat()},
                    note="moved",
                )
            ],
        )
    for lot in rng.sample(lots, 4):
        shares = {
            e: str(D(rng.randint(1, 500)) / D(10_000)) for e in rng.sample(["Nd", "Sm", "Gd"], 2)
        }
        ledger.execute(
            north,
            [
                c.CorrectEvent(
                    batch=lot,
                    version=1,
                    reason="incorrect-data",
                    facts={"composition": shares},
                    note="assay redone",
                )
            ],
        )


#: The questions the endpoints and dashboards ask of totals.
QUESTIONS: list[tuple[LineFilter, tuple[Key, ...]]] = [
    (where, by)
    for where in (
        LineFilter(),
        LineFilter(kinds=("sale", "export")),
        LineFilter(kinds=("receipt",)),
        LineFilter(elements=("Nd",)),
        LineFilter(elements=("Dy",), kinds=("sale", "export")),
        LineFilter(material="ore"),
        LineFilter(country="DE"),
        LineFilter(from_month="2026-04", to_month="2026-04"),
    )
    for by in ((), ("month",), ("client",), ("destination",), ("element",))
    if not (where.country and by == ("client",))
] + [
    (
        LineFilter(kinds=("export",), elements=("Sm", "Gd", "Tb", "Dy")),
        ("element", "destination", "month"),
    ),
    (LineFilter(kinds=("export",), material="oxide"), ("destination", "month")),
]


def answers(view: TradesView, where: LineFilter, by: tuple[Key, ...]) -> dict[Group, Group]:
    return {_group(t, by): (t.kg, t.lines, t.element_kg) for t in view.totals(where, by)}


def _group(t: Total, by: tuple[Key, ...]) -> Group:
    keys = {
        "month": t.month,
        "client": t.client_id,
        "destination": t.destination_country,
        "element": t.element,
    }
    return tuple(keys[k] for k in by)


def summed_over_lines(
    view: TradesView, where: LineFilter, by: tuple[Key, ...]
) -> dict[Group, Group]:
    """The same totals summed here, line by line, from the lines and their content."""
    every = view.lines(LineFilter(kinds=where.kinds), 1000, 0)
    contents = view.contents((line.batch_id, line.version) for line in every)
    found: dict[Group, list[Any]] = {}
    for line in every:
        if where.material is not None and line.material != where.material:
            continue
        if where.country is not None and line.destination_country != where.country:
            continue
        if where.from_month is not None and (line.month or "") < where.from_month:
            continue
        if where.to_month is not None and (line.month or "") > where.to_month:
            continue
        content = contents[(line.batch_id, line.version)]
        keyed: dict[str, Any] = {
            "month": line.month,
            "client": line.client_id,
            "destination": line.destination_country,
        }
        by_content = "element" in by or where.elements
        shares: list[tuple[str | None, D | None]] = (
            [(e, kg) for e, kg in content.items() if not where.elements or e in where.elements]
            if by_content
            else [(None, None)]
        )
        for element, kg in shares:
            group = tuple(element if k == "element" else keyed[k] for k in by)
            total = found.setdefault(group, [D(0), 0, None])
            total[0] += line.kg
            total[1] += 1
            if kg is not None:
                total[2] = (total[2] or D(0)) + kg
    return {group: tuple(total) for group, total in found.items()}


def scanned(view: TradesView, where: LineFilter, by: tuple[Key, ...]) -> dict[Group, Group]:
    """The same totals by the aggregate over lines (content rows) the view ran before."""
    query, params = totals_query(where, by)
    rows = view._query(query, params)  # type: ignore[attr-defined]
    return {_group(t, by): (t.kg, t.lines, t.element_kg) for t in rows if t.lines}


@pytest.fixture(params=SEEDS, ids=[f"seed{s}" for s in SEEDS])
def history(request: pytest.FixtureRequest, chain_ledger: Ledger) -> Iterator[Ledger]:
    random_history(chain_ledger, request.param)
    yield chain_ledger


def test_kept_totals_equal_the_sums_over_the_lines_after_a_random_history(
    history: Ledger, open_trades: Opener
) -> None:
    view = open_trades("kept")
    project(history, view)

    for where, by in QUESTIONS:
        assert answers(view, where, by) == summed_over_lines(view, where, by), (where, by)


def test_kept_totals_equal_the_aggregate_over_the_lines_after_a_random_history(
    history: Ledger, open_trades: Opener
) -> None:
    view = open_trades("kept")
    project(history, view)

    for where, by in QUESTIONS:
        assert answers(view, where, by) == scanned(view, where, by), (where, by)


def in_one_transaction(view: TradesView, events: Events) -> None:
    projection = TradesProjection()
    with view.transaction({"test": events[-1][0]}) as writer:
        for _, event in events:
            projection.process_event(event, writer)


def test_kept_totals_do_not_depend_on_the_order_or_grouping_of_the_events(
    history: Ledger, open_trades: Opener
) -> None:
    in_order = open_trades("ordered")
    project(history, in_order)  # groups of 7 events
    events = all_events(history)
    one_by_one, interleaved_view, all_at_once = (
        open_trades("single"),
        open_trades("dealt"),
        open_trades("once"),
    )

    apply(one_by_one, events)
    apply(interleaved_view, interleaved(events, 5))
    in_one_transaction(all_at_once, interleaved(events, 11))

    views = (one_by_one, interleaved_view, all_at_once)
    assert [v.fingerprint() for v in views] == [in_order.fingerprint()] * 3
    for where, by in QUESTIONS:
        expected = answers(in_order, where, by)
        assert [answers(v, where, by) for v in views] == [expected] * 3, (where, by)
