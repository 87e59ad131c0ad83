"""Reaching an SQLite event store: the library's environment, and one connection for the
project's stores beside it."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from lodestone.infra.sql import Connection, OnConnection


def sqlite_env(path: os.PathLike[str] | str, cache_size: int = 10_000) -> dict[str, str]:
    """Every key the application relies on, for the embedded SQLite store."""
    return {
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "SQLITE_DBNAME": str(path),
        "SQLITE_LOCK_TIMEOUT": "30",
        "AGGREGATE_CACHE_MAXSIZE": str(cache_size),
        "AGGREGATE_CACHE_FASTFORWARD": "y",
        "DEEPCOPY_FROM_AGGREGATE_CACHE": "y",
    }


class SQLiteConnection(Connection[sqlite3.Connection]):
    def __init__(self, path: Path | str) -> None:
        # Autocommit: a store that needs a transaction begins it itself (BEGIN IMMEDIATE).
        db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        # The library's writers hold the file's lock while they save; wait for them.
        db.execute("PRAGMA busy_timeout=30000")
        super().__init__(db)


#: Where a store works: a connection shared with the other stores of the same file, or
#: the path of the file, to open a connection of its own.
Database = SQLiteConnection | Path | str


class SQLiteStore(OnConnection[sqlite3.Connection]):
    def __init__(self, database: Database) -> None:
        if isinstance(database, SQLiteConnection):
            super().__init__(database, owned=False)
        else:
            super().__init__(SQLiteConnection(database), owned=True)
