"""Read models on PostgreSQL: what every PostgreSQL view shares, with the same tables,
rows and answers as on SQLite.

Masses are NUMERIC (exact, and summable in SQL for reports), compositions JSONB with
string values, ids UUID, times TIMESTAMPTZ. Every connection runs in UTC with the view's
schema as its search path, so several views (a test's, a rebuild's) can share one
database in separate schemas, and several projections one schema.

A pool of connections: the projector thread writes in one transaction per batch while
request threads read, each on a connection of its own. Writers take a transaction-level
advisory lock of their projection first, so write transactions of one projection run
one after another, as SQLite's BEGIN IMMEDIATE makes them; opening a view also takes
the schema's lock, so two first starts do not race on the catalog.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from decimal import Decimal
from typing import Any, TypeVar

import psycopg
from psycopg import Connection, Cursor, sql
from psycopg.rows import TupleRow, tuple_row
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from lodestone.projections import changes, tracking
from lodestone.projections.base import ModelReplaced
from lodestone.projections.changes import Change, Encoder, Page
from lodestone.projections.tables import (
    POSTGRES,
    Buffer,
    Dialect,
    Kind,
    Query,
    R,
    Row,
    Switched,
    Table,
    TableView,
    decoder,
    to_text,
)

W = TypeVar("W")
Pool = ConnectionPool[Connection[TupleRow]]

FROM_POSTGRES: dict[Kind, Callable[[Any], Any]] = {
    Kind.COMPOSITION: lambda v: {k: Decimal(x) for k, x in v.items()} if v is not None else None,
}


class PostgresView(TableView[W]):
    def __init__(
        self,
        url: str,
        *,
        schema: str | None = None,
        pool_size: int = 8,
        timeout: float = 30.0,
    ) -> None:
        """``url``: a libpq URL or conninfo string; ``schema`` (default: the
        projection's name) is created if missing; ``pool_size`` bounds the connections
        (one writer plus concurrent readers); ``timeout``: seconds to wait for the server
        at start, or for a free connection."""
        name = self.layout.projection
        self.schema = schema or name
        self._url = url
        self._timeout = timeout
        self._schema_key = _advisory_key(f"lodestone.read-models:{self.schema}")
        self._write_key = _advisory_key(f"lodestone.{name}:{self.schema}")
        self._sql = {write: write.render(POSTGRES) for write in self.layout.writes}
        self._returning = {w: changes.returning(w, POSTGRES) for w in self.layout.writes}
        self._encoders = {w: Encoder(w.table) for w in self.layout.writes}
        self._log = changes.statements(POSTGRES)
        self._open_buffer = threading.local()
        self._readers: Pool | None = None  # change reads, apart from the writer's pool
        self._readers_lock = threading.Lock()
        self._json = {
            write: [i for i, c in enumerate(write.table.columns) if c.kind is Kind.COMPOSITION]
            for write in self.layout.writes
        }
        self._save_position = tracking.SAVE_POSITION.render(POSTGRES)
        self._position = tracking.position_query(POSTGRES)
        self._decoders = {table: decoder(table, FROM_POSTGRES) for table in self.layout.tables}
        self._pool: Pool = ConnectionPool(
            url,
            connection_class=Connection[TupleRow],
            kwargs={"autocommit": True, "row_factory": tuple_row},
            min_size=1,
            max_size=pool_size,
            timeout=timeout,
            configure=_configure(self.schema),
            open=False,
            name=f"{name}-{self.schema}",
        )
        self._pool.open(wait=True, timeout=timeout)
        try:
            self._prepare()
        except BaseException:
            self._pool.close()
            raise

    def _prepare(self) -> None:
        with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cursor:
            # Concurrent first starts (two processes, two projections) would race on the
            # catalog; writers of this projection must not write while its tables change.
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", (self._schema_key,))
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", (self._write_key,))
            cursor.execute(
                sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema))
            )
            session = _Session(cursor)
            dropped = tracking.prepare(session, self.layout)
            changes.prepare(session, self.layout.projection)
            if dropped:
                changes.reset(session, self.layout.projection)
            self._generation = changes.state(session, self.layout.projection).generation

    @contextmanager
    def transaction(self, positions: Mapping[str, int]) -> Iterator[W]:
        # The writer only collects rows; they are sent after the projection has done
        # its work, in one round of executemany per statement (psycopg pipelines those),
        # so no connection or lock is held while Python thinks, and a projection that
        # fails sends nothing at all.
        buffer = Buffer(self.layout.writes)
        self._open_buffer.buffer = buffer
        try:
            yield self.layout.writer(buffer)
        finally:
            self._open_buffer.buffer = None
        batches = [
            (write, _as_json(rows, self._json[write]))
            for write, rows in buffer.rows.items()
            if rows
        ]
        name = self.layout.projection
        retention = self.change_retention
        default = next(iter(positions.items())) if len(positions) == 1 else ("", 0)
        try:
            with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", (self._write_key,))
                session = _Session(cursor)
                current = self._guard(session)
                if retention > 0:
                    # One result per row (pipelined): the row as stored if it changed,
                    # nothing for a repeat that changed nothing.
                    entries = []
                    for write, rows in batches:
                        encoder = self._encoders[write]
                        origin = buffer.origins(write, default)
                        cursor.executemany(self._returning[write], rows, returning=True)
                        i = 0
                        while True:
                            for stored in cursor.fetchall():
                                entries.append(
                                    (
                                        encoder.table,
                                        encoder.key(stored),
                                        encoder.row_json(stored),
                                        *origin(i),
                                    )
                                )
                            i += 1
                            if not cursor.nextset():
                                break
                    changes.append(session, name, entries, current, retention)
                else:
                    for write, rows in batches:
                        cursor.executemany(self._sql[write], rows)
                self._derive(session, buffer)
                cursor.executemany(
                    self._save_position, [(name, s, p) for s, p in positions.items()]
                )
        except psycopg.OperationalError:
            # Nothing was committed; the projector will try again. Clear out the
            # connections a server restart left dead, so that attempt gets a live one.
            self._pool.check()
            raise

    def at(self, source: str, position: int) -> None:
        buffer = getattr(self._open_buffer, "buffer", None)
        if buffer is not None:
            buffer.mark(source, position)

    def _guard(self, session: _Session) -> changes.State:
        try:
            return changes.guard(session, self.layout, self._generation)
        except ModelReplaced as replaced:
            self._generation = replaced.generation  # positions are read afresh from here
            raise

    def position(self, source: str) -> int:
        rows = self._all(self._position, (self.layout.projection, source))
        return int(rows[0][0]) if rows else 0

    def reset(self) -> None:
        tables = ", ".join(table.name for table in self.layout.tables)
        with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", (self._write_key,))
            cursor.execute(f"TRUNCATE {tables}")
            cursor.execute(tracking.forget_positions(POSTGRES), (self.layout.projection,))
            self._generation = changes.reset(_Session(cursor), self.layout.projection).generation

    def fingerprint(self) -> str:
        """The SQLite view's digest, row for row: each value rendered as the SQLite view
        stores it. The two agree while times are stated in UTC and decimals carry no
        positive exponent (NUMERIC keeps 1E+3 as 1000; TIMESTAMPTZ keeps the instant,
        not the offset); on PostgreSQL alone it is always stable."""
        with self._pool.connection() as conn, conn.transaction():
            # One snapshot for all tables, even while the projector writes.
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            return _fingerprint(conn, self.layout.tables)

    def close(self) -> None:
        self._pool.close()
        if self._readers is not None:
            self._readers.close()

    # --- the change log ----------------------------------------------------------------

    def changes(self, after: int, limit: int) -> Page:
        readers = self._reader_pool()
        name = self.layout.projection
        with readers.connection() as conn, conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            state = conn.execute(self._log["state"], (name,)).fetchone() or (0, 0, 0, 0)
            rows = conn.execute(self._log["page"], (name, after, limit)).fetchall()
        return Page([Change(*row) for row in rows], state[1], state[0], state[3])

    def _reader_pool(self) -> Pool:
        # Apart from the writer's pool: however many streams read, the projector always
        # finds a connection.
        with self._readers_lock:
            if self._readers is None:
                self._readers = ConnectionPool(
                    self._url,
                    connection_class=Connection[TupleRow],
                    kwargs={"autocommit": True, "row_factory": tuple_row},
                    min_size=1,
                    max_size=4,
                    timeout=self._timeout,
                    configure=_configure(self.schema),
                    open=False,
                    name=f"{self.layout.projection}-{self.schema}-changes",
                )
                self._readers.open(wait=True, timeout=self._timeout)
            return self._readers

    def published(self, seq: int) -> None:
        name = self.layout.projection
        with self._pool.connection() as conn:
            conn.execute(self._log["published"], (seq, name, seq))

    def continue_after(self, seq: int) -> None:
        with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", (self._write_key,))
            changes.continue_after(_Session(cursor), self.layout.projection, seq)

    @contextmanager
    def publishing(self) -> Iterator[bool]:
        # A session-level advisory lock on a connection of its own: the server lets go
        # when that connection ends, so a publisher killed mid-batch never keeps its
        # successor waiting.
        key = _advisory_key(f"lodestone.publisher.{self.layout.projection}:{self.schema}")
        with psycopg.connect(self._url, autocommit=True) as conn:
            row = conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
            yield bool(row and row[0])

    def discard(self) -> None:
        try:
            _drop_schema(self)
        finally:
            self.close()

    def switch_into(self, target: Any) -> Switched:
        """The rebuilt tables are moved into schema ``target`` (of the same database)
        in place of its own, in one transaction: readers there go on reading the old
        rows until it commits (a reader that comes while it holds the tables waits for
        the commit, then reads the new ones)."""
        live = str(target)
        name = self.layout.projection
        moved = sql.Identifier(self.schema)
        with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cursor:
            cursor.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(live)))
            cursor.execute(sql.SQL("SET LOCAL search_path TO {}").format(sql.Identifier(live)))
            cursor.execute(
                "SELECT pg_advisory_xact_lock(%s)",
                (_advisory_key(f"lodestone.read-models:{live}"),),
            )
            cursor.execute(
                "SELECT pg_advisory_xact_lock(%s)", (_advisory_key(f"lodestone.{name}:{live}"),)
            )
            session = _Session(cursor)
            previous = _stored_version(session, name)
            before = None
            if previous == self.layout.version:
                before = _fingerprint(conn, self.layout.tables)
            positions_before = _positions(cursor, name, live)
            positions = _positions(cursor, name, self.schema)
            tracking.prepare(session, self.layout)
            changes.prepare(session, name)
            for table in self.layout.tables:
                cursor.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(table.name)))
                cursor.execute(
                    sql.SQL("ALTER TABLE {}.{} SET SCHEMA {}").format(
                        moved, sql.Identifier(table.name), sql.Identifier(live)
                    )
                )
            cursor.execute(tracking.forget_positions(POSTGRES), (name,))
            cursor.executemany(self._save_position, [(name, s, p) for s, p in positions.items()])
            changes.reset(session, name)
        return Switched(previous, before, positions_before, positions)

    def _query(self, query: Query[R], params: Sequence[Any]) -> list[R]:
        decode = self._decoders[query.table]
        return [decode(row) for row in self._all(query.render(POSTGRES), params)]

    def _rows_in(self, table: Table[R], column: str, values: Iterable[Any]) -> list[R]:
        decode = self._decoders[table]
        rows = self._all(
            f"SELECT {table.select_list()} FROM {table.name} WHERE {column} = ANY(%s)",
            (list(values),),
        )
        return [decode(row) for row in rows]

    def _all(self, query: str, params: Sequence[Any]) -> list[TupleRow]:
        try:
            with self._pool.connection() as conn:
                return conn.execute(query, params).fetchall()
        except psycopg.OperationalError:
            # A pooled connection may have died with a server restart: drop the dead
            # ones (pool.check) and read once more. (The pool's own pre-use check
            # backs off 1, 2, 4... seconds per dead connection: too slow here.)
            self._pool.check()
            with self._pool.connection() as conn:
                return conn.execute(query, params).fetchall()


def _as_json(rows: list[Row], columns: list[int]) -> list[Row]:
    """Compositions sent as JSONB with string values (exact, as on SQLite)."""
    if not columns:
        return rows
    adapted = []
    for row in rows:
        values = list(row)
        for i in columns:
            if values[i] is not None:
                values[i] = Jsonb({k: str(v) for k, v in values[i].items()})
        adapted.append(tuple(values))
    return adapted


def stored_version(url: str, schema: str, projection: str) -> int | None:
    """The version of ``projection``'s rows in that schema (None: none there), read
    without preparing anything."""
    with psycopg.connect(url, autocommit=True) as conn:
        found = conn.execute(
            "SELECT to_regclass(%s)", (f'"{schema}".{tracking.VERSIONS.name}',)
        ).fetchone()
        if not found or found[0] is None:
            return None
        query = sql.SQL("SELECT version FROM {} WHERE projection = %s").format(
            sql.Identifier(schema, tracking.VERSIONS.name)
        )
        row = conn.execute(query, (projection,)).fetchone()
        return int(row[0]) if row else None


def _drop_schema(view: PostgresView[Any]) -> None:
    with view._pool.connection() as conn:
        conn.execute(
            sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(view.schema))
        )


def _fingerprint(conn: Connection[TupleRow], tables: Iterable[Table[Any]]) -> str:
    digest = hashlib.sha256()
    for table in tables:
        cursor = conn.cursor()
        query = f"SELECT {table.select_list()} FROM {table.name} ORDER BY 1, 2"
        for row in cursor.stream(query):
            digest.update(json.dumps([to_text(v) for v in row], default=str).encode())
    return digest.hexdigest()


def _stored_version(session: _Session, projection: str) -> int | None:
    if not session.columns(tracking.VERSIONS.name):
        return None
    found = session.rows(
        f"SELECT version FROM {tracking.VERSIONS.name} WHERE projection = %s", (projection,)
    )
    return int(found[0][0]) if found else None


def _positions(cursor: Cursor[TupleRow], projection: str, schema: str) -> dict[str, int]:
    """The projection's positions in ``schema`` (none if it has no tracking table yet)."""
    name = tracking.TRACKING.name
    columns = cursor.execute(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_schema = %s AND table_name = %s",
        (schema, name),
    ).fetchall()
    if ("projection",) not in columns:
        return {}
    query = sql.SQL("SELECT source, position FROM {} WHERE projection = %s").format(
        sql.Identifier(schema, name)
    )
    found = cursor.execute(query, (projection,)).fetchall()
    return {source: int(position) for source, position in found}


class _Session:
    dialect: Dialect = POSTGRES

    def __init__(self, cursor: Cursor[TupleRow]) -> None:
        self._cursor = cursor

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._cursor.execute(sql, params or None)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._cursor.executemany(sql, rows)

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return self._cursor.execute(sql, params or None).fetchall()

    def columns(self, table: str) -> list[str]:
        found = self._cursor.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = %s "
            "ORDER BY ordinal_position",
            (table,),
        ).fetchall()
        return [row[0] for row in found]


def _configure(schema: str) -> Callable[[Connection[TupleRow]], None]:
    search_path = sql.SQL("SET search_path TO {}").format(sql.Identifier(schema))

    def configure(conn: Connection[TupleRow]) -> None:
        # UTC: times come back as the instants they are, the same in every process.
        conn.execute("SET TIME ZONE 'UTC'")
        conn.execute(search_path)

    return configure


def _advisory_key(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
