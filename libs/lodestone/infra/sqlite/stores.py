"""The project's stores in the event store's SQLite file (interfaces and their meaning:
``lodestone.ledger.stores``)."""

from __future__ import annotations

import fcntl
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from uuid import UUID

from lodestone.infra.sql import CheckpointQueries, PositionQueries
from lodestone.infra.sqlite.database import Database, SQLiteStore
from lodestone.ledger.stores import Checkpoint, CheckpointConflict, Row, ScanRow

_CHUNK = 500  # ids per IN (...): well under SQLite's limit on bound parameters


class SQLiteEventRows(SQLiteStore):
    """Read only, from the library's ``stored_events`` (rowid = position)."""

    def for_aggregates(self, ids: Iterable[UUID]) -> list[Row]:
        """Every event of these aggregates, in position order."""
        keys = [i.hex for i in ids]  # the library stores ids as 32 hex digits
        rows: list[Row] = []
        with self._connection.use() as db:
            for n in range(0, len(keys), _CHUNK):
                chunk = keys[n : n + _CHUNK]
                marks = ",".join("?" * len(chunk))
                for position, id, version, topic, state in db.execute(
                    "SELECT rowid, originator_id, originator_version, topic, state "
                    f"FROM stored_events WHERE originator_id IN ({marks})",
                    chunk,
                ):
                    rows.append(Row(position, UUID(id), version, topic, bytes(state)))
        rows.sort(key=lambda r: r.position)
        return rows

    def max_position(self) -> int:
        with self._connection.use() as db:
            row = db.execute("SELECT MAX(rowid) FROM stored_events").fetchone()
        return int(row[0] or 0)

    def scan(self, start: int, limit: int, stop: int) -> list[ScanRow]:
        """Rows with positions in [start, stop], at most ``limit``, in position order."""
        with self._connection.use() as db:
            rows = db.execute(
                "SELECT rowid, originator_id, originator_version, topic, state FROM stored_events "
                "WHERE rowid >= ? AND rowid <= ? ORDER BY rowid LIMIT ?",
                (start, stop, limit),
            ).fetchall()
        return [
            (p, f"{i[:8]}-{i[8:12]}-{i[12:16]}-{i[16:20]}-{i[20:]}", v, t, s)
            for p, i, v, t, s in rows
        ]


class SQLitePositionStore(PositionQueries, SQLiteStore):
    def __init__(self, database: Database) -> None:
        super().__init__(database)
        with self._connection.use() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS lodestone_positions "
                "(name TEXT PRIMARY KEY, position INTEGER NOT NULL)"
            )


class SQLiteCheckpointStore(CheckpointQueries, SQLiteStore):
    _no_limit = -1  # SQLite's "no limit"

    def __init__(self, database: Database) -> None:
        super().__init__(database)
        with self._connection.use() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS lodestone_checkpoints (seq INTEGER PRIMARY KEY, "
                "first_position INTEGER NOT NULL, last_position INTEGER NOT NULL, "
                "count INTEGER NOT NULL, root TEXT NOT NULL, prev TEXT, "
                "created_at TEXT NOT NULL, hash TEXT NOT NULL)"
            )

    def add(self, checkpoints: Sequence[Checkpoint]) -> None:
        with self._connection.use() as db:
            try:
                db.execute("BEGIN IMMEDIATE")
                db.executemany(self._insert_sql(), self._values(checkpoints))
                db.execute("COMMIT")
            except sqlite3.IntegrityError:
                db.execute("ROLLBACK")
                raise CheckpointConflict from None
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise


class SQLiteWriterLock:
    """An exclusive ``flock`` on a file beside the event store (``<store>.writer-lock``):
    held from a group's first read to its commit (``WriterLock``), so gateway processes
    (or two writers of one process) sharing the file take turns. The kernel releases it
    when its holder dies."""

    def __init__(self, path: Path | str) -> None:
        self._file = open(f"{path}.writer-lock", "a+b")  # noqa: SIM115 (held until close)

    def acquire(self) -> None:
        fcntl.flock(self._file.fileno(), fcntl.LOCK_EX)

    def release(self) -> None:
        fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)

    def close(self) -> None:
        self._file.close()
