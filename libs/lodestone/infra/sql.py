"""What the SQLite and PostgreSQL adapters share; no database driver is imported here."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Generic, Protocol, TypeVar

from lodestone.ledger.stores import FIELDS, Checkpoint


class _Closable(Protocol):
    def close(self) -> None: ...


C = TypeVar("C", bound=_Closable)


class Connection(Generic[C]):
    """One database connection shared by the stores built on it, one statement or one
    transaction at a time: a transaction that one store begins must not take in another
    store's statements, and an sqlite3 connection may cross threads but must not serve
    two at once."""

    def __init__(self, db: C) -> None:
        self._lock = threading.Lock()
        self._db = db

    @contextmanager
    def use(self) -> Iterator[C]:
        with self._lock:
            yield self._db

    def close(self) -> None:
        with self._lock:
            self._db.close()


class OnConnection(Generic[C]):
    """A store on a connection: its own, or one shared with the other stores of the same
    database (then whoever opened it closes it: ``lodestone.bootstrap``)."""

    def __init__(self, connection: Connection[C], *, owned: bool) -> None:
        self._connection = connection
        self._owned = owned

    def close(self) -> None:
        if self._owned:
            self._connection.close()


_COLUMNS = ", ".join(FIELDS)


class CheckpointQueries:
    """The checkpoint queries, for both databases: mixed into a store on a connection,
    which creates the table, names the placeholder and inserts in one transaction."""

    _connection: Connection[Any]
    mark = "?"
    _no_limit: Any = None  # what LIMIT takes for "all"

    def _rows(self, sql: str, args: tuple[Any, ...]) -> list[Checkpoint]:
        with self._connection.use() as db:
            rows = db.execute(sql.replace("?", self.mark), args).fetchall()
        return [dict(zip(FIELDS, row, strict=True)) for row in rows]

    def _insert_sql(self) -> str:
        marks = ", ".join([self.mark] * len(FIELDS))
        return f"INSERT INTO lodestone_checkpoints ({_COLUMNS}) VALUES ({marks})"

    @staticmethod
    def _values(checkpoints: Sequence[Checkpoint]) -> list[tuple[Any, ...]]:
        return [tuple(c[f] for f in FIELDS) for c in checkpoints]

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


class PositionQueries:
    """The position queries, for both databases: mixed into a store on a connection,
    which creates the ``lodestone_positions`` table and names the placeholder."""

    _connection: Connection[Any]
    mark = "?"

    def get(self, name: str) -> int:
        with self._connection.use() as db:
            row = db.execute(
                f"SELECT position FROM lodestone_positions WHERE name = {self.mark}", (name,)
            ).fetchone()
        return int(row[0]) if row else 0

    def set(self, name: str, position: int) -> None:
        marks = f"{self.mark}, {self.mark}"
        with self._connection.use() as db:
            db.execute(
                f"INSERT INTO lodestone_positions (name, position) VALUES ({marks}) "
                "ON CONFLICT (name) DO UPDATE SET position = excluded.position",
                (name, position),
            )
