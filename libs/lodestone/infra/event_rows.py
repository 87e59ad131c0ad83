"""Stored rows with their store positions, for auditors.

The library's recorder reads an aggregate's events without their notification ids
(positions); history and audit bundles need them, so these read the same tables
directly: ``stored_events`` (SQLite, rowid = position) and ``lodestone_events``
(PostgreSQL, notification_id = position). Read only.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from uuid import UUID


@dataclass(frozen=True)
class Row:
    position: int
    aggregate_id: UUID
    version: int
    topic: str
    state: bytes


#: (position, aggregate id as 36-character text, version, topic, state): what a full
#: scan yields, without building UUID objects.
ScanRow = tuple[int, str, int, str, bytes]


class EventRows(Protocol):
    def for_aggregates(self, ids: Iterable[UUID]) -> list[Row]: ...
    def max_position(self) -> int: ...
    def scan(self, start: int, limit: int, stop: int) -> list[ScanRow]: ...
    def close(self) -> None: ...


_CHUNK = 500


class SQLiteEventRows:
    def __init__(self, path: Path | str) -> None:
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False)
        self._db.execute("PRAGMA busy_timeout=30000")

    def for_aggregates(self, ids: Iterable[UUID]) -> list[Row]:
        """Every event of these aggregates, in position order."""
        keys = [i.hex for i in ids]  # the library stores ids as 32 hex digits
        rows: list[Row] = []
        with self._lock:
            for n in range(0, len(keys), _CHUNK):
                chunk = keys[n : n + _CHUNK]
                marks = ",".join("?" * len(chunk))
                for position, id, version, topic, state in self._db.execute(
                    "SELECT rowid, originator_id, originator_version, topic, state "
                    f"FROM stored_events WHERE originator_id IN ({marks})",
                    chunk,
                ):
                    rows.append(Row(position, UUID(id), version, topic, bytes(state)))
        rows.sort(key=lambda r: r.position)
        return rows

    def max_position(self) -> int:
        with self._lock:
            row = self._db.execute("SELECT MAX(rowid) FROM stored_events").fetchone()
        return int(row[0] or 0)

    def scan(self, start: int, limit: int, stop: int) -> list[ScanRow]:
        """Rows with positions in [start, stop], at most ``limit``, in position order."""
        with self._lock:
            rows = self._db.execute(
                "SELECT rowid, originator_id, originator_version, topic, state FROM stored_events "
                "WHERE rowid >= ? AND rowid <= ? ORDER BY rowid LIMIT ?",
                (start, stop, limit),
            ).fetchall()
        return [
            (p, f"{i[:8]}-{i[8:12]}-{i[12:16]}-{i[16:20]}-{i[20:]}", v, t, s)
            for p, i, v, t, s in rows
        ]

    def close(self) -> None:
        with self._lock:
            self._db.close()


class PostgresEventRows:
    def __init__(self, url: str, table: str = "lodestone_events") -> None:
        import psycopg

        self._lock = threading.Lock()
        self._db = psycopg.connect(url, autocommit=True)
        self._table = table

    def for_aggregates(self, ids: Iterable[UUID]) -> list[Row]:
        keys: Sequence[UUID] = list(ids)
        with self._lock:
            result = self._db.execute(
                "SELECT notification_id, originator_id, originator_version, topic, state "
                f"FROM {self._table} WHERE originator_id = ANY(%s) ORDER BY notification_id",
                (keys,),
            ).fetchall()
        return [Row(p, i, v, t, bytes(s)) for p, i, v, t, s in result]

    def max_position(self) -> int:
        with self._lock:
            row = self._db.execute(f"SELECT MAX(notification_id) FROM {self._table}").fetchone()
        return int(row[0] or 0) if row else 0

    def scan(self, start: int, limit: int, stop: int) -> list[ScanRow]:
        with self._lock:
            rows = self._db.execute(
                "SELECT notification_id, originator_id::text, originator_version, topic, state "
                f"FROM {self._table} WHERE notification_id >= %s AND notification_id <= %s "
                "ORDER BY notification_id LIMIT %s",
                (start, stop, limit),
            ).fetchall()
        return [(p, i, v, t, bytes(s)) for p, i, v, t, s in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()
