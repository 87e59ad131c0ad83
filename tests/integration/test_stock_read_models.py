"""The inventory and licences read models on SQLite and PostgreSQL: rebuilt from position
0 to the identical state, repeats and interleavings change nothing, the same rows on both
databases; stock now and at past moments checked against the ledger's own batches,
through every kind of correction; licences drawn and corrected by month; refused
attempts kept beside them and left alone by a rebuild."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from pathlib import Path
from typing import Any, cast
from uuid import UUID, uuid4

import pytest

from lodestone.bootstrap import stores
from lodestone.bootstrap.settings import Settings
from lodestone.domain.batches import Batch, Status
from lodestone.infra.postgres.database import postgres_env
from lodestone.infra.sqlite.database import sqlite_env
from lodestone.ledger import Ledger
from lodestone.projections.base import View
from lodestone.projections.inventory import InventoryView, lots_from, lots_now, stock
from lodestone.projections.inventory.postgres import PostgresInventoryView
from lodestone.projections.inventory.sqlite import SQLiteInventoryView
from lodestone.projections.licences import LicencesView
from lodestone.projections.licences.postgres import PostgresLicencesView
from lodestone.projections.licences.sqlite import SQLiteLicencesView
from lodestone.projections.refusals import RefusalLog, RefusedAttempt
from lodestone.projections.refusals.postgres import PostgresRefusalLog
from lodestone.projections.refusals.sqlite import SQLiteRefusalLog
from lodestone.projections.registry import REGISTRY
from lodestone.streaming.feeds import NotificationLogFeed
from lodestone.streaming.projector import Projector
from tests.fixtures.backends import Backend, PostgresBackend
from tests.integration.conftest import NOW, at, record_chain
from tests.integration.test_consistency import record_corrections

VIEWS: dict[str, tuple[type[Any], type[Any]]] = {
    "inventory": (SQLiteInventoryView, PostgresInventoryView),
    "licences": (SQLiteLicencesView, PostgresLicencesView),
}
MODELS = sorted(VIEWS)

OpenView = Callable[[str, str], Any]


@pytest.fixture
def open_view(backend: Backend, tmp_path: Path) -> Iterator[OpenView]:
    """``open_view(model, name)``: a fresh view of that read model, private to the test
    (a SQLite file, or a schema of the test's PostgreSQL database)."""
    opened: list[View[Any]] = []

    def open_(model: str, name: str) -> Any:
        on_sqlite, on_postgres = VIEWS[model]
        if isinstance(backend, PostgresBackend):
            view = on_postgres(backend.url, schema=f"view_{name}")
        else:
            view = on_sqlite(tmp_path / f"view-{name}.sqlite")
        opened.append(view)
        return view

    yield open_
    for view in reversed(opened):
        view.close()


def projector(ledger: Ledger, model: str, view: View[Any]) -> Projector:
    feed = NotificationLogFeed(ledger.recorder, ledger.mapper)
    return Projector(REGISTRY[model].projection(), view, feed, batch_size=7)


def projected(ledger: Ledger, model: str, view: Any) -> Any:
    projector(ledger, model, view).catch_up()
    return view


def all_events(ledger: Ledger) -> list[tuple[int, Any]]:
    items = NotificationLogFeed(ledger.recorder, ledger.mapper).poll(lambda source: 0, 100_000)
    return [(item.position, item.event) for item in items]


def apply(model: str, view: View[Any], events: list[tuple[int, Any]]) -> None:
    """One transaction per event: every read-back goes to the database."""
    projection = REGISTRY[model].projection()
    for position, event in events:
        with view.transaction({"test": position}) as writer:
            projection.process_event(event, writer)


def interleaved(events: list[tuple[int, Any]], seed: int) -> list[tuple[int, Any]]:
    """Each aggregate's own order kept (as a Kafka partition keeps it), the rest shuffled."""
    queues: dict[UUID, list[tuple[int, Any]]] = {}
    for item in events:
        queues.setdefault(item[1].originator_id, []).append(item)
    rng = random.Random(seed)
    shuffled = []
    while queues:
        key = rng.choice(sorted(queues, key=str))
        shuffled.append(queues[key].pop(0))
        if not queues[key]:
            del queues[key]
    return shuffled


@pytest.fixture
def corrected_ledger(chain_ledger: Ledger) -> Ledger:
    record_corrections(chain_ledger)
    return chain_ledger


# --- what every read model must do -------------------------------------------------------


@pytest.mark.parametrize("model", MODELS)
def test_rebuild_from_position_zero_gives_the_identical_state(
    corrected_ledger: Ledger, open_view: OpenView, model: str
) -> None:
    view = open_view(model, "rm")
    follower = projector(corrected_ledger, model, view)
    follower.catch_up()
    before = view.fingerprint()

    view.reset()
    assert follower.position() == 0
    follower.catch_up()

    assert view.fingerprint() == before
    assert follower.position() == corrected_ledger.recorder.max_notification_id()


@pytest.mark.parametrize("model", MODELS)
def test_repeated_events_change_nothing(
    corrected_ledger: Ledger, open_view: OpenView, model: str
) -> None:
    view = projected(corrected_ledger, model, open_view(model, "rm"))
    before = view.fingerprint()

    apply(model, view, all_events(corrected_ledger))

    assert view.fingerprint() == before


@pytest.mark.parametrize("model", MODELS)
def test_the_result_does_not_depend_on_interleaving_across_aggregates(
    corrected_ledger: Ledger, open_view: OpenView, model: str
) -> None:
    in_order = projected(corrected_ledger, model, open_view(model, "ordered"))
    events = all_events(corrected_ledger)
    shuffled = interleaved(events, seed=5)
    assert shuffled != events
    other = open_view(model, "shuffled")

    apply(model, other, shuffled)

    assert other.fingerprint() == in_order.fingerprint()


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.postgres
def test_sqlite_and_postgres_hold_the_same_rows(
    make_postgres_database: Callable[[], str], tmp_path: Path, model: str
) -> None:
    url = make_postgres_database()
    ledgers = [
        Ledger(sqlite_env(tmp_path / "events.sqlite"), clock=lambda: NOW),
        Ledger(postgres_env(url), clock=lambda: NOW),
    ]
    on_sqlite, on_postgres = VIEWS[model]
    views = [on_sqlite(tmp_path / "rm.sqlite"), on_postgres(url)]
    try:
        for ledger, view in zip(ledgers, views, strict=True):
            record_chain(ledger)  # same commands, same clock, same uuid5 ids
            record_corrections(ledger)
            projected(ledger, model, view)

        assert views[0].fingerprint() == views[1].fingerprint()
    finally:
        for view in views:
            view.close()
        for ledger in ledgers:
            ledger.close()


# --- inventory ---------------------------------------------------------------------------


def ledger_stock(ledger: Ledger, at_: datetime | None = None) -> dict[tuple[Any, Any, UUID], D]:
    """What the ledger's own batches say each holder held where: each batch replayed to
    its last step that occurred at or before ``at_`` (now: its present state)."""
    found: dict[tuple[Any, Any, UUID], D] = {}
    for notification in ledger.recorder.select_notifications(start=1, limit=100_000):
        if notification.originator_version != 1:
            continue
        aggregate: Any = ledger.repository.get(notification.originator_id)
        if not isinstance(aggregate, Batch):
            continue
        batch = aggregate
        if at_ is not None:
            events = [e for e in _history(ledger, batch.id) if hasattr(e, "occurred_at")]
            steps = [e for e in events if e.occurred_at <= at_ and type(e) is not Batch.Corrected]
            if not steps:
                continue
            batch = ledger.repository.get(batch.id, version=steps[-1].originator_version)
        if batch.status in (Status.CONSUMED, Status.VOID) or batch.remaining_kg == 0:
            continue
        place = None if batch.status is Status.IN_TRANSIT else batch.facility_id
        found[(batch.custodian_id, place, batch.id)] = batch.remaining_kg
    return found


def _history(ledger: Ledger, id: UUID) -> list[Any]:
    return list(ledger.events.get(id))


def view_stock(view: InventoryView, at_: datetime | None = None) -> dict[tuple[Any, Any, UUID], D]:
    if at_ is None:
        return {(a, f, b): kg for a, f, b, kg in lots_now(view.held())}
    return {(a, f, b): kg for a, f, b, kg in lots_from(view.movements(at_))}


def test_stock_now_is_what_the_ledger_s_batches_hold(
    chain_ledger: Ledger, open_view: OpenView
) -> None:
    view = projected(chain_ledger, "inventory", open_view("inventory", "rm"))

    assert view_stock(view) == ledger_stock(chain_ledger)


@pytest.mark.parametrize("day", [0, 1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 19, 20, 30])
def test_stock_at_a_past_moment_is_where_each_batch_was_then(
    chain_ledger: Ledger, open_view: OpenView, day: int
) -> None:
    view = projected(chain_ledger, "inventory", open_view("inventory", "rm"))

    assert view_stock(view, at(day)) == ledger_stock(chain_ledger, at(day))


def test_stock_after_corrections_is_what_the_corrected_batches_hold(
    corrected_ledger: Ledger, open_view: OpenView
) -> None:
    view = projected(corrected_ledger, "inventory", open_view("inventory", "rm"))

    assert view_stock(view) == ledger_stock(corrected_ledger)


def test_a_corrected_origin_time_and_mass_count_from_the_corrected_time(
    corrected_ledger: Ledger, open_view: OpenView
) -> None:
    view = projected(corrected_ledger, "inventory", open_view("inventory", "rm"))
    ore_n = corrected_ledger.batch("NORTH/ORE-N").id
    just_before = at(0) - timedelta(microseconds=1)

    assert [kg for (_, _, b), kg in view_stock(view, at(0)).items() if b == ore_n] == [D(11000)]
    assert [kg for (_, _, b), kg in view_stock(view, just_before).items() if b == ore_n] == []
    # 6,000 kg were split off on day 3: 5,000 kg of the corrected 11,000 are left.
    assert [kg for (_, _, b), kg in view_stock(view, at(4)).items() if b == ore_n] == [D(5000)]


def test_a_lot_that_did_not_occur_and_a_move_that_did_not_occur_hold_nothing_and_stay(
    corrected_ledger: Ledger, open_view: OpenView
) -> None:
    view = projected(corrected_ledger, "inventory", open_view("inventory", "rm"))
    void = corrected_ledger.batch("NORTH/ORE-X").id
    unmoved = corrected_ledger.batch("NORTH/ORE-M")

    for day in (12, 13, 30):
        held = view_stock(view, at(day))
        assert [key for key in held if key[2] == void] == []
        assert [key[1] for key in held if key[2] == unmoved.id] == [unmoved.facility_id]


def test_a_sale_dated_earlier_by_a_correction_moves_the_stock_earlier(
    corrected_ledger: Ledger, open_view: OpenView
) -> None:
    view = projected(corrected_ledger, "inventory", open_view("inventory", "rm"))
    ore_s = corrected_ledger.batch("SOUTH/ORE-S")

    [(holder, _, _)] = [key for key in view_stock(view, at(1)) if key[2] == ore_s.id]

    assert holder == corrected_ledger.actor_by_code("NORTH").id


def test_holdings_by_facility_carry_element_masses(
    chain_ledger: Ledger, open_view: OpenView
) -> None:
    view = projected(chain_ledger, "inventory", open_view("inventory", "rm"))
    mine = chain_ledger.facility_by_code("N-MINE").id

    [ore] = stock(view, facility_id=mine)

    # ORE-N: 4,000 kg of 0.04 Nd, 0.01 Pr, 0.0005 Dy, 0.2 Fe.
    assert (ore.material, ore.kg, ore.batches) == ("ore", D(4000), 1)
    assert ore.elements == {"Dy": D(2), "Fe": D(800), "Nd": D(160), "Pr": D(40)}


# --- licences ----------------------------------------------------------------------------


def test_each_draw_is_kept_with_its_event_and_adds_to_what_was_drawn(
    chain_ledger: Ledger, open_view: OpenView
) -> None:
    view: LicencesView = projected(chain_ledger, "licences", open_view("licences", "rm"))
    by_number = {row.number: row for row in view.licences()}
    quota = chain_ledger.licence_by_number("N-Q")

    [draw] = view.draws_of([quota.id])

    assert (by_number["N-Q"].drawn_kg, by_number["N-Q"].draws) == (quota.drawn_kg, 1)
    assert (draw.version, draw.cause, draw.kg) == (2, "extraction", quota.drawn_kg)
    assert draw.batch_id == chain_ledger.batch("NORTH/ORE-N").id
    assert (draw.occurred_at, draw.month) == (at(1), "2026-03")
    assert by_number["N-EX"].drawn_kg == D(200)


def test_a_corrected_draw_counts_in_the_month_of_the_draw_it_corrects(
    corrected_ledger: Ledger, open_view: OpenView
) -> None:
    view: LicencesView = projected(corrected_ledger, "licences", open_view("licences", "rm"))
    quota = corrected_ledger.licence_by_number("N-Q")

    draws = view.draws_of([quota.id])
    corrections = [d for d in draws if d.kind == "correction"]

    # ORE-N's mass (its draw is version 2) and ORE-X, which did not occur (version 3).
    assert [d.corrects_version for d in corrections] == [2, 3]
    assert [d.occurred_at for d in corrections] == [NOW, NOW]  # corrected in June...
    assert {d.month for d in corrections} == {"2026-03"}  # ...counted in March
    assert view.licences_by_id([quota.id])[quota.id].drawn_kg == quota.drawn_kg


# --- refused attempts --------------------------------------------------------------------


@pytest.fixture
def refusal_log(backend: Backend, tmp_path: Path) -> Iterator[RefusalLog]:
    log: RefusalLog = (
        PostgresRefusalLog(backend.url, schema="refusals")
        if isinstance(backend, PostgresBackend)
        else SQLiteRefusalLog(tmp_path / "view-rm.sqlite")
    )
    yield log
    log.close()


def attempt(rule: str, licence: str | None) -> RefusedAttempt:
    return RefusedAttempt(
        uuid4(),
        datetime.now(UTC),
        "POST",
        "/v1/events/ore-extracted",
        422,
        rule,
        "quota",
        "operator",
        uuid4(),
        licence,
    )


def test_refused_attempts_are_counted_per_licence_and_rule(refusal_log: RefusalLog) -> None:
    for rule, licence in [
        ("licence-remaining", "MQ-1"),
        ("licence-remaining", "MQ-1"),
        ("licence-validity", "MQ-1"),
        ("licence-consignee", "EX-1"),
        ("custody", None),
    ]:
        refusal_log.record(attempt(rule, licence))

    assert refusal_log.counts() == {
        "EX-1": {"licence-consignee": 1},
        "MQ-1": {"licence-remaining": 2, "licence-validity": 1},
    }
    assert refusal_log.counts(["EX-1"]) == {"EX-1": {"licence-consignee": 1}}
    assert [a.rule for a in refusal_log.attempts()][-1] == "custody"


def test_a_rebuild_of_the_licences_keeps_the_refused_attempts(
    chain_ledger: Ledger, open_view: OpenView, refusal_log: RefusalLog
) -> None:
    view = projected(chain_ledger, "licences", open_view("licences", "rm"))
    refusal_log.record(attempt("licence-remaining", "N-Q"))

    cast(View[Any], view).reset()

    assert refusal_log.counts() == {"N-Q": {"licence-remaining": 1}}


@pytest.mark.parametrize("model", MODELS)
def test_the_registry_opens_the_view_of_the_configured_database(
    backend: Backend, tmp_path: Path, model: str
) -> None:
    url = backend.url if isinstance(backend, PostgresBackend) else None
    settings = Settings(data_dir=tmp_path / "data", postgres_url=url)
    view = stores.open_view(settings, REGISTRY[model])
    log = stores.build_refusal_log(settings)
    try:
        on_sqlite, on_postgres = VIEWS[model]
        assert isinstance(view, on_postgres if url else on_sqlite)
        assert view.position("ledger") == 0
        assert log.counts() == {}
    finally:
        log.close()
        view.close()
