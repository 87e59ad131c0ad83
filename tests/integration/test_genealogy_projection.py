"""The genealogy read model: exactly-once effect, order independence, rebuild."""

from __future__ import annotations

import random
from decimal import Decimal as D

import pytest

from lodestone.ledger import Ledger
from lodestone.projections import genealogy
from lodestone.projections.genealogy import GenealogyProjection, GenealogyView
from lodestone.streaming.feeds import NotificationLogFeed
from lodestone.streaming.projector import Projector
from tests.fixtures.backends import Backend


def project(ledger: Ledger, view: GenealogyView) -> tuple[GenealogyView, Projector]:
    projector = Projector(
        GenealogyProjection(),
        view,
        NotificationLogFeed(ledger.recorder, ledger.mapper),
        batch_size=7,
    )
    projector.catch_up()
    return view, projector


def all_events(ledger: Ledger) -> list[tuple[int, object]]:
    items = NotificationLogFeed(ledger.recorder, ledger.mapper).poll(lambda source: 0, 100_000)
    return [(item.position, item.event) for item in items]


def apply(view: GenealogyView, events: list[tuple[int, object]], source: str = "test") -> None:
    projection = GenealogyProjection()
    for position, event in events:
        with view.transaction({source: position}) as writer:
            projection.process_event(event, writer)


def test_rebuild_from_position_zero_gives_the_identical_state(
    chain_ledger: Ledger, backend: Backend
) -> None:
    view, projector = project(chain_ledger, backend.genealogy_view("rm"))
    before = view.fingerprint()

    view.reset()
    assert projector.position() == 0
    projector.catch_up()

    assert view.fingerprint() == before
    assert projector.position() == chain_ledger.recorder.max_notification_id()


def test_repeated_events_change_nothing(chain_ledger: Ledger, backend: Backend) -> None:
    view, _ = project(chain_ledger, backend.genealogy_view("rm"))
    before = view.fingerprint()

    apply(view, all_events(chain_ledger))

    assert view.fingerprint() == before


def test_result_does_not_depend_on_interleaving_across_batches(
    chain_ledger: Ledger, backend: Backend
) -> None:
    in_order, _ = project(chain_ledger, backend.genealogy_view("ordered"))
    events = all_events(chain_ledger)
    # Keep each aggregate's own order (as a Kafka partition does) but shuffle the rest:
    # deal events round-robin from per-aggregate queues picked at random.
    queues: dict[object, list[tuple[int, object]]] = {}
    for item in events:
        queues.setdefault(item[1].originator_id, []).append(item)  # type: ignore[attr-defined]
    rng = random.Random(3)
    shuffled = []
    while queues:
        key = rng.choice(sorted(queues, key=str))
        shuffled.append(queues[key].pop(0))
        if not queues[key]:
            del queues[key]
    assert shuffled != events
    interleaved = backend.genealogy_view("shuffled")

    apply(interleaved, shuffled)

    assert interleaved.fingerprint() == in_order.fingerprint()


def test_a_failed_batch_commits_neither_rows_nor_position(
    chain_ledger: Ledger, backend: Backend
) -> None:
    view = backend.genealogy_view("rm")
    events = all_events(chain_ledger)

    with pytest.raises(RuntimeError), view.transaction({"ledger": events[5][0]}) as writer:
        for _, event in events[:6]:
            GenealogyProjection().process_event(event, writer)
        raise RuntimeError("crash before commit")

    assert view.position("ledger") == 0
    assert view.batches([e.originator_id for _, e in events]) == {}  # type: ignore[attr-defined]


def test_upstream_reaches_both_mines_with_the_masses_taken(
    chain_ledger: Ledger, backend: Backend
) -> None:
    view, _ = project(chain_ledger, backend.genealogy_view("rm"))
    target = chain_ledger.batch("NORTH/OX-B").id

    lineage = genealogy.upstream(view, target)

    refs = {row.reference for row in lineage.batches.values()}
    assert {"NORTH/ORE-N", "SOUTH/ORE-S", "NORTH/CON-N", "NORTH/OX-MIX"} <= refs
    taken = {
        (lineage.batches[e.parent_id].reference, lineage.batches[e.child_id].reference): e.kg
        for e in lineage.edges
    }
    assert taken[("SOUTH/ORE-S", "NORTH/DY-1")] == D("100000")
    assert taken[("NORTH/OX-MIX", "NORTH/OX-B")] == D("200")


def test_downstream_reaches_the_end_client_abroad(chain_ledger: Ledger, backend: Backend) -> None:
    view, _ = project(chain_ledger, backend.genealogy_view("rm"))

    lineage = genealogy.downstream(view, chain_ledger.batch("SOUTH/ORE-S").id)

    received = [t for t in lineage.trades if t.kind == "receipt"]
    assert [lineage.names[t.to_id].code for t in received] == ["AUTO"]  # type: ignore[index]
    assert received[0].kg == D("199.5")


def test_provenance_shares_follow_each_element_to_its_mines(
    chain_ledger: Ledger, backend: Backend
) -> None:
    view, _ = project(chain_ledger, backend.genealogy_view("rm"))
    lineage = genealogy.upstream(view, chain_ledger.batch("NORTH/OX-B").id)

    shares = genealogy.provenance(lineage)

    def by_country(element: str) -> dict[str | None, D]:
        return {s.country: s.share for s in shares[element]}

    # Dy in the separation step: 500 kg * 0.005 = 2.5 kg from the north concentrate,
    # 100000 kg * 0.0003 = 30 kg from the southern clay: 2.5 / 32.5 = 7.6923 %.
    assert by_country("Dy") == {"MM": D("0.923077"), "CN": D("0.076923")}
    # Nd: 500 * 0.47 = 235 kg north, 100000 * 0.0004 = 40 kg south: 235 / 275.
    assert by_country("Nd") == {"CN": D("0.854545"), "MM": D("0.145455")}
    # Pr only came from the north.
    assert by_country("Pr") == {"CN": D("1.000000")}
    assert sum(s.share for s in shares["Dy"]) == D("1.000000")
