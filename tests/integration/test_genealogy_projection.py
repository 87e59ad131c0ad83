"""The genealogy read model: exactly-once effect, order independence, rebuild; the same
rows and answers on SQLite and PostgreSQL; a projection reset and rebuilt alone beside
another in one database; the registry; a database of the previous release.
(The provenance shares the view keeps per batch: test_kept_provenance.py.)"""

from __future__ import annotations

import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass
from decimal import Decimal as D
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest
from psycopg import sql

from lodestone.bootstrap.settings import Settings
from lodestone.bootstrap.stores import open_view
from lodestone.infra.postgres.database import postgres_env
from lodestone.infra.sqlite.database import sqlite_env
from lodestone.ledger import Ledger
from lodestone.projections import genealogy
from lodestone.projections.base import Dispatching, View, handles
from lodestone.projections.genealogy import GenealogyProjection, GenealogyView
from lodestone.projections.genealogy.postgres import PostgresGenealogyView
from lodestone.projections.genealogy.schema import BATCHES, EDGES, NAMES, TRADES
from lodestone.projections.genealogy.sqlite import SQLiteGenealogyView
from lodestone.projections.postgres import PostgresView
from lodestone.projections.registry import REGISTRY
from lodestone.projections.sqlite import SQLiteView
from lodestone.projections.tables import Buffer, Column, Kind, Layout, Table, insert_new
from lodestone.streaming.feeds import NotificationLogFeed
from lodestone.streaming.projector import Projector
from tests.fixtures.backends import Backend, PostgresBackend
from tests.integration.conftest import NOW, record_chain


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


# --- both databases ------------------------------------------------------------------


@pytest.mark.postgres
def test_sqlite_and_postgres_give_the_same_rows_and_the_same_ancestor_order(
    make_postgres_database: Callable[[], str], tmp_path: Path
) -> None:
    url = make_postgres_database()
    ledgers = [
        Ledger(sqlite_env(tmp_path / "events.sqlite"), clock=lambda: NOW),
        Ledger(postgres_env(url), clock=lambda: NOW),
    ]
    views: list[GenealogyView] = [
        SQLiteGenealogyView(tmp_path / "rm.sqlite"),
        PostgresGenealogyView(url),
    ]
    try:
        for ledger, view in zip(ledgers, views, strict=True):
            record_chain(ledger)  # same commands, same clock, same uuid5 ids
            project(ledger, view)
        on_sqlite, on_postgres = views
        batches = [ledgers[0].batch(ref).id for ref in ("NORTH/OX-B", "SOUTH/ORE-S")]

        assert on_sqlite.fingerprint() == on_postgres.fingerprint()
        for batch_id in batches:
            assert on_sqlite.ancestors(batch_id) == on_postgres.ancestors(batch_id)
            assert on_sqlite.descendants(batch_id) == on_postgres.descendants(batch_id)
            upstream = genealogy.upstream(on_sqlite, batch_id)
            assert upstream.trades == genealogy.upstream(on_postgres, batch_id).trades
    finally:
        for view in views:
            view.close()
        for ledger in ledgers:
            ledger.close()


def test_ancestors_and_descendants_come_ordered_by_parent_then_child(
    chain_ledger: Ledger, backend: Backend
) -> None:
    view, _ = project(chain_ledger, backend.genealogy_view("rm"))

    up = view.ancestors(chain_ledger.batch("NORTH/OX-B").id)
    down = view.descendants(chain_ledger.batch("SOUTH/ORE-S").id)

    assert len(up) > 3 and len(down) > 3
    assert up == sorted(up, key=lambda e: (e.parent_id, e.child_id))
    assert down == sorted(down, key=lambda e: (e.parent_id, e.child_id))


# --- a second projection in the same database ----------------------------------------


@dataclass(frozen=True)
class Seen:
    aggregate_id: UUID
    version: int
    topic: str


SEEN = Table(
    "test_seen",
    (
        Column("aggregate_id", Kind.UUID, not_null=True),
        Column("version", Kind.INT, not_null=True),
        Column("topic", Kind.TEXT, not_null=True),
    ),
    key=("aggregate_id", "version"),
    row=Seen,
)
INSERT_SEEN = insert_new(SEEN)


class SeenWriter:
    def __init__(self, buffer: Buffer) -> None:
        self._rows = buffer.rows[INSERT_SEEN]

    def add(self, seen: Seen) -> None:
        self._rows.append((seen.aggregate_id, seen.version, seen.topic))


class SeenProjection(Dispatching):
    """Every event it is given, one row each: a read model other than the genealogy."""

    name = "test-seen"
    version = 1

    @handles(object)
    def _any(self, event: Any, writer: SeenWriter) -> None:
        writer.add(Seen(event.originator_id, event.originator_version, type(event).__name__))


SEEN_LAYOUT = Layout("test-seen", 1, (SEEN,), (INSERT_SEEN,), SeenWriter)


class SQLiteSeenView(SQLiteView[SeenWriter]):
    layout = SEEN_LAYOUT


class PostgresSeenView(PostgresView[SeenWriter]):
    layout = SEEN_LAYOUT


@pytest.fixture
def beside(backend: Backend) -> Iterator[Callable[[View[Any]], View[SeenWriter]]]:
    """Opens the seen projection's view in the database of a given genealogy view."""
    opened: list[View[SeenWriter]] = []

    def open_beside(view: View[Any]) -> View[SeenWriter]:
        seen: View[SeenWriter]
        if isinstance(view, SQLiteView):
            seen = SQLiteSeenView(view.path)
        else:
            assert isinstance(backend, PostgresBackend) and isinstance(view, PostgresView)
            seen = PostgresSeenView(backend.url, schema=view.schema)
        opened.append(seen)
        return seen

    yield open_beside
    for seen in opened:
        seen.close()


def test_two_projections_in_one_database_keep_their_own_positions(
    chain_ledger: Ledger, backend: Backend, beside: Callable[[View[Any]], View[SeenWriter]]
) -> None:
    view, _ = project(chain_ledger, backend.genealogy_view("rm"))
    seen = beside(view)
    feed = NotificationLogFeed(chain_ledger.recorder, chain_ledger.mapper)

    Projector(SeenProjection(), seen, feed, batch_size=5).run_once()

    assert seen.position("ledger") == 5
    assert view.position("ledger") == chain_ledger.recorder.max_notification_id()


def test_a_projection_is_reset_and_rebuilt_alone(
    chain_ledger: Ledger, backend: Backend, beside: Callable[[View[Any]], View[SeenWriter]]
) -> None:
    view, projector = project(chain_ledger, backend.genealogy_view("rm"))
    seen = beside(view)
    feed = NotificationLogFeed(chain_ledger.recorder, chain_ledger.mapper)
    seen_projector = Projector(SeenProjection(), seen, feed, batch_size=7)
    seen_projector.catch_up()
    before, seen_before = view.fingerprint(), seen.fingerprint()

    view.reset()

    assert projector.position() == 0
    assert view.batches([chain_ledger.batch("NORTH/OX-B").id]) == {}
    assert seen.fingerprint() == seen_before
    assert seen_projector.position() == chain_ledger.recorder.max_notification_id()
    assert seen_projector.catch_up() == 0
    projector.catch_up()
    assert view.fingerprint() == before


# --- the registry --------------------------------------------------------------------


def test_the_registry_opens_the_genealogy_view_of_the_configured_database(
    backend: Backend, tmp_path: Path
) -> None:
    if isinstance(backend, PostgresBackend):
        settings = Settings(postgres_url=backend.url, data_dir=tmp_path / "unused")
        expected: type[GenealogyView] = PostgresGenealogyView
    else:
        settings = Settings(data_dir=tmp_path / "data", postgres_url=None)
        expected = SQLiteGenealogyView

    view = open_view(settings, REGISTRY["genealogy"])
    try:
        assert type(view) is expected
        assert view.position("ledger") == 0
    finally:
        view.close()
    if isinstance(view, SQLiteGenealogyView):
        assert view.path == settings.read_model_path


# --- a database of the previous release ----------------------------------------------

#: The DDL of the release before projections had names in ``tracking``, as it was.
PREVIOUS_SQLITE_DDL = """
CREATE TABLE IF NOT EXISTS batches (
    id TEXT PRIMARY KEY, version INTEGER NOT NULL, reference TEXT, material TEXT,
    initial_kg TEXT, remaining_kg TEXT, composition TEXT, facility_id TEXT,
    custodian_id TEXT, reporter_id TEXT, status TEXT, origin_kind TEXT,
    origin_facility_id TEXT, origin_licence_id TEXT, origin_country TEXT, created_at TEXT,
    corrections INTEGER
);
CREATE TABLE IF NOT EXISTS edges (
    parent_id TEXT NOT NULL, child_id TEXT NOT NULL, kg TEXT NOT NULL,
    operation TEXT NOT NULL, operation_id TEXT NOT NULL, PRIMARY KEY (parent_id, child_id)
);
CREATE INDEX IF NOT EXISTS edges_by_child ON edges (child_id);
CREATE TABLE IF NOT EXISTS trades (
    batch_id TEXT NOT NULL, version INTEGER NOT NULL, kind TEXT NOT NULL, from_id TEXT,
    to_id TEXT, kg TEXT NOT NULL, contract TEXT, price TEXT, currency TEXT,
    destination_country TEXT, occurred_at TEXT, PRIMARY KEY (batch_id, version)
);
CREATE TABLE IF NOT EXISTS names (
    id TEXT PRIMARY KEY, kind TEXT NOT NULL, code TEXT NOT NULL, name TEXT, country TEXT
);
CREATE TABLE IF NOT EXISTS tracking (source TEXT PRIMARY KEY, position INTEGER NOT NULL);
"""
PREVIOUS_POSTGRES_DDL = """
CREATE TABLE IF NOT EXISTS batches (
    id UUID PRIMARY KEY, version BIGINT NOT NULL, reference TEXT, material TEXT,
    initial_kg NUMERIC, remaining_kg NUMERIC, composition JSONB, facility_id UUID,
    custodian_id UUID, reporter_id UUID, status TEXT, origin_kind TEXT,
    origin_facility_id UUID, origin_licence_id UUID, origin_country TEXT,
    created_at TIMESTAMPTZ, corrections BIGINT
);
ALTER TABLE batches ADD COLUMN IF NOT EXISTS corrections BIGINT;
CREATE TABLE IF NOT EXISTS edges (
    parent_id UUID NOT NULL, child_id UUID NOT NULL, kg NUMERIC NOT NULL,
    operation TEXT NOT NULL, operation_id UUID NOT NULL, PRIMARY KEY (parent_id, child_id)
);
CREATE INDEX IF NOT EXISTS edges_by_child ON edges (child_id);
CREATE TABLE IF NOT EXISTS trades (
    batch_id UUID NOT NULL, version BIGINT NOT NULL, kind TEXT NOT NULL, from_id UUID,
    to_id UUID, kg NUMERIC NOT NULL, contract TEXT, price NUMERIC, currency TEXT,
    destination_country TEXT, occurred_at TIMESTAMPTZ, PRIMARY KEY (batch_id, version)
);
CREATE TABLE IF NOT EXISTS names (
    id UUID PRIMARY KEY, kind TEXT NOT NULL, code TEXT NOT NULL, name TEXT, country TEXT
);
CREATE TABLE IF NOT EXISTS tracking (source TEXT PRIMARY KEY, position BIGINT NOT NULL);
"""
#: What later releases added to the tables: created when a view opens, no rebuild (the
#: previous release's read model opens with its rows and positions: see below).
ADDED_SINCE_DDL = (
    "CREATE INDEX IF NOT EXISTS batches_by_reporter ON batches (reporter_id, created_at)"
)
GENEALOGY_TABLES = [t.name for t in (BATCHES, EDGES, TRADES, NAMES)]


def previous_release_database(
    backend: Backend, tmp_path: Path, source: GenealogyView, name: str, position: int
) -> None:
    """A read model as the previous release left it: its DDL, the rows of ``source``
    and ``position`` in the notification log, in the old tracking table."""
    if isinstance(backend, PostgresBackend):
        assert isinstance(source, PostgresView)
        schema = sql.Identifier(f"view_{name}")
        with psycopg.connect(backend.url, autocommit=True) as conn, conn.transaction():
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(schema))
            conn.execute(sql.SQL("SET LOCAL search_path TO {}").format(schema))
            for statement in PREVIOUS_POSTGRES_DDL.split(";"):
                if statement.strip():
                    conn.execute(statement)
            for table in GENEALOGY_TABLES:
                conn.execute(
                    sql.SQL("INSERT INTO {} SELECT * FROM {}").format(
                        sql.Identifier(table), sql.Identifier(source.schema, table)
                    )
                )
            conn.execute("INSERT INTO tracking VALUES ('ledger', %s)", (position,))
        return
    assert isinstance(source, SQLiteView)
    with closing(sqlite3.connect(tmp_path / f"view-{name}.sqlite")) as db, db:
        db.executescript(PREVIOUS_SQLITE_DDL)
        db.execute("ATTACH DATABASE ? AS source", (str(source.path),))
        for table in GENEALOGY_TABLES:
            db.execute(f"INSERT INTO main.{table} SELECT * FROM source.{table}")
        db.execute("INSERT INTO tracking VALUES ('ledger', ?)", (position,))


def test_a_read_model_of_the_previous_release_is_rebuilt_to_the_same_rows(
    chain_ledger: Ledger, backend: Backend, tmp_path: Path
) -> None:
    # Its positions are named (genealogy, version 1) and, since version 2 keeps each
    # batch's provenance shares that version 1 never wrote, emptied for a rebuild.
    reference, _ = project(chain_ledger, backend.genealogy_view("rm"))
    last = chain_ledger.recorder.max_notification_id()
    previous_release_database(backend, tmp_path, reference, "old", last)

    old = backend.genealogy_view("old")

    assert old.position("ledger") == 0
    view, projector = project(chain_ledger, old)
    assert projector.position() == last
    assert view.fingerprint() == reference.fingerprint()


def test_a_read_model_of_another_version_is_rebuilt_from_position_zero(
    chain_ledger: Ledger, backend: Backend
) -> None:
    first, _ = project(chain_ledger, backend.genealogy_view("rm"))
    before = first.fingerprint()
    with first.transaction({}) as writer:  # a row the current version would never write
        writer.upsert_name(genealogy.Name(UUID(int=1), "actor", "GHOST", "Ghost", "XX"))
    stamp_version(backend, first, genealogy.VERSION - 1)
    first.close()

    reopened = backend.genealogy_view("rm")

    assert reopened.position("ledger") == 0
    assert reopened.names([UUID(int=1)]) == {}
    project(chain_ledger, reopened)
    assert reopened.fingerprint() == before


def stamp_version(backend: Backend, view: GenealogyView, version: int) -> None:
    """Marks the view's rows as written by another version of the projection."""
    update = "UPDATE projection_versions SET version = {} WHERE projection = 'genealogy'"
    if isinstance(backend, PostgresBackend):
        assert isinstance(view, PostgresView)
        with psycopg.connect(backend.url, autocommit=True) as conn:
            conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(view.schema)))
            conn.execute(update.format(int(version)))
        return
    assert isinstance(view, SQLiteView)
    with closing(sqlite3.connect(view.path)) as db, db:
        db.execute(update.format(int(version)))


def test_the_described_tables_are_the_tables_of_the_previous_release(
    backend: Backend, tmp_path: Path
) -> None:
    current = backend.genealogy_view("current")
    if isinstance(backend, PostgresBackend):
        assert isinstance(current, PostgresView)
        with psycopg.connect(backend.url, autocommit=True) as conn, conn.transaction():
            conn.execute("CREATE SCHEMA previous")
            conn.execute("SET LOCAL search_path TO previous")
            for statement in PREVIOUS_POSTGRES_DDL.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(ADDED_SINCE_DDL)
        assert postgres_shapes(backend.url, current.schema) == postgres_shapes(
            backend.url, "previous"
        )
        return
    assert isinstance(current, SQLiteView)
    with closing(sqlite3.connect(tmp_path / "previous.sqlite")) as db:
        db.executescript(PREVIOUS_SQLITE_DDL)
        db.execute(ADDED_SINCE_DDL)
    assert sqlite_shapes(current.path) == sqlite_shapes(tmp_path / "previous.sqlite")


def sqlite_shapes(path: Path) -> dict[str, Any]:
    """Per genealogy table: (column, declared type, place in the key), and its indexes.
    (Nullability is left out: SQLite's old tables let a TEXT key be NULL, the new ones
    say NOT NULL, as the key means.)"""
    with closing(sqlite3.connect(path)) as db:
        return {
            table: (
                [(r[1], r[2], r[5]) for r in db.execute(f"PRAGMA table_info({table})")],
                sorted(
                    r[1]
                    for r in db.execute(f"PRAGMA index_list({table})")
                    if not r[1].startswith("sqlite_autoindex")
                ),
            )
            for table in GENEALOGY_TABLES
        }


def postgres_shapes(url: str, schema: str) -> dict[str, Any]:
    """Per genealogy table: (column, type, nullable), in order, and its index definitions."""
    with psycopg.connect(url) as conn:
        columns = conn.execute(
            "SELECT table_name, column_name, data_type, is_nullable "
            "FROM information_schema.columns WHERE table_schema = %s "
            "ORDER BY table_name, ordinal_position",
            (schema,),
        ).fetchall()
        indexes = conn.execute(
            "SELECT tablename, indexname, replace(indexdef, %s, '') FROM pg_indexes "
            "WHERE schemaname = %s ORDER BY 1, 2",
            (f"{schema}.", schema),
        ).fetchall()
    return {
        table: (
            [c[1:] for c in columns if c[0] == table],
            [i[1:] for i in indexes if i[0] == table],
        )
        for table in GENEALOGY_TABLES
    }


# --- the projector process -----------------------------------------------------------


class LogAsKafka:
    """Stands in for KafkaFeed: the ledger's notification log."""

    def __init__(self, ledger: Ledger) -> None:
        log = NotificationLogFeed(ledger.recorder, ledger.mapper)
        self.poll, self.rewind = log.poll, log.rewind

    def committed(self, positions: Callable[[str], int]) -> None:
        return None

    def close(self) -> None:
        return None


def test_the_projector_process_runs_the_chosen_projections_in_their_own_groups(
    chain_ledger: Ledger, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lodestone.projector import main as projector_main

    groups: list[str] = []

    def kafka_feed(servers: str, group_id: str, *args: Any, **kwargs: Any) -> LogAsKafka:
        groups.append(group_id)
        return LogAsKafka(chain_ledger)

    monkeypatch.setattr(projector_main, "KafkaFeed", kafka_feed)
    # No broker here: the topic the process makes before joining its groups is noted.
    topics: list[str] = []
    monkeypatch.setattr(projector_main, "create_topic", lambda _s, topic, *a: topics.append(topic))
    monkeypatch.delenv("LODESTONE_PROJECTOR_GROUP", raising=False)
    settings = Settings(
        data_dir=tmp_path / "data", postgres_url=None, kafka_bootstrap_servers="unused:9092"
    )
    reference, _ = project(chain_ledger, SQLiteGenealogyView(tmp_path / "reference.sqlite"))
    last = chain_ledger.recorder.max_notification_id()
    stop = threading.Event()
    runner = threading.Thread(
        target=projector_main.run, args=(settings, stop), kwargs={"projections": ["genealogy"]}
    )

    runner.start()
    try:
        deadline = time.monotonic() + 30
        while position_in(settings) < last and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        runner.join(timeout=30)

    assert groups == ["lodestone.genealogy.v2"]
    assert topics == [settings.kafka_topic]
    view = SQLiteGenealogyView(settings.read_model_path)
    assert view.fingerprint() == reference.fingerprint()
    view.close()
    reference.close()


def position_in(settings: Settings) -> int:
    if not settings.read_model_path.exists():
        return 0
    with closing(sqlite3.connect(settings.read_model_path)) as db:
        try:
            row = db.execute("SELECT position FROM tracking WHERE projection = 'genealogy'")
            found = row.fetchone()
        except sqlite3.OperationalError:  # not made yet
            return 0
    return int(found[0]) if found else 0
