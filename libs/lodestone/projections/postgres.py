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
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from decimal import Decimal
from typing import Any, TypeVar

import psycopg
from psycopg import Connection, Cursor, sql
from psycopg.rows import TupleRow, tuple_row
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from lodestone.projections import tracking
from lodestone.projections.tables import (
    POSTGRES,
    Buffer,
    Dialect,
    Kind,
    Query,
    R,
    Row,
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
        self._schema_key = _advisory_key(f"lodestone.read-models:{self.schema}")
        self._write_key = _advisory_key(f"lodestone.{name}:{self.schema}")
        self._sql = {write: write.render(POSTGRES) for write in self.layout.writes}
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
            tracking.prepare(_Session(cursor), self.layout)

    @contextmanager
    def transaction(self, positions: Mapping[str, int]) -> Iterator[W]:
        # The writer only collects rows; they are sent after the projection has done
        # its work, in one round of executemany per statement (psycopg pipelines those),
        # so no connection or lock is held while Python thinks, and a projection that
        # fails sends nothing at all.
        buffer = Buffer(self.layout.writes)
        yield self.layout.writer(buffer)
        batches = [
            (self._sql[write], _as_json(rows, self._json[write]))
            for write, rows in buffer.rows.items()
            if rows
        ]
        name = self.layout.projection
        try:
            with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", (self._write_key,))
                for statement, rows in batches:
                    cursor.executemany(statement, rows)
                cursor.executemany(
                    self._save_position, [(name, s, p) for s, p in positions.items()]
                )
        except psycopg.OperationalError:
            # Nothing was committed; the projector will try again. Clear out the
            # connections a server restart left dead, so that attempt gets a live one.
            self._pool.check()
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

    def fingerprint(self) -> str:
        """The SQLite view's digest, row for row: each value rendered as the SQLite view
        stores it. The two agree while times are stated in UTC and decimals carry no
        positive exponent (NUMERIC keeps 1E+3 as 1000; TIMESTAMPTZ keeps the instant,
        not the offset); on PostgreSQL alone it is always stable."""
        digest = hashlib.sha256()
        with self._pool.connection() as conn, conn.transaction():
            # One snapshot for all tables, even while the projector writes.
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            for table in self.layout.tables:
                cursor = conn.cursor()
                query = f"SELECT {table.select_list()} FROM {table.name} ORDER BY 1, 2"
                for row in cursor.stream(query):
                    digest.update(json.dumps([to_text(v) for v in row], default=str).encode())
        return digest.hexdigest()

    def close(self) -> None:
        self._pool.close()

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


class _Session:
    dialect: Dialect = POSTGRES

    def __init__(self, cursor: Cursor[TupleRow]) -> None:
        self._cursor = cursor

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._cursor.execute(sql, params or None)

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
