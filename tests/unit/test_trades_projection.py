"""The trade-ledger projection without a database: its routing table, its tables'
columns, and the statements its view runs."""

from __future__ import annotations

from dataclasses import fields
from typing import Any
from uuid import uuid4

import pytest

from lodestone.domain.access import Credential
from lodestone.domain.actors import Facility
from lodestone.domain.batches import Batch
from lodestone.domain.values import CONTROLLED
from lodestone.projections.registry import REGISTRY
from lodestone.projections.tables import POSTGRES, SQLITE
from lodestone.projections.trades import Key, LineFilter, TradesProjection
from lodestone.projections.trades.schema import (
    BATCH_TOTALS,
    BATCHES,
    CONTENTS,
    ELEMENTS,
    KEPT,
    LINES,
    PARTIES,
    kept_dimension,
    kept_totals_query,
    totals_query,
)
from lodestone.reads.trades import DASHBOARD_ELEMENTS


def test_every_way_of_making_a_batch_keeps_its_composition_for_the_trade_ledger() -> None:
    routes = TradesProjection.handler
    created = routes(Batch.Created)

    assert created is not None
    for made in (Batch.OreExtracted, Batch.ScrapCollected, Batch.Produced, Batch.SplitOff):
        assert routes(made) is created
    assert routes(Batch.BatchesMerged) is created


def test_the_trade_ledger_ignores_steps_that_are_not_trades() -> None:
    routes = TradesProjection.handler

    for other in (Batch.Consumed, Batch.BatchMoved, Batch.BatchQuarantined, Facility.Registered):
        assert routes(other) is None
    assert routes(Credential.Issued) is None


@pytest.mark.parametrize(
    "table",
    [LINES, BATCHES, ELEMENTS, CONTENTS, PARTIES, KEPT, BATCH_TOTALS],
    ids=lambda t: t.name,
)
def test_a_trade_ledger_table_has_its_row_type_s_fields_as_columns(table: Any) -> None:
    assert table.column_names == [f.name for f in fields(table.row)]


def test_the_registry_runs_the_trade_ledger_at_version_3() -> None:
    assert REGISTRY["trades"].projection is TradesProjection
    assert REGISTRY["trades"].version == 3


def test_the_export_dashboard_covers_exactly_the_controlled_elements() -> None:
    assert frozenset(DASHBOARD_ELEMENTS) == CONTROLLED
    assert len(DASHBOARD_ELEMENTS) == len(CONTROLLED)


def test_totals_sum_exactly_on_each_database() -> None:
    query, params = totals_query(LineFilter(elements=("Dy",), kinds=("sale",)), ("month",))

    on_sqlite, on_postgres = query.render(SQLITE), query.render(POSTGRES)

    assert "dsum(c.line_kg)" in on_sqlite and "dsum(c.kg)" in on_sqlite
    assert "SUM(c.line_kg)" in on_postgres and "SUM(c.kg)" in on_postgres
    assert on_sqlite.count("?") == on_postgres.count("%s") == len(params) == 2


def test_an_element_total_reads_the_contents_alone() -> None:
    query, _ = totals_query(LineFilter(elements=("Dy",)), ("element", "month"))

    for sql in (query.render(SQLITE), query.render(POSTGRES)):
        assert " FROM trade_contents c WHERE " in sql
        assert "JOIN" not in sql and "dmul" not in sql and "fraction" not in sql


def test_a_total_not_grouped_by_element_takes_one_element_at_most() -> None:
    with pytest.raises(ValueError, match="one element at most"):
        totals_query(LineFilter(elements=("Dy", "Tb")), ("month",))


def test_totals_naming_no_company_are_read_from_the_kept_rows() -> None:
    where = LineFilter(kinds=("export",), elements=("Dy", "Tb"), country="DE")
    by: tuple[Key, ...] = ("element", "destination", "month")
    dimension = kept_dimension(where, by)
    query, params = kept_totals_query(where, by, "destination")

    assert dimension == "destination"
    assert kept_dimension(LineFilter(), ("client",)) == "client"
    assert kept_dimension(LineFilter(material="magnet"), ("month",)) == ""
    for sql in (query.render(SQLITE), query.render(POSTGRES)):
        assert " FROM trade_totals t WHERE " in sql and "JOIN" not in sql
    assert params == ["destination", "Dy", "Tb", "export", "DE"]


def test_totals_naming_a_company_keep_the_query_over_the_lines() -> None:
    someone = uuid4()

    for where, by in (
        (LineFilter(seller=someone), ("month",)),
        (LineFilter(client=someone), ("element",)),
        (LineFilter(party=someone), ()),
        (LineFilter(country="DE"), ("client",)),
    ):
        assert kept_dimension(where, by) is None
