"""Rebuilding (or upgrading) a read model beside the live one: readers see the whole old
model until the switch and the whole new one after it; the live projector, running on,
goes on from the copy's positions; processes of an older release stop writing."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from lodestone.ledger import Ledger
from lodestone.projections.base import Dispatching, ModelUpgraded, handles
from lodestone.projections.changes import RESET
from lodestone.projections.genealogy import GenealogyProjection
from lodestone.projections.genealogy.postgres import PostgresGenealogyView
from lodestone.projections.genealogy.sqlite import SQLiteGenealogyView
from lodestone.projections.postgres import PostgresView
from lodestone.projections.sqlite import SQLiteView
from lodestone.projections.tables import Buffer, Column, Kind, Layout, Table, TableView, insert_new
from lodestone.streaming.feeds import NotificationLogFeed
from lodestone.streaming.projector import Projector
from lodestone.streaming.rebuild import rebuild_beside
from tests.fixtures.backends import Backend, PostgresBackend
from tests.integration.conftest import ADMIN, record_chain
from tests.integration.test_genealogy_projection import (
    PostgresSeenView,
    SeenProjection,
    SQLiteSeenView,
)


def feed(ledger: Ledger) -> NotificationLogFeed:
    return NotificationLogFeed(ledger.recorder, ledger.mapper)


def live_genealogy(ledger: Ledger, backend: Backend) -> tuple[TableView[Any], Projector]:
    view = backend.genealogy_view("live")
    assert isinstance(view, TableView)
    projector = Projector(GenealogyProjection(), view, feed(ledger), batch_size=7)
    projector.catch_up()
    return view, projector


def shadow_of(backend: Backend, live: TableView[Any], tmp_path: Path, cls: Any = None) -> Any:
    """A rebuild copy beside ``live`` (another file; another schema) and its target."""
    if isinstance(live, SQLiteView):
        return (cls or SQLiteGenealogyView)(tmp_path / "copy.sqlite"), live.path
    assert isinstance(backend, PostgresBackend) and isinstance(live, PostgresView)
    copy = (cls or PostgresGenealogyView)(backend.url, schema=f"{live.schema}_copy")
    return copy, live.schema


def batch_count(view: TableView[Any]) -> int:
    """One statement: the whole table as one snapshot."""
    if isinstance(view, SQLiteView):
        with closing(sqlite3.connect(view.path)) as db:
            return int(db.execute("SELECT count(*) FROM batches").fetchone()[0])
    assert isinstance(view, PostgresView)
    with psycopg.connect(view._url) as conn:
        conn.execute(f"SET search_path TO {view.schema}")
        row = conn.execute("SELECT count(*) FROM batches").fetchone()
        assert row is not None
        return int(row[0])


def test_a_reader_during_a_rebuild_sees_the_whole_old_model_until_the_switch(
    chain_ledger: Ledger, backend: Backend, tmp_path: Path
) -> None:
    live, _ = live_genealogy(chain_ledger, backend)
    whole, count = live.fingerprint(), batch_count(live)
    copy, target = shadow_of(backend, live, tmp_path)
    seen_during: list[tuple[str, int]] = []

    rebuilt = rebuild_beside(
        GenealogyProjection(),
        copy,
        target,
        feed(chain_ledger),
        batch_size=3,
        progress=lambda _: seen_during.append((live.fingerprint(), batch_count(live))),
    )

    assert len(seen_during) > 5  # the reader read while the copy was half-built
    assert set(seen_during) == {(whole, count)}
    assert live.fingerprint() == rebuilt.fingerprint == whole
    assert rebuilt.same_as_before is True


def test_the_live_projector_goes_on_from_the_switched_positions(
    chain_ledger: Ledger, backend: Backend, tmp_path: Path
) -> None:
    live, projector = live_genealogy(chain_ledger, backend)
    reference = backend.genealogy_view("reference")
    copy, target = shadow_of(backend, live, tmp_path)

    rebuild_beside(GenealogyProjection(), copy, target, feed(chain_ledger))
    record_more(chain_ledger)  # events the copy never saw
    projector.catch_up()  # the live projector's view object is of the old generation

    Projector(GenealogyProjection(), reference, feed(chain_ledger)).catch_up()
    assert live.position("ledger") == chain_ledger.recorder.max_notification_id()
    assert live.fingerprint() == reference.fingerprint()


def record_more(ledger: Ledger) -> None:
    from lodestone.ledger import commands as c

    ledger.execute(ADMIN, [c.RegisterActor("LATE", "Late Comer", "FR", ["trader"])])


def test_streams_of_the_live_model_are_told_to_re_read_it_after_the_switch(
    chain_ledger: Ledger, backend: Backend, tmp_path: Path
) -> None:
    live, _ = live_genealogy(chain_ledger, backend)
    last = live.changes(0, 1).last
    copy, target = shadow_of(backend, live, tmp_path)

    rebuild_beside(GenealogyProjection(), copy, target, feed(chain_ledger))

    page = live.changes(0, 100)
    assert [(c.seq, c.table) for c in page.changes] == [(last + 1, RESET)]
    assert page.missed(last - 1)


def test_the_copy_is_gone_once_switched_in(
    chain_ledger: Ledger, backend: Backend, tmp_path: Path
) -> None:
    live, _ = live_genealogy(chain_ledger, backend)
    copy, target = shadow_of(backend, live, tmp_path)

    rebuild_beside(GenealogyProjection(), copy, target, feed(chain_ledger))

    if isinstance(copy, SQLiteView):
        assert not copy.path.exists()
    else:
        with psycopg.connect(copy._url) as conn:
            found = conn.execute(
                "SELECT 1 FROM information_schema.schemata WHERE schema_name = %s",
                (copy.schema,),
            ).fetchall()
        assert found == []


class Failing(GenealogyProjection):
    def __init__(self) -> None:
        self.seen = 0

    def process_event(self, event: Any, writer: Any) -> None:
        self.seen += 1
        if self.seen > 20:
            raise RuntimeError("a bug in the new release")
        super().process_event(event, writer)


def test_a_failed_rebuild_leaves_the_live_model_as_it_was(
    chain_ledger: Ledger, backend: Backend, tmp_path: Path
) -> None:
    live, _ = live_genealogy(chain_ledger, backend)
    before = live.fingerprint()
    copy, target = shadow_of(backend, live, tmp_path)

    with pytest.raises(RuntimeError, match="new release"):
        rebuild_beside(Failing(), copy, target, feed(chain_ledger), batch_size=5)

    assert live.fingerprint() == before
    assert live.position("ledger") == chain_ledger.recorder.max_notification_id()


# --- an upgrade: version 2 of a projection, rows of another shape -----------------------


@dataclass(frozen=True)
class Counted:
    aggregate_id: Any
    kind: str


COUNTED = Table(
    "test_seen",  # the same table, in the shape of version 2
    (Column("aggregate_id", Kind.UUID, not_null=True), Column("kind", Kind.TEXT)),
    key=("aggregate_id",),
    row=Counted,
)
INSERT_COUNTED = insert_new(COUNTED)


class CountedWriter:
    def __init__(self, buffer: Buffer) -> None:
        self._rows = buffer.rows[INSERT_COUNTED]

    def add(self, aggregate_id: Any, kind: str) -> None:
        self._rows.append((aggregate_id, kind))


class SeenV2(Dispatching):
    name = "test-seen"
    version = 2

    @handles(object)
    def _any(self, event: Any, writer: CountedWriter) -> None:
        writer.add(event.originator_id, type(event).__qualname__.split(".")[0])


V2 = Layout("test-seen", 2, (COUNTED,), (INSERT_COUNTED,), CountedWriter)


class SQLiteSeenV2(SQLiteView[CountedWriter]):
    layout = V2


class PostgresSeenV2(PostgresView[CountedWriter]):
    layout = V2


def test_an_upgrade_is_built_beside_and_old_writers_then_refuse_to_write(
    backend: Backend, tmp_path: Path
) -> None:
    ledger = backend.ledger("upgrade")
    record_chain(ledger)
    if isinstance(backend, PostgresBackend):
        old: TableView[Any] = PostgresSeenView(backend.url, schema="view_seen")
        copy, target = PostgresSeenV2(backend.url, schema="view_seen_copy"), "view_seen"
    else:
        old = SQLiteSeenView(tmp_path / "seen.sqlite")
        copy, target = SQLiteSeenV2(tmp_path / "copy.sqlite"), old.path
    old_projector = Projector(SeenProjection(), old, feed(ledger))
    try:
        old_projector.catch_up()
        v1 = old.fingerprint()
        during: list[str] = []

        rebuilt = rebuild_beside(
            SeenV2(),
            copy,
            target,
            feed(ledger),
            batch_size=10,
            progress=lambda _: during.append(old.fingerprint()),
        )

        assert during and set(during) == {v1}
        assert rebuilt.switched.previous_version == 1 and rebuilt.same_as_before is None
        new = (
            PostgresSeenV2(backend.url, schema="view_seen")
            if isinstance(backend, PostgresBackend)
            else SQLiteSeenV2(target)
        )
        assert new.fingerprint() == rebuilt.fingerprint
        new.close()
        record_more(ledger)
        with pytest.raises(ModelUpgraded):
            old_projector.catch_up()
    finally:
        old.close()
