"""The anomalies read model on SQLite and PostgreSQL: the facts of a real chain, the rules
over them (silent on a clean chain, firing on an irregular one), rebuild from position
0, repeats, interleaving across aggregates, reviews and corrections as the view sees
them, and the same facts on both databases."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest

from lodestone.domain.access import Principal, Role
from lodestone.infra.sqlite.database import sqlite_env
from lodestone.ledger import Ledger
from lodestone.ledger import commands as c
from lodestone.projections.anomalies import (
    AnomaliesProjection,
    AnomaliesView,
    evaluate,
    review_status,
)
from lodestone.projections.anomalies.postgres import PostgresAnomaliesView
from lodestone.projections.anomalies.sqlite import SQLiteAnomaliesView
from lodestone.streaming.feeds import NotificationLogFeed
from lodestone.streaming.projector import Projector
from tests.fixtures.backends import Backend, PostgresBackend
from tests.integration.conftest import ADMIN, NOW, at, operator, record_chain


@pytest.fixture
def views(backend: Backend, tmp_path: Path) -> Iterator[Any]:
    """Makes anomalies views on the backend under test (a SQLite file, or a schema of the
    test's PostgreSQL database) and closes them."""
    opened: list[AnomaliesView] = []

    def make(name: str = "anomalies") -> AnomaliesView:
        view: AnomaliesView
        if isinstance(backend, PostgresBackend):
            view = PostgresAnomaliesView(backend.url, schema=f"view_{name}")
        else:
            view = SQLiteAnomaliesView(tmp_path / f"view-{name}.sqlite")
        opened.append(view)
        return view

    yield make
    for view in opened:
        view.close()


def projected(ledger: Ledger, view: AnomaliesView) -> tuple[AnomaliesView, Projector]:
    feed = NotificationLogFeed(ledger.recorder, ledger.mapper)
    projector = Projector(AnomaliesProjection(), view, feed, batch_size=7)
    projector.catch_up()
    return view, projector


def all_events(ledger: Ledger) -> list[tuple[int, object]]:
    items = NotificationLogFeed(ledger.recorder, ledger.mapper).poll(lambda source: 0, 100_000)
    return [(item.position, item.event) for item in items]


def apply(view: AnomaliesView, events: list[tuple[int, object]], source: str = "test") -> None:
    projection = AnomaliesProjection()
    for position, event in events:
        with view.transaction({source: position}) as writer:
            projection.process_event(event, writer)


def record_irregularities(ledger: Ledger) -> None:
    """On top of ``record_chain``: an export naming its end user in capitals, and an
    ore lot sold whole and then corrected down to 60 % of what was sold."""
    north, south = operator("NORTH"), operator("SOUTH")
    ledger.execute(
        north,
        [
            c.ExportShipment(
                batch="OX-MIX",  # the 20 kg the split left
                shipment="BL-N-0002",
                licence="N-EX",
                consignee="AUTO",
                destination_country="DE",
                end_user="AUTO GMBH",
                customs_code="2846.90",
                occurred_at=at(24),
            )
        ],
    )
    ledger.execute(
        south,
        [
            c.ExtractOre(
                facility="S-MINE",
                quota="S-Q",
                lot_code="ORE-S2",
                mass_kg=D("150000"),
                composition={"Nd": D("0.0004"), "Dy": D("0.0003")},
                occurred_at=at(25),
            ),
            c.TransferCustody(
                batch="ORE-S2",
                buyer="TRADER",
                contract="K-6",
                to_facility="T-WH",
                occurred_at=at(26),
            ),
        ],
    )
    ledger.execute(
        ADMIN,
        [c.CorrectEvent("SOUTH/ORE-S2", 1, "incorrect-data", {"mass_kg": "90000"}, "re-weighed")],
    )


@pytest.fixture
def irregular_ledger(chain_ledger: Ledger) -> Ledger:
    record_irregularities(chain_ledger)
    return chain_ledger


def test_a_clean_chain_raises_no_anomaly(chain_ledger: Ledger, views: Any) -> None:
    view, _ = projected(chain_ledger, views())

    assert evaluate(view.facts()) == []


def test_the_patterns_of_an_irregular_chain_are_found(irregular_ledger: Ledger, views: Any):
    view, _ = projected(irregular_ledger, views())

    found = {a.rule: a for a in evaluate(view.facts())}

    assert set(found) == {"licence-mismatch", "smuggling-cover"}
    assert found["smuggling-cover"].figures["excess_kg"].value == D("60000")


def test_rebuild_from_position_zero_gives_the_identical_state(
    irregular_ledger: Ledger, views: Any
) -> None:
    view, projector = projected(irregular_ledger, views())
    before = view.fingerprint()

    view.reset()
    assert projector.position() == 0
    projector.catch_up()

    assert view.fingerprint() == before
    assert projector.position() == irregular_ledger.recorder.max_notification_id()


def test_repeated_events_change_nothing(irregular_ledger: Ledger, views: Any) -> None:
    view, _ = projected(irregular_ledger, views())
    before = view.fingerprint()

    apply(view, all_events(irregular_ledger))

    assert view.fingerprint() == before


def test_result_does_not_depend_on_interleaving_across_aggregates(
    irregular_ledger: Ledger, views: Any
) -> None:
    in_order, _ = projected(irregular_ledger, views("ordered"))
    events = all_events(irregular_ledger)
    # Each aggregate's own order kept (as a Kafka partition keeps it), the rest shuffled.
    queues: dict[object, list[tuple[int, object]]] = {}
    for item in events:
        queues.setdefault(item[1].originator_id, []).append(item)  # type: ignore[attr-defined]
    rng = random.Random(11)
    shuffled = []
    while queues:
        key = rng.choice(sorted(queues, key=str))
        shuffled.append(queues[key].pop(0))
        if not queues[key]:
            del queues[key]
    assert shuffled != events
    interleaved = views("shuffled")

    apply(interleaved, shuffled)

    assert interleaved.fingerprint() == in_order.fingerprint()
    assert evaluate(interleaved.facts()) == evaluate(in_order.facts())


def test_a_review_in_the_ledger_is_the_anomalys_status_in_the_view(
    irregular_ledger: Ledger, views: Any
) -> None:
    view, projector = projected(irregular_ledger, views())
    (anomaly,) = [a for a in evaluate(view.facts()) if a.rule == "licence-mismatch"]
    analyst = Principal("key:analyst", Role.ANALYST)

    irregular_ledger.execute(
        analyst,
        [c.ReviewAnomaly(str(anomaly.id), anomaly.rule, "acknowledged", "asked for papers")],
    )
    projector.catch_up()

    (decision,) = view.facts().reviews[anomaly.id]
    assert (decision.status, decision.by_role, decision.reviewed_by) == (
        "acknowledged",
        "analyst",
        "key:analyst",
    )
    assert review_status([decision]) == "acknowledged"


def test_a_corrected_time_of_a_sale_moves_its_movement(chain_ledger: Ledger, views: Any) -> None:
    # ORE-S was sold on day 2 (version 2); it happened on day 3 after all.
    corrected = at(3) - timedelta(hours=1)
    chain_ledger.execute(
        ADMIN,
        [c.CorrectEvent("SOUTH/ORE-S", 2, "incorrect-data", {"occurred_at": corrected}, "typo")],
    )
    view, _ = projected(chain_ledger, views())

    (sale,) = [m for m in view.facts().movements if m.kind == "sale" and m.contract == "K-1"]

    assert sale.occurred_at == corrected
    assert sale.corrected_by == 4  # the correction is the batch's fourth event


@pytest.mark.postgres
def test_postgres_holds_the_same_facts_as_sqlite(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    ledger = Ledger(sqlite_env(tmp_path / "events.sqlite"), clock=lambda: NOW)
    record_chain(ledger)
    record_irregularities(ledger)
    url = request.getfixturevalue("make_postgres_database")()
    sqlite_view = SQLiteAnomaliesView(tmp_path / "view.sqlite")
    postgres_view = PostgresAnomaliesView(url, schema="anomalies_twin")
    try:
        projected(ledger, sqlite_view)
        projected(ledger, postgres_view)

        assert postgres_view.fingerprint() == sqlite_view.fingerprint()
        assert evaluate(postgres_view.facts()) == evaluate(sqlite_view.facts())
    finally:
        sqlite_view.close()
        postgres_view.close()
        ledger.close()


def test_times_read_back_in_utc(chain_ledger: Ledger, views: Any) -> None:
    view, _ = projected(chain_ledger, views())

    times = [m.occurred_at for m in view.facts().movements]

    assert times and all(t is not None and t.utcoffset() == timedelta(0) for t in times)
    assert datetime(2026, 1, 1, tzinfo=UTC) < min(t for t in times if t) < NOW
