"""The change log every table view keeps without its projection doing anything: one
change per row written, in the same transaction, with the row as stored, numbered per
projection without gaps, trimmed to a retention, emptied with a marker on reset; and a
writer whose rows were replaced under it writes nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from lodestone.ledger import Ledger
from lodestone.projections import genealogy
from lodestone.projections.base import ModelReplaced
from lodestone.projections.changes import RESET, Change
from lodestone.projections.genealogy import GenealogyProjection, GenealogyView
from lodestone.projections.genealogy.sqlite import SQLiteGenealogyView
from lodestone.projections.postgres import PostgresView
from lodestone.projections.sqlite import SQLiteView
from lodestone.streaming.feeds import NotificationLogFeed
from lodestone.streaming.projector import Projector
from tests.fixtures.backends import Backend, PostgresBackend
from tests.integration.test_genealogy_projection import (
    PostgresSeenView,
    SeenProjection,
    SQLiteSeenView,
)


def projector(ledger: Ledger, view: GenealogyView, batch_size: int = 7) -> Projector:
    feed = NotificationLogFeed(ledger.recorder, ledger.mapper)
    return Projector(GenealogyProjection(), view, feed, batch_size=batch_size)


def every_change(view: Any) -> list[Change]:
    return view.changes(0, 1_000_000).changes


def second_view(backend: Backend, view: GenealogyView) -> GenealogyView:
    """Another view on the same database, as another process would open it."""
    if isinstance(view, SQLiteView):
        return SQLiteGenealogyView(view.path)
    assert isinstance(backend, PostgresBackend) and isinstance(view, PostgresView)
    from lodestone.projections.genealogy.postgres import PostgresGenealogyView

    return PostgresGenealogyView(backend.url, schema=view.schema)


def seen_beside(backend: Backend, view: GenealogyView) -> Any:
    if isinstance(view, SQLiteView):
        return SQLiteSeenView(view.path)
    assert isinstance(backend, PostgresBackend) and isinstance(view, PostgresView)
    return PostgresSeenView(backend.url, schema=view.schema)


def test_every_row_written_is_one_change_numbered_from_one_without_gaps(
    chain_ledger: Ledger, backend: Backend
) -> None:
    view = backend.genealogy_view("rm")

    projector(chain_ledger, view).catch_up()

    found = every_change(view)
    assert [c.seq for c in found] == list(range(1, len(found) + 1))
    assert {c.table for c in found} == {"batches", "edges", "trades", "names"}
    edges = [c.key for c in found if c.table == "edges"]
    assert len(edges) == len(set(edges))  # an edge is written once, so it changes once


def test_a_change_holds_the_whole_row_as_stored_not_just_what_the_event_gave(
    chain_ledger: Ledger, backend: Backend
) -> None:
    view = backend.genealogy_view("rm")
    projector(chain_ledger, view).catch_up()
    sold = chain_ledger.batch("NORTH/OX-B")

    latest = [c for c in every_change(view) if c.table == "batches" and c.key == str(sold.id)][-1]

    row = view.batches([sold.id])[sold.id]
    assert latest.row["material"] == row.material == "oxide"
    assert latest.row["version"] == row.version
    assert latest.row["custodian_id"] == str(row.custodian_id)
    assert latest.row["composition"] == {k: str(v) for k, v in sorted(row.composition.items())}


def test_a_change_names_the_position_of_the_event_that_wrote_it(
    chain_ledger: Ledger, backend: Backend
) -> None:
    view = backend.genealogy_view("rm")
    projector(chain_ledger, view, batch_size=50).catch_up()
    written_by = {
        (str(n.originator_id), n.originator_version): n.id
        for n in chain_ledger.recorder.select_notifications(start=1, limit=10_000)
    }

    batches = [c for c in every_change(view) if c.table == "batches"]

    assert batches
    assert all(c.source == "ledger" for c in batches)
    assert all(c.position == written_by[(c.key, c.row["version"])] for c in batches)


def test_events_applied_again_append_no_change(chain_ledger: Ledger, backend: Backend) -> None:
    view = backend.genealogy_view("rm")
    projector(chain_ledger, view).catch_up()
    last = view.changes(0, 1).last
    events = NotificationLogFeed(chain_ledger.recorder, chain_ledger.mapper).poll(
        lambda _: 0, 10_000
    )

    with view.transaction({"again": 1}) as writer:
        for item in events:
            GenealogyProjection().process_event(item.event, writer)

    assert view.changes(0, 1).last == last


def test_a_failed_transaction_appends_no_change(chain_ledger: Ledger, backend: Backend) -> None:
    view = backend.genealogy_view("rm")
    projector(chain_ledger, view).catch_up()
    before = every_change(view)

    with pytest.raises(RuntimeError), view.transaction({"ledger": 10_000}) as writer:
        writer.upsert_name(genealogy.Name(UUID(int=7), "actor", "X", "X", "XX"))
        raise RuntimeError("the projection failed mid-batch")

    assert every_change(view) == before


def test_retention_keeps_the_newest_changes_and_raises_the_floor(
    chain_ledger: Ledger, backend: Backend
) -> None:
    view = backend.genealogy_view("rm")
    view.change_retention = 10  # type: ignore[attr-defined]

    projector(chain_ledger, view).catch_up()

    page = view.changes(0, 1_000)
    assert [c.seq for c in page.changes] == list(range(page.last - 9, page.last + 1))
    assert page.floor == page.last - 10
    assert page.missed(page.floor - 1) and not page.missed(page.floor)


def test_no_change_log_with_a_retention_of_zero(chain_ledger: Ledger, backend: Backend) -> None:
    view = backend.genealogy_view("rm")
    view.change_retention = 0  # type: ignore[attr-defined]

    projector(chain_ledger, view).catch_up()

    assert every_change(view) == []
    assert view.batches([chain_ledger.batch("NORTH/OX-B").id])


def test_a_reset_empties_the_log_but_for_a_marker_numbered_after_the_last_change(
    chain_ledger: Ledger, backend: Backend
) -> None:
    view = backend.genealogy_view("rm")
    projector(chain_ledger, view).catch_up()
    last = view.changes(0, 1).last

    view.reset()

    page = view.changes(0, 100)
    assert [(c.seq, c.table) for c in page.changes] == [(last + 1, RESET)]
    assert page.floor == last and page.missed(last - 1)
    projector(chain_ledger, view).catch_up()
    assert view.changes(last, 1).changes[0].is_reset  # rebuilt rows come after the marker


def test_each_projection_in_one_database_numbers_its_own_changes(
    chain_ledger: Ledger, backend: Backend
) -> None:
    view = backend.genealogy_view("rm")
    projector(chain_ledger, view).catch_up()
    seen = seen_beside(backend, view)
    feed = NotificationLogFeed(chain_ledger.recorder, chain_ledger.mapper)
    try:
        Projector(SeenProjection(), seen, feed, batch_size=5).run_once()

        assert [c.seq for c in every_change(seen)] == [1, 2, 3, 4, 5]
        assert {c.projection for c in every_change(view)} == {"genealogy"}
    finally:
        seen.close()


def test_a_writer_whose_model_was_reset_elsewhere_writes_nothing_and_resumes_from_zero(
    chain_ledger: Ledger, backend: Backend
) -> None:
    view = backend.genealogy_view("rm")
    projector(chain_ledger, view).catch_up()
    reference = view.fingerprint()
    other = second_view(backend, view)
    try:
        other.reset()  # another process empties the model

        with pytest.raises(ModelReplaced), view.transaction({"ledger": 10_000}) as writer:
            writer.upsert_name(genealogy.Name(UUID(int=7), "actor", "X", "X", "XX"))
        assert view.position("ledger") == 0 and view.names([UUID(int=7)]) == {}

        projector(chain_ledger, view).catch_up()
        assert view.fingerprint() == reference
    finally:
        other.close()


def test_the_change_log_reads_the_same_on_sqlite_and_postgres(
    chain_ledger: Ledger, backend: Backend, tmp_path: Path
) -> None:
    if not isinstance(backend, PostgresBackend):
        pytest.skip("compares PostgreSQL's change log with SQLite's")
    view = backend.genealogy_view("rm")
    on_sqlite = SQLiteGenealogyView(tmp_path / "reference.sqlite")
    try:
        projector(chain_ledger, view).catch_up()
        projector(chain_ledger, on_sqlite).catch_up()

        def shown(found: list[Change]) -> list[tuple[Any, ...]]:
            return [(c.seq, c.table, c.key, c.row, c.source, c.position) for c in found]

        assert shown(every_change(view)) == shown(every_change(on_sqlite))
    finally:
        on_sqlite.close()
