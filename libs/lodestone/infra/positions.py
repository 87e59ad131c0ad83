"""Durable "how far have I come" markers for loops that are not projections (the relay).

Kept in the event store's own database, so a backup of the store carries them.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Protocol


class PositionStore(Protocol):
    def get(self, name: str) -> int: ...
    def set(self, name: str, position: int) -> None: ...
    def close(self) -> None: ...


class SQLitePositionStore:
    def __init__(self, path: Path | str) -> None:
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA busy_timeout=30000")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS lodestone_positions (name TEXT PRIMARY KEY, position INTEGER NOT NULL)"
        )

    def get(self, name: str) -> int:
        with self._lock:
            row = self._db.execute(
                "SELECT position FROM lodestone_positions WHERE name = ?", (name,)
            ).fetchone()
        return int(row[0]) if row else 0

    def set(self, name: str, position: int) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO lodestone_positions (name, position) VALUES (?, ?) "
                "ON CONFLICT (name) DO UPDATE SET position = excluded.position",
                (name, position),
            )

    def close(self) -> None:
        with self._lock:
            self._db.close()


class PostgresPositionStore:
    """The same markers in the PostgreSQL database of the event store."""

    def __init__(self, url: str) -> None:
        import psycopg

        self._lock = threading.Lock()
        self._db = psycopg.connect(url, autocommit=True)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS lodestone_positions (name TEXT PRIMARY KEY, position BIGINT NOT NULL)"
        )

    def get(self, name: str) -> int:
        with self._lock:
            row = self._db.execute(
                "SELECT position FROM lodestone_positions WHERE name = %s", (name,)
            ).fetchone()
        return int(row[0]) if row else 0

    def set(self, name: str, position: int) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO lodestone_positions (name, position) VALUES (%s, %s) "
                "ON CONFLICT (name) DO UPDATE SET position = excluded.position",
                (name, position),
            )

    def close(self) -> None:
        with self._lock:
            self._db.close()
