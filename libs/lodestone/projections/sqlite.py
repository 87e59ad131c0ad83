"""Read models on SQLite (the embedded default): what every SQLite view shares.

Values are stored as text (:func:`~lodestone.projections.tables.to_text`), so masses
stay exact. One connection per view, guarded by a lock: the projector thread writes,
request threads read; WAL lets readers of other processes go on while it writes.
Several projections may share one file: each has its own tables and its own rows in
``tracking``.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from lodestone.projections import changes, tracking
from lodestone.projections.base import ModelReplaced
from lodestone.projections.changes import Change, Encoder, Page, as_text
from lodestone.projections.tables import (
    FROM_TEXT,
    SQLITE,
    Buffer,
    Dialect,
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

#: SQLite's default limit on the parameters of one statement is 999.
CHUNK = 900
#: Rows copied per round when a rebuilt copy is switched in.
COPY_CHUNK = 10_000


class SQLiteView(TableView[W]):
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        self._db = _connect(self.path)
        self._sql = {write: write.render(SQLITE) for write in self.layout.writes}
        self._returning = {w: changes.returning(w, SQLITE) for w in self.layout.writes}
        self._encoders = {w: Encoder(w.table) for w in self.layout.writes}
        self._save_position = tracking.SAVE_POSITION.render(SQLITE)
        self._position = tracking.position_query(SQLITE)
        self._log = changes.statements(SQLITE)
        self._decoders = {table: decoder(table, FROM_TEXT) for table in self.layout.tables}
        self._open = threading.local()  # the transaction being written on this thread
        self._readers = threading.local()  # each thread's connection for change reads
        self._reader_list: list[sqlite3.Connection] = []
        with self._writing() as session:
            dropped = tracking.prepare(session, self.layout)
            changes.prepare(session, self.layout.projection)
            if dropped:
                changes.reset(session, self.layout.projection)
            self._generation = changes.state(session, self.layout.projection).generation

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
        self._open.buffer = buffer
        try:
            yield self.layout.writer(buffer)
        finally:
            self._open.buffer = None
        batches = [
            (write, [tuple(map(as_text, row)) for row in rows])
            for write, rows in buffer.rows.items()
            if rows
        ]
        name = self.layout.projection
        retention = self.change_retention
        default = next(iter(positions.items())) if len(positions) == 1 else ("", 0)
        with self._writing() as session:
            current = self._guard(session)
            if retention > 0:
                # Each row alone, answering with the row as stored if it changed: one
                # change per row written, none for a repeat that changed nothing.
                entries = []
                execute = self._db.execute
                for write, rows in batches:
                    statement = self._returning[write]
                    encoder = self._encoders[write]
                    origin = buffer.origins(write, default)
                    for i, row in enumerate(rows):
                        for stored in execute(statement, row).fetchall():
                            entries.append(
                                (
                                    encoder.table,
                                    encoder.key(stored),
                                    encoder.row_json(stored),
                                    *origin(i),
                                )
                            )
                changes.append(session, name, entries, current, retention)
            else:
                for write, rows in batches:
                    self._db.executemany(self._sql[write], rows)
            self._derive(session, buffer)
            self._db.executemany(self._save_position, [(name, s, p) for s, p in positions.items()])

    def at(self, source: str, position: int) -> None:
        buffer = getattr(self._open, "buffer", None)
        if buffer is not None:
            buffer.mark(source, position)

    def _guard(self, session: _Session) -> changes.State:
        try:
            return changes.guard(session, self.layout, self._generation)
        except ModelReplaced as replaced:
            self._generation = replaced.generation  # positions are read afresh from here
            raise

    def position(self, source: str) -> int:
        with self._lock:
            row = self._db.execute(self._position, (self.layout.projection, source)).fetchone()
        return int(row[0]) if row else 0

    def reset(self) -> None:
        with self._writing() as session:
            for table in self.layout.tables:
                session.execute(f"DELETE FROM {table.name}")
            session.execute(tracking.forget_positions(SQLITE), (self.layout.projection,))
            self._generation = changes.reset(session, self.layout.projection).generation

    def fingerprint(self) -> str:
        with self._lock:
            return _fingerprint(self._db, self.layout.tables)

    def close(self) -> None:
        with self._lock:
            self._db.close()
        for reader in self._reader_list:
            reader.close()

    # --- the change log ----------------------------------------------------------------

    def changes(self, after: int, limit: int) -> Page:
        db = getattr(self._readers, "db", None)
        if db is None:
            db = self._readers.db = _connect(self.path, write=False)
            self._reader_list.append(db)
        name = self.layout.projection
        db.execute("BEGIN")  # one snapshot for the bounds and the page
        try:
            state = db.execute(self._log["state"], (name,)).fetchone() or (0, 0, 0, 0)
            rows = db.execute(self._log["page"], (name, after, limit)).fetchall()
        finally:
            db.execute("COMMIT")
        return Page([Change(*row) for row in rows], state[1], state[0], state[3])

    def published(self, seq: int) -> None:
        name = self.layout.projection
        with self._writing() as session:
            session.execute(self._log["published"], (seq, name, seq))

    def continue_after(self, seq: int) -> None:
        with self._writing() as session:
            changes.continue_after(session, self.layout.projection, seq)

    @contextmanager
    def publishing(self) -> Iterator[bool]:
        # A lock on a file beside the database: the kernel lets go when the process
        # dies, so a publisher killed mid-batch never keeps its successor waiting.
        lock = Path(f"{self.path}.{self.layout.projection}.publisher")
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def switch_into(self, target: Any) -> Switched:
        """Rows are copied into the file at ``target`` inside one write transaction
        there: its readers (WAL) go on reading the old rows until the commit."""
        name = self.layout.projection
        live = _connect(Path(target))
        try:
            live.execute("BEGIN IMMEDIATE")
            try:
                session = _Session(live)
                previous = _stored_version(live, name)
                before = None
                if previous == self.layout.version:
                    before = _fingerprint(live, self.layout.tables)
                positions_before = _positions(live, name)
                tracking.prepare(session, self.layout)
                changes.prepare(session, name)
                with self._lock:
                    positions = _positions(self._db, name)
                    for table in self.layout.tables:
                        self._copy(live, table)
                session.execute(tracking.forget_positions(SQLITE), (name,))
                live.executemany(self._save_position, [(name, s, p) for s, p in positions.items()])
                changes.reset(session, name)
                live.execute("COMMIT")
            except BaseException:
                if live.in_transaction:
                    live.execute("ROLLBACK")
                raise
        finally:
            live.close()
        return Switched(previous, before, positions_before, positions)

    def discard(self) -> None:
        self.close()
        for suffix in ("", "-wal", "-shm", f".{self.layout.projection}.publisher"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)

    def _copy(self, live: sqlite3.Connection, table: Table[Any]) -> None:
        # Dropped and made again rather than emptied: faster, and indexes are built
        # once over all rows.
        live.execute(f"DROP TABLE IF EXISTS {table.name}")
        live.execute(table.create(SQLITE))
        marks = ", ".join("?" * len(table.columns))
        insert = f"INSERT INTO {table.name} ({table.select_list()}) VALUES ({marks})"
        rows = self._db.execute(f"SELECT {table.select_list()} FROM {table.name}")
        while chunk := rows.fetchmany(COPY_CHUNK):
            live.executemany(insert, chunk)
        for statement in table.create_indexes():
            live.execute(statement)

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


def stored_version(path: Path | str, projection: str) -> int | None:
    """The version of ``projection``'s rows in that file (None: none there), read
    without preparing anything."""
    if not Path(path).exists():
        return None
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return _stored_version(db, projection)
    finally:
        db.close()


def _connect(path: Path, *, write: bool = True) -> sqlite3.Connection:
    db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
    if write:
        db.execute("PRAGMA journal_mode=WAL")
        # WAL + NORMAL: durable at checkpoint; the rows can be rebuilt from the log.
        db.execute("PRAGMA synchronous=NORMAL")
    db.execute("PRAGMA busy_timeout=30000")
    return db


def _fingerprint(db: sqlite3.Connection, tables: Iterable[Table[Any]]) -> str:
    digest = hashlib.sha256()
    for table in tables:
        rows = db.execute(f"SELECT {table.select_list()} FROM {table.name} ORDER BY 1, 2")
        for row in rows:
            digest.update(json.dumps(list(row), default=str).encode())
    return digest.hexdigest()


def _stored_version(db: sqlite3.Connection, projection: str) -> int | None:
    if not _Session(db).columns(tracking.VERSIONS.name):
        return None
    found = db.execute(
        f"SELECT version FROM {tracking.VERSIONS.name} WHERE projection = ?", (projection,)
    ).fetchone()
    return int(found[0]) if found else None


def _positions(db: sqlite3.Connection, projection: str) -> dict[str, int]:
    if "projection" not in _Session(db).columns(tracking.TRACKING.name):
        return {}
    rows = db.execute(
        f"SELECT source, position FROM {tracking.TRACKING.name} WHERE projection = ?",
        (projection,),
    )
    return {source: int(position) for source, position in rows}


class _Session:
    dialect: Dialect = SQLITE

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._db.execute(sql, params)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._db.executemany(sql, rows)

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return [tuple(row) for row in self._db.execute(sql, params)]

    def columns(self, table: str) -> list[str]:
        return [row[1] for row in self._db.execute(f"PRAGMA table_info({table})")]
