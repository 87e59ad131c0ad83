"""Provenance shares kept per batch (``pooled``, one step from its inputs' shares) give
the answers of the walk over the whole upstream (``provenance``), on random graphs."""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal as D
from uuid import UUID

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lodestone.projections import genealogy
from lodestone.projections.genealogy import BatchRow, Edge, Lineage, Shares
from lodestone.projections.genealogy.provenance import decode, encode

FACILITIES = [UUID(int=100 + i) for i in range(3)]
LICENCES = [UUID(int=200 + i) for i in range(2)]
ELEMENTS = ["Nd", "Pr", "Dy", "Tb", "Fe"]


@dataclass
class Graph:
    rows: dict[UUID, BatchRow]  # a batch without a row: not projected yet
    edges: list[Edge]


fractions = st.decimals(min_value=D("0"), max_value=D("0.5"), places=4)
masses = st.decimals(min_value=D("0.001"), max_value=D("100000"), places=3)


@st.composite
def graphs(draw: st.DrawFn) -> Graph:
    size = draw(st.integers(min_value=1, max_value=10))
    ids = [UUID(int=1 + i) for i in range(size)]
    rows: dict[UUID, BatchRow] = {}
    edges: list[Edge] = []
    for i, id in enumerate(ids):
        parents = draw(st.lists(st.sampled_from(ids[:i]), unique=True, max_size=3)) if i else []
        edges += [Edge(p, id, draw(masses), "step", id) for p in parents]
        if i and not parents and draw(st.booleans()):
            continue  # an input the view has not seen yet: no row
        elements = draw(st.lists(st.sampled_from(ELEMENTS), unique=True, max_size=5))
        kind = draw(st.sampled_from(["mined", "recycled", None])) if not parents else None
        rows[id] = BatchRow(
            id,
            1,
            reference=f"A/L{i}",
            initial_kg=draw(masses),
            remaining_kg=draw(st.one_of(st.none(), masses)),
            composition={e: draw(fractions) for e in elements},
            origin_kind=kind,
            origin_facility_id=draw(st.sampled_from(FACILITIES)) if kind else None,
            origin_licence_id=draw(st.sampled_from(LICENCES)) if kind == "mined" else None,
            origin_country=draw(st.sampled_from(["CN", "MM"])) if kind else None,
        )
    return Graph(rows, edges)


def walked(graph: Graph, root: UUID) -> dict[str, list[genealogy.OriginShare]]:
    """The reference: the walk over the root's whole upstream, as a view gives it."""
    above, edges, frontier = {root}, [], [root]
    while frontier:
        node = frontier.pop()
        for edge in graph.edges:
            if edge.child_id == node:
                edges.append(edge)
                if edge.parent_id not in above:
                    above.add(edge.parent_id)
                    frontier.append(edge.parent_id)
    edges.sort(key=lambda e: (e.parent_id, e.child_id))
    rows = {id: row for id, row in graph.rows.items() if id in above}
    return genealogy.provenance(Lineage(root, rows, edges, {}))


def kept(graph: Graph) -> dict[UUID, Shares]:
    """Each batch's shares from its inputs' (ids are in an inputs-first order), through
    their stored text, as the view keeps them."""
    shares: dict[UUID, Shares] = {}
    for id in sorted(graph.rows):
        inputs = sorted((e for e in graph.edges if e.child_id == id), key=lambda e: e.parent_id)
        pooled = genealogy.pooled(
            graph.rows[id],
            [(e.kg, graph.rows.get(e.parent_id), shares.get(e.parent_id, {})) for e in inputs],
        )
        shares[id] = decode(encode(pooled))
    return shares


SETTINGS = settings(
    max_examples=150, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@SETTINGS
@given(graphs())
def test_kept_shares_answer_as_the_walk_over_the_upstream_does(graph: Graph) -> None:
    shares = kept(graph)

    for id, row in graph.rows.items():
        assert genealogy.answer(row, shares[id]) == walked(graph, id), row.reference


@SETTINGS
@given(graphs(), st.data())
def test_kept_shares_recomputed_after_a_composition_correction_answer_as_the_walk_does(
    graph: Graph, data: st.DataObject
) -> None:
    target = data.draw(st.sampled_from(sorted(graph.rows)))
    elements = data.draw(st.lists(st.sampled_from(ELEMENTS), unique=True, max_size=5))
    corrected = {e: data.draw(fractions) for e in elements}
    graph.rows[target] = replace(graph.rows[target], version=2, composition=corrected)

    shares = kept(graph)

    for id, row in graph.rows.items():
        assert genealogy.answer(row, shares[id]) == walked(graph, id), row.reference


def test_a_batch_made_of_two_mines_holds_each_mine_s_share_of_each_element() -> None:
    north, south, oxide = UUID(int=1), UUID(int=2), UUID(int=3)

    def mine(id: UUID, facility: UUID, country: str, dy: str) -> BatchRow:
        return BatchRow(
            id,
            1,
            initial_kg=D("1000"),
            composition={"Dy": D(dy), "Fe": D("0.2")},
            origin_kind="mined",
            origin_facility_id=facility,
            origin_licence_id=LICENCES[0],
            origin_country=country,
        )

    rows = {
        north: mine(north, FACILITIES[0], "CN", "0.005"),
        south: mine(south, FACILITIES[1], "MM", "0.0003"),
        oxide: BatchRow(oxide, 1, initial_kg=D("10"), composition={"Dy": D("0.3")}),
    }
    edges = [Edge(north, oxide, D("500"), "separation", oxide)]
    edges.append(Edge(south, oxide, D("100000"), "separation", oxide))

    shares = kept(Graph(rows, edges))[oxide]

    # 500 kg * 0.005 = 2.5 kg of Dy from the north, 100000 kg * 0.0003 = 30 kg from the
    # south: 2.5 / 32.5 of it is northern.
    assert {origin[3]: share.quantize(D("0.000001")) for origin, share in shares["Dy"].items()} == {
        "CN": D("0.076923"),
        "MM": D("0.923077"),
    }
    assert list(shares) == ["Dy"]  # iron is not a rare earth
