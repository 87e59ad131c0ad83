"""The genealogy view on PostgreSQL: the same tables, rows and answers as the SQLite view.

Masses are NUMERIC (exact, and summable in SQL for the trade reports), compositions JSONB
with string values, ids UUID, times TIMESTAMPTZ. Every connection runs in UTC with the
view's schema as its search path, so several views (a test's, a rebuild's) can share one
database in separate schemas.

A pool of connections: the projector thread writes in one transaction per batch while
request threads read, each on a connection of its own. Writers take a transaction-level
advisory lock first, so write transactions on one view run one after another, as
SQLite's BEGIN IMMEDIATE makes them, and two first starts do not race on the catalog.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import psycopg
from psycopg import Connection, Cursor, sql
from psycopg.rows import DictRow, dict_row, tuple_row
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from lodestone.projections.genealogy import BatchRow, Edge, GenealogyView, Name, Trade, Writer

SCHEMA = """
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
TABLES = ("batches", "edges", "trades", "names", "tracking")
BATCH_COLUMNS = [
    "reference",
    "material",
    "initial_kg",
    "remaining_kg",
    "composition",
    "facility_id",
    "custodian_id",
    "reporter_id",
    "status",
    "origin_kind",
    "origin_facility_id",
    "origin_licence_id",
    "origin_country",
    "created_at",
    "corrections",
]
# A value the event does not give is NULL in `excluded` and leaves the stored one alone
# (COALESCE), exactly as the SQLite view leaves such columns out of its UPDATE; one
# fixed statement lets the server prepare it once.
UPSERT_BATCH = (
    f"INSERT INTO batches (id, version, {', '.join(BATCH_COLUMNS)}) "
    f"VALUES ({', '.join(['%s'] * (len(BATCH_COLUMNS) + 2))}) "
    "ON CONFLICT (id) DO UPDATE SET version = excluded.version, "
    + ", ".join(f"{c} = COALESCE(excluded.{c}, batches.{c})" for c in BATCH_COLUMNS)
    # Only a newer version of the batch changes the row: a repeat is a no-op.
    + " WHERE excluded.version > batches.version"
)
UPSERT_POSITION = (
    "INSERT INTO tracking (source, position) VALUES (%s, %s) "
    "ON CONFLICT (source) DO UPDATE SET position = excluded.position"
)

INSERT_EDGE = "INSERT INTO edges VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING"
INSERT_TRADE = (
    "INSERT INTO trades VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING"
)
UPSERT_NAME = (
    "INSERT INTO names VALUES (%s, %s, %s, %s, %s) ON CONFLICT (id) DO UPDATE SET "
    "kind = excluded.kind, code = excluded.code, name = excluded.name, country = excluded.country"
)

Pool = ConnectionPool[Connection[DictRow]]


class PostgresGenealogyView(GenealogyView):
    def __init__(
        self,
        url: str,
        *,
        schema: str = "genealogy",
        pool_size: int = 8,
        timeout: float = 30.0,
    ) -> None:
        """``url``: a libpq URL or conninfo string; ``schema`` is created if missing;
        ``pool_size`` bounds the connections (one writer plus concurrent readers);
        ``timeout``: seconds to wait for the server at start, or for a free connection."""
        self.schema = schema
        self._lock_key = _advisory_key(f"lodestone.genealogy:{schema}")
        self._pool: Pool = ConnectionPool(
            url,
            connection_class=Connection[DictRow],
            kwargs={"autocommit": True, "row_factory": dict_row},
            min_size=1,
            max_size=pool_size,
            timeout=timeout,
            configure=_configure(schema),
            open=False,
            name=f"genealogy-{schema}",
        )
        self._pool.open(wait=True, timeout=timeout)
        try:
            self._create_schema()
        except BaseException:
            self._pool.close()
            raise

    def _create_schema(self) -> None:
        with self._pool.connection() as conn, conn.transaction():
            # Concurrent first starts (two processes) would race on the catalog.
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (self._lock_key,))
            conn.execute(
                sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema))
            )
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)

    @contextmanager
    def transaction(self, positions: Mapping[str, int]) -> Iterator[Writer]:
        # The writer only collects rows; they are sent after the projection has done
        # its work, in one round of executemany per table (psycopg pipelines those),
        # so no connection or lock is held while Python thinks, and a projection that
        # fails sends nothing at all.
        writer = _Writer()
        yield writer
        try:
            with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", (self._lock_key,))
                writer.flush(cursor)
                cursor.executemany(UPSERT_POSITION, list(positions.items()))
        except psycopg.OperationalError:
            # Nothing was committed; the projector will try again. Clear out the
            # connections a server restart left dead, so that attempt gets a live one.
            self._pool.check()
            raise

    def position(self, source: str) -> int:
        row = self._one("SELECT position FROM tracking WHERE source = %s", (source,))
        return int(row["position"]) if row else 0

    def reset(self) -> None:
        with self._pool.connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (self._lock_key,))
            conn.execute(f"TRUNCATE {', '.join(TABLES)}")

    def batches(self, ids: Iterable[UUID]) -> dict[UUID, BatchRow]:
        rows = self._all("SELECT * FROM batches WHERE id = ANY(%s)", (list(ids),))
        return {row["id"]: _batch(row) for row in rows}

    def ancestors(self, batch_id: UUID) -> list[Edge]:
        return self._walk(
            "WITH RECURSIVE up(id) AS (SELECT %s::uuid UNION SELECT e.parent_id FROM edges e "
            "JOIN up ON e.child_id = up.id) "
            "SELECT e.* FROM edges e WHERE e.child_id IN (SELECT id FROM up) "
            "ORDER BY e.parent_id, e.child_id",
            batch_id,
        )

    def descendants(self, batch_id: UUID) -> list[Edge]:
        return self._walk(
            "WITH RECURSIVE down(id) AS (SELECT %s::uuid UNION SELECT e.child_id FROM edges e "
            "JOIN down ON e.parent_id = down.id) "
            "SELECT e.* FROM edges e WHERE e.parent_id IN (SELECT id FROM down) "
            "ORDER BY e.parent_id, e.child_id",
            batch_id,
        )

    def _walk(self, query: str, batch_id: UUID) -> list[Edge]:
        return [
            Edge(r["parent_id"], r["child_id"], r["kg"], r["operation"], r["operation_id"])
            for r in self._all(query, (batch_id,))
        ]

    def trades(self, ids: Iterable[UUID]) -> list[Trade]:
        rows = self._all(
            "SELECT * FROM trades WHERE batch_id = ANY(%s) ORDER BY occurred_at, batch_id, version",
            (list(ids),),
        )
        return [
            Trade(
                r["batch_id"],
                r["version"],
                r["kind"],
                r["from_id"],
                r["to_id"],
                r["kg"],
                r["contract"] or "",
                r["price"],
                r["currency"] or "",
                r["destination_country"] or "",
                r["occurred_at"],
            )
            for r in rows
        ]

    def names(self, ids: Iterable[UUID]) -> dict[UUID, Name]:
        rows = self._all("SELECT * FROM names WHERE id = ANY(%s)", (list(ids),))
        return {
            r["id"]: Name(r["id"], r["kind"], r["code"], r["name"] or "", r["country"] or "")
            for r in rows
        }

    def fingerprint(self) -> str:
        """The SQLite view's digest, row for row: each value rendered as the SQLite view
        stores it. The two agree while times are stated in UTC and decimals carry no
        positive exponent (NUMERIC keeps 1E+3 as 1000; TIMESTAMPTZ keeps the instant,
        not the offset); on PostgreSQL alone it is always stable."""
        digest = hashlib.sha256()
        with self._pool.connection() as conn, conn.transaction():
            # One snapshot for all tables, even while the projector writes.
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            for table in TABLES[:-1]:
                cursor = conn.cursor(row_factory=tuple_row)
                for row in cursor.stream(f"SELECT * FROM {table} ORDER BY 1, 2"):
                    digest.update(json.dumps([_text(v) for v in row], default=str).encode())
        return digest.hexdigest()

    def close(self) -> None:
        self._pool.close()

    def _one(self, query: str, params: Sequence[Any]) -> DictRow | None:
        rows = self._all(query, params)
        return rows[0] if rows else None

    def _all(self, query: str, params: Sequence[Any]) -> list[DictRow]:
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


class _Writer:
    """Rows in the order the projection wrote them: within a table the order matters
    (a batch's version 2 must not overtake its version 1), across tables it does not."""

    def __init__(self) -> None:
        self._batches: list[Sequence[Any]] = []
        self._edges: list[Sequence[Any]] = []
        self._trades: list[Sequence[Any]] = []
        self._names: list[Sequence[Any]] = []

    def upsert_batch(self, row: BatchRow) -> None:
        values = [getattr(row, c) for c in BATCH_COLUMNS]
        if row.composition is not None:
            values[BATCH_COLUMNS.index("composition")] = Jsonb(
                {k: str(v) for k, v in row.composition.items()}
            )
        self._batches.append([row.id, row.version, *values])

    def add_edges(self, edges: Sequence[Edge]) -> None:
        self._edges += [(e.parent_id, e.child_id, e.kg, e.operation, e.operation_id) for e in edges]

    def add_trade(self, t: Trade) -> None:
        self._trades.append(
            (
                t.batch_id,
                t.version,
                t.kind,
                t.from_id,
                t.to_id,
                t.kg,
                t.contract,
                t.price,
                t.currency,
                t.destination_country,
                t.occurred_at,
            )
        )

    def upsert_name(self, n: Name) -> None:
        self._names.append((n.id, n.kind, n.code, n.name, n.country))

    def flush(self, cursor: Cursor[DictRow]) -> None:
        for query, rows in (
            (UPSERT_BATCH, self._batches),
            (INSERT_EDGE, self._edges),
            (INSERT_TRADE, self._trades),
            (UPSERT_NAME, self._names),
        ):
            if rows:
                cursor.executemany(query, rows)


def _configure(schema: str) -> Callable[[Connection[DictRow]], None]:
    search_path = sql.SQL("SET search_path TO {}").format(sql.Identifier(schema))

    def configure(conn: Connection[DictRow]) -> None:
        # UTC: times come back as the instants they are, the same in every process.
        conn.execute("SET TIME ZONE 'UTC'")
        conn.execute(search_path)

    return configure


def _advisory_key(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


def _text(value: Any) -> Any:
    """A value as the SQLite view stores it."""
    if value is None or isinstance(value, int | str):
        return value
    if isinstance(value, dict):
        return json.dumps({k: str(v) for k, v in value.items()}, sort_keys=True)
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _batch(r: DictRow) -> BatchRow:
    composition = r["composition"]
    return BatchRow(
        id=r["id"],
        version=r["version"],
        reference=r["reference"],
        material=r["material"],
        initial_kg=r["initial_kg"],
        remaining_kg=r["remaining_kg"],
        composition={k: Decimal(v) for k, v in composition.items()}
        if composition is not None
        else None,
        facility_id=r["facility_id"],
        custodian_id=r["custodian_id"],
        reporter_id=r["reporter_id"],
        status=r["status"],
        origin_kind=r["origin_kind"],
        origin_facility_id=r["origin_facility_id"],
        origin_licence_id=r["origin_licence_id"],
        origin_country=r["origin_country"],
        created_at=r["created_at"],
        corrections=r["corrections"],
    )
