"""Refused attempts in the SQLite read-model file, on a connection of their own."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path

from lodestone.projections.refusals.log import COUNTS, TABLE, RefusalLog, RefusedAttempt, grouped
from lodestone.projections.tables import FROM_TEXT, SQLITE, decoder, insert_new, to_text

INSERT = insert_new(TABLE).render(SQLITE)


class SQLiteRefusalLog(RefusalLog):
    def __init__(self, path: Path | str) -> None:
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA busy_timeout=30000")
        self._decode = decoder(TABLE, FROM_TEXT)
        with self._lock:
            self._db.execute(TABLE.create(SQLITE))
            for statement in TABLE.create_indexes():
                self._db.execute(statement)

    def record(self, attempt: RefusedAttempt) -> None:
        values = [to_text(getattr(attempt, name)) for name in TABLE.column_names]
        with self._lock:
            self._db.execute(INSERT, values)

    def counts(self, licences: Iterable[str] | None = None) -> dict[str, dict[str, int]]:
        with self._lock:
            rows = self._db.execute(COUNTS).fetchall()
        return grouped(rows, licences)

    def attempts(self) -> list[RefusedAttempt]:
        query = f"SELECT {TABLE.select_list()} FROM {TABLE.name} ORDER BY recorded_at, id"
        with self._lock:
            rows = self._db.execute(query).fetchall()
        return [self._decode(row) for row in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()
