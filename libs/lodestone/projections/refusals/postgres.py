"""Refused attempts on PostgreSQL, in a schema of their own (default ``refusals``)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from psycopg import Connection, sql
from psycopg.rows import TupleRow, tuple_row
from psycopg_pool import ConnectionPool

from lodestone.projections.refusals.log import COUNTS, TABLE, RefusalLog, RefusedAttempt, grouped
from lodestone.projections.tables import POSTGRES, decoder, insert_new

INSERT = insert_new(TABLE).render(POSTGRES)


class PostgresRefusalLog(RefusalLog):
    def __init__(self, url: str, *, schema: str = "refusals", timeout: float = 30.0) -> None:
        search_path = sql.SQL("SET search_path TO {}").format(sql.Identifier(schema))

        def configure(conn: Connection[TupleRow]) -> None:
            conn.execute("SET TIME ZONE 'UTC'")
            conn.execute(search_path)

        self._decode = decoder(TABLE, {})
        with Connection.connect(url, autocommit=True) as conn, conn.transaction():
            # Two first starts would race on the catalog: the schema's lock, as views take.
            conn.execute(
                "SELECT pg_advisory_xact_lock(%s)", (_key(f"lodestone.read-models:{schema}"),)
            )
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
            conn.execute(search_path)
            conn.execute(TABLE.create(POSTGRES))
            for statement in TABLE.create_indexes():
                conn.execute(statement)
        self._pool: ConnectionPool[Connection[TupleRow]] = ConnectionPool(
            url,
            connection_class=Connection[TupleRow],
            kwargs={"autocommit": True, "row_factory": tuple_row},
            min_size=1,
            max_size=4,
            timeout=timeout,
            configure=configure,
            open=False,
            name=f"refusals-{schema}",
        )
        self._pool.open(wait=True, timeout=timeout)

    def record(self, attempt: RefusedAttempt) -> None:
        values = [getattr(attempt, name) for name in TABLE.column_names]
        with self._pool.connection() as conn:
            conn.execute(INSERT, values)

    def counts(self, licences: Iterable[str] | None = None) -> dict[str, dict[str, int]]:
        with self._pool.connection() as conn:
            rows = conn.execute(COUNTS).fetchall()
        return grouped([(r[0], r[1], r[2]) for r in rows], licences)

    def attempts(self) -> list[RefusedAttempt]:
        query = f"SELECT {TABLE.select_list()} FROM {TABLE.name} ORDER BY recorded_at, id"
        with self._pool.connection() as conn:
            rows = conn.execute(query).fetchall()
        return [self._decode(row) for row in rows]

    def close(self) -> None:
        self._pool.close()


def _key(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
