"""Where checkpoints (Merkle roots over ranges of store positions) are kept.

In the event store's own database, table ``lodestone_checkpoints``, one row per
checkpoint, ``seq`` its key: two checkpointers racing for the same ``seq`` cannot both
win. The rows carry no authority of their own: ``lodestone verify`` recomputes each
root from the events, and the copies published on Kafka let a third party notice if
these rows were rewritten or dropped together with the events they cover.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

FIELDS = ("seq", "first_position", "last_position", "count", "root", "prev", "created_at", "hash")

Checkpoint = dict[str, Any]


class CheckpointConflict(Exception):
    """Another checkpointer stored a checkpoint with the same seq first."""


class CheckpointStore(Protocol):
    def latest(self) -> Checkpoint | None: ...
    def add(self, checkpoints: Sequence[Checkpoint]) -> None: ...
    def list(self, after_seq: int = 0, limit: int | None = None) -> list[Checkpoint]: ...
    def covering(self, position: int) -> Checkpoint | None: ...
    def close(self) -> None: ...


_COLUMNS = ", ".join(FIELDS)


class _SQLCheckpointStore:
    """The queries, for both databases: subclasses open the connection, create the
    table, name the placeholder and insert in one transaction."""

    mark = "?"
    _no_limit: Any = None  # what LIMIT takes for "all"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._db: Any = None

    def _rows(self, sql: str, args: tuple[Any, ...]) -> list[Checkpoint]:
        with self._lock:
            rows = self._db.execute(sql.replace("?", self.mark), args).fetchall()
        return [dict(zip(FIELDS, row, strict=True)) for row in rows]

    def _insert_sql(self) -> str:
        marks = ", ".join([self.mark] * len(FIELDS))
        return f"INSERT INTO lodestone_checkpoints ({_COLUMNS}) VALUES ({marks})"

    def latest(self) -> Checkpoint | None:
        rows = self._rows(
            f"SELECT {_COLUMNS} FROM lodestone_checkpoints ORDER BY seq DESC LIMIT 1", ()
        )
        return rows[0] if rows else None

    def list(self, after_seq: int = 0, limit: int | None = None) -> list[Checkpoint]:
        return self._rows(
            f"SELECT {_COLUMNS} FROM lodestone_checkpoints WHERE seq > ? ORDER BY seq LIMIT ?",
            (after_seq, self._no_limit if limit is None else limit),
        )

    def covering(self, position: int) -> Checkpoint | None:
        rows = self._rows(
            f"SELECT {_COLUMNS} FROM lodestone_checkpoints WHERE first_position <= ? "
            "AND last_position >= ? ORDER BY seq LIMIT 1",
            (position, position),
        )
        return rows[0] if rows else None

    def close(self) -> None:
        with self._lock:
            self._db.close()


class SQLiteCheckpointStore(_SQLCheckpointStore):
    _no_limit = -1  # SQLite's "no limit"

    def __init__(self, path: Path | str) -> None:
        super().__init__()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA busy_timeout=30000")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS lodestone_checkpoints (seq INTEGER PRIMARY KEY, "
            "first_position INTEGER NOT NULL, last_position INTEGER NOT NULL, "
            "count INTEGER NOT NULL, root TEXT NOT NULL, prev TEXT, created_at TEXT NOT NULL, "
            "hash TEXT NOT NULL)"
        )

    def add(self, checkpoints: Sequence[Checkpoint]) -> None:
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.executemany(
                    self._insert_sql(), [tuple(c[f] for f in FIELDS) for c in checkpoints]
                )
                self._db.execute("COMMIT")
            except sqlite3.IntegrityError:
                self._db.execute("ROLLBACK")
                raise CheckpointConflict from None
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise


class PostgresCheckpointStore(_SQLCheckpointStore):
    mark = "%s"

    def __init__(self, url: str) -> None:
        import psycopg

        super().__init__()
        self._psycopg = psycopg
        self._db = psycopg.connect(url, autocommit=True)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS lodestone_checkpoints (seq BIGINT PRIMARY KEY, "
            "first_position BIGINT NOT NULL, last_position BIGINT NOT NULL, "
            "count BIGINT NOT NULL, root TEXT NOT NULL, prev TEXT, created_at TEXT NOT NULL, "
            "hash TEXT NOT NULL)"
        )

    def add(self, checkpoints: Sequence[Checkpoint]) -> None:
        with self._lock:
            try:
                with self._db.transaction(), self._db.cursor() as cur:
                    cur.executemany(
                        self._insert_sql(), [tuple(c[f] for f in FIELDS) for c in checkpoints]
                    )
            except self._psycopg.errors.UniqueViolation:
                raise CheckpointConflict from None
