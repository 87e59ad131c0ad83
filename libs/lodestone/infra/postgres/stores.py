"""The project's stores in the event store's PostgreSQL database (interfaces and their
meaning: ``lodestone.ledger.stores``)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from uuid import UUID

import psycopg

from lodestone.infra.postgres.database import Database, PostgresStore
from lodestone.infra.sql import CheckpointQueries, PositionQueries
from lodestone.ledger.stores import Checkpoint, CheckpointConflict, Row, ScanRow


class PostgresEventRows(PostgresStore):
    """Read only, from the library's events table (notification_id = position)."""

    def __init__(self, database: Database, table: str = "lodestone_events") -> None:
        super().__init__(database)
        self._table = table

    def for_aggregates(self, ids: Iterable[UUID]) -> list[Row]:
        keys: Sequence[UUID] = list(ids)
        with self._connection.use() as db:
            result = db.execute(
                "SELECT notification_id, originator_id, originator_version, topic, state "
                f"FROM {self._table} WHERE originator_id = ANY(%s) ORDER BY notification_id",
                (keys,),
            ).fetchall()
        return [Row(p, i, v, t, bytes(s)) for p, i, v, t, s in result]

    def max_position(self) -> int:
        with self._connection.use() as db:
            row = db.execute(f"SELECT MAX(notification_id) FROM {self._table}").fetchone()
        return int(row[0] or 0) if row else 0

    def scan(self, start: int, limit: int, stop: int) -> list[ScanRow]:
        with self._connection.use() as db:
            rows = db.execute(
                "SELECT notification_id, originator_id::text, originator_version, topic, state "
                f"FROM {self._table} WHERE notification_id >= %s AND notification_id <= %s "
                "ORDER BY notification_id LIMIT %s",
                (start, stop, limit),
            ).fetchall()
        return [(p, i, v, t, bytes(s)) for p, i, v, t, s in rows]


class PostgresPositionStore(PositionQueries, PostgresStore):
    mark = "%s"

    def __init__(self, database: Database) -> None:
        super().__init__(database)
        with self._connection.use() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS lodestone_positions "
                "(name TEXT PRIMARY KEY, position BIGINT NOT NULL)"
            )


class PostgresCheckpointStore(CheckpointQueries, PostgresStore):
    mark = "%s"

    def __init__(self, database: Database) -> None:
        super().__init__(database)
        with self._connection.use() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS lodestone_checkpoints (seq BIGINT PRIMARY KEY, "
                "first_position BIGINT NOT NULL, last_position BIGINT NOT NULL, "
                "count BIGINT NOT NULL, root TEXT NOT NULL, prev TEXT, "
                "created_at TEXT NOT NULL, hash TEXT NOT NULL)"
            )

    def add(self, checkpoints: Sequence[Checkpoint]) -> None:
        with self._connection.use() as db:
            try:
                with db.transaction(), db.cursor() as cur:
                    cur.executemany(self._insert_sql(), self._values(checkpoints))
            except psycopg.errors.UniqueViolation:
                raise CheckpointConflict from None


class PostgresWriterLock(PostgresStore):
    """A session advisory lock named after the events table, on a connection of its own:
    held from a group's first read to its commit (``WriterLock``). PostgreSQL releases it
    if the session ends, so a writer killed while holding it blocks no one."""

    def __init__(self, database: Database, table: str = "lodestone_events") -> None:
        super().__init__(database)
        digest = hashlib.sha256(f"lodestone.group-writer:{table}".encode()).digest()
        self._key = int.from_bytes(digest[:8], "big", signed=True)

    def acquire(self) -> None:
        with self._connection.use() as db:
            db.execute("SELECT pg_advisory_lock(%s)", (self._key,))

    def release(self) -> None:
        with self._connection.use() as db:
            db.execute("SELECT pg_advisory_unlock(%s)", (self._key,))
