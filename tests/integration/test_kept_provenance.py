"""The provenance shares the genealogy view keeps per batch, on SQLite and PostgreSQL:
the answers of the walk over the batch's whole upstream, for the chain recorded through
the ledger, for random graphs written in any order, and after corrections."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal as D
from typing import Any
from uuid import UUID

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lodestone.ledger import Ledger
from lodestone.projections import genealogy
from lodestone.projections.genealogy import BatchRow, GenealogyProjection, GenealogyView
from lodestone.streaming.feeds import NotificationLogFeed
from lodestone.streaming.projector import Projector
from tests.fixtures.backends import Backend
from tests.unit.test_provenance import ELEMENTS, Graph, fractions, graphs


def walked(view: GenealogyView, id: UUID) -> dict[str, list[genealogy.OriginShare]]:
    return genealogy.provenance(genealogy.upstream(view, id))


def kept(view: GenealogyView, id: UUID) -> dict[str, list[genealogy.OriginShare]]:
    return genealogy.answer(view.batches([id])[id], view.shares([id])[id])


def projected(ledger: Ledger, view: GenealogyView) -> GenealogyView:
    feed = NotificationLogFeed(ledger.recorder, ledger.mapper)
    Projector(GenealogyProjection(), view, feed, batch_size=7).catch_up()
    return view


def all_ids(view: GenealogyView, ledger: Ledger) -> list[UUID]:
    refs = ["NORTH/ORE-N", "SOUTH/ORE-S", "NORTH/OX-B"]
    root = ledger.batch(refs[0]).id
    ids = {root} | {e.child_id for e in view.descendants(root)}
    ids |= {ledger.batch(ref).id for ref in refs}
    return sorted(ids)


def test_every_batch_of_the_chain_keeps_the_shares_the_walk_gives(
    chain_ledger: Ledger, backend: Backend
) -> None:
    view = projected(chain_ledger, backend.genealogy_view("rm"))
    ids = all_ids(view, chain_ledger)

    assert len(ids) > 5
    for id in ids:
        assert kept(view, id) == walked(view, id)
    assert kept(view, chain_ledger.batch("NORTH/OX-B").id)["Dy"][0].country == "MM"


def test_a_corrected_composition_changes_the_shares_of_every_batch_below_it(
    chain_ledger: Ledger, backend: Backend
) -> None:
    view = projected(chain_ledger, backend.genealogy_view("rm"))
    ore = view.batches([chain_ledger.batch("SOUTH/ORE-S").id])
    (row,) = ore.values()
    target = chain_ledger.batch("NORTH/OX-B").id
    before = kept(view, target)
    assert row.composition is not None

    # What the projection writes for a Batch.Corrected that changes the composition.
    with view.transaction({"test": 1}) as writer:
        writer.upsert_batch(
            BatchRow(row.id, row.version + 1, composition={**row.composition, "Dy": D("0.003")})
        )

    assert kept(view, target) != before
    for id in all_ids(view, chain_ledger):
        assert kept(view, id) == walked(view, id)


def write(view: GenealogyView, graph: Graph, order: list[int], cuts: list[int]) -> None:
    """The graph's rows and edges, one write each, in ``order``, committed in
    transactions ending at ``cuts``."""
    writes: list[tuple[str, Any]] = [("row", r) for r in graph.rows.values()]
    writes += [("edge", e) for e in graph.edges]
    ordered = [writes[i] for i in order]
    start = 0
    for end in [*sorted(set(cuts)), len(ordered)]:
        with view.transaction({"test": end}) as writer:
            for kind, item in ordered[start:end]:
                if kind == "row":
                    writer.upsert_batch(item)
                else:
                    writer.add_edges([item])
        start = max(start, end)


@st.composite
def written(
    draw: st.DrawFn,
) -> tuple[Graph, list[int], list[int], tuple[UUID, dict[str, D]] | None]:
    graph = draw(graphs())
    count = len(graph.rows) + len(graph.edges)
    order = draw(st.permutations(range(count)))
    cuts = draw(st.lists(st.integers(min_value=0, max_value=count), max_size=4))
    correction = None
    if draw(st.booleans()):
        target = draw(st.sampled_from(sorted(graph.rows)))
        elements = draw(st.lists(st.sampled_from(ELEMENTS), unique=True, max_size=5))
        correction = (target, {e: draw(fractions) for e in elements})
    return graph, list(order), cuts, correction


@pytest.fixture
def random_view(backend: Backend) -> GenealogyView:
    """One view for all examples of a test, emptied before each."""
    return backend.genealogy_view("random")


@settings(
    max_examples=40,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=written())
def test_random_graphs_written_in_any_order_keep_the_shares_the_walk_gives(
    random_view: GenealogyView,
    case: tuple[Graph, list[int], list[int], tuple[UUID, dict[str, D]] | None],
) -> None:
    graph, order, cuts, correction = case
    view = random_view
    view.reset()

    write(view, graph, order, cuts)
    if correction is not None:
        target, composition = correction
        with view.transaction({"test": len(order) + 1}) as writer:
            writer.upsert_batch(replace(graph.rows[target], version=2, composition=composition))

    for id in graph.rows:
        assert kept(view, id) == walked(view, id)
