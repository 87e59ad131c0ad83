"""Read models on SQLite (the embedded default): what every SQLite view shares.

Values are stored as text (:func:`~lodestone.projections.tables.to_text`), so masses
stay exact. One connection per view, guarded by a lock: the projector thread writes,
request threads read; WAL lets readers of other processes go on while it writes.
Several projections may share one file: each has its own tables and its own rows in
``tracking``.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from lodestone.projections import tracking
from lodestone.projections.tables import (
    FROM_TEXT,
    SQLITE,
    Buffer,
    Dialect,
    Query,
    R,
    Row,
    Table,
    TableView,
    decoder,
    to_text,
)

W = TypeVar("W")

#: SQLite's default limit on the parameters of one statement is 999.
CHUNK = 900


class SQLiteView(TableView[W]):
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        # WAL + NORMAL: durable at checkpoint; the rows can be rebuilt from the log.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=30000")
        self._sql = {write: write.render(SQLITE) for write in self.layout.writes}
        self._save_position = tracking.SAVE_POSITION.render(SQLITE)
        self._position = tracking.position_query(SQLITE)
        self._decoders = {table: decoder(table, FROM_TEXT) for table in self.layout.tables}
        with self._writing() as session:
            tracking.prepare(session, self.layout)

    @contextmanager
    def _writing(self) -> Iterator[_Session]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield _Session(self._db)
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise

    @contextmanager
    def transaction(self, positions: Mapping[str, int]) -> Iterator[W]:
        # The writer only collects rows; they are written after the projection has done
        # its work, one executemany per statement, so the write lock is not held while
        # Python thinks, and a projection that fails writes nothing at all.
        buffer = Buffer(self.layout.writes)
        yield self.layout.writer(buffer)
        batches = [
            (self._sql[write], [tuple(map(to_text, row)) for row in rows])
            for write, rows in buffer.rows.items()
            if rows
        ]
        name = self.layout.projection
        with self._writing():
            for statement, rows in batches:
                self._db.executemany(statement, rows)
            self._db.executemany(self._save_position, [(name, s, p) for s, p in positions.items()])

    def position(self, source: str) -> int:
        with self._lock:
            row = self._db.execute(self._position, (self.layout.projection, source)).fetchone()
        return int(row[0]) if row else 0

    def reset(self) -> None:
        with self._writing() as session:
            for table in self.layout.tables:
                session.execute(f"DELETE FROM {table.name}")
            session.execute(tracking.forget_positions(SQLITE), (self.layout.projection,))

    def fingerprint(self) -> str:
        digest = hashlib.sha256()
        with self._lock:
            for table in self.layout.tables:
                rows = self._db.execute(
                    f"SELECT {table.select_list()} FROM {table.name} ORDER BY 1, 2"
                )
                for row in rows:
                    digest.update(json.dumps(list(row), default=str).encode())
        return digest.hexdigest()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _query(self, query: Query[R], params: Sequence[Any]) -> list[R]:
        sql = query.render(SQLITE)
        with self._lock:
            rows = self._db.execute(sql, [to_text(p) for p in params]).fetchall()
        decode = self._decoders[query.table]
        return [decode(row) for row in rows]

    def _rows_in(self, table: Table[R], column: str, values: Iterable[Any]) -> list[R]:
        keys = [to_text(v) for v in values]
        decode = self._decoders[table]
        result: list[R] = []
        for start in range(0, len(keys), CHUNK):
            chunk = keys[start : start + CHUNK]
            sql = (
                f"SELECT {table.select_list()} FROM {table.name} "
                f"WHERE {column} IN ({', '.join('?' * len(chunk))})"
            )
            with self._lock:
                rows = self._db.execute(sql, chunk).fetchall()
            result += [decode(row) for row in rows]
        return result


class _Session:
    dialect: Dialect = SQLITE

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._db.execute(sql, params)

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return [tuple(row) for row in self._db.execute(sql, params)]

    def columns(self, table: str) -> list[str]:
        return [row[1] for row in self._db.execute(f"PRAGMA table_info({table})")]
