"""Reaching a PostgreSQL event store: the library's environment, and one connection for
the project's stores beside it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

from lodestone.infra.sql import Connection, OnConnection


def postgres_env(
    url: str,
    *,
    schema: str = "",
    pool_size: int = 5,
    max_overflow: int = 10,
    connect_timeout: int = 30,
    lock_timeout: int = 10,
    idle_in_transaction_timeout: int = 5,
    pre_ping: bool = False,
    create_table: bool = True,
    cache_size: int = 10_000,
) -> dict[str, str]:
    """Every key the application relies on, for an event store in the PostgreSQL
    database at ``url`` (``postgresql://user[:password]@host[:port]/dbname``).

    eventsourcing takes only dbname, host, port, user and password: other URL parameters
    (sslmode, options...) are not passed on; set them as libpq PG* variables instead.
    ``schema`` must already exist (the library does not create it).
    ``connect_timeout`` is how long a thread waits for a pooled connection (seconds);
    ``lock_timeout`` bounds the wait (seconds) for the events table lock that
    serialises all writers (0 waits forever; on timeout the library retries the insert
    up to 10 times, so keep it above the longest save, e.g. a 10,000-event bulk);
    ``idle_in_transaction_timeout`` ends a session that holds a transaction open and
    idle (seconds; the library's default is 5), which frees a lock a stuck client holds;
    ``pre_ping`` makes the pool check each connection before use. Leave it off: after
    a server restart psycopg_pool backs off 1, 2, 4, 8... seconds per dead connection
    it finds (~30 s for a pool of 5), while without it the library's own retry (10
    attempts, 0.2 s apart) discards the dead connections within about a second.
    """
    parts = conninfo_to_dict(url)
    missing = [k for k in ("dbname", "user") if not parts.get(k)]
    if missing:
        raise ValueError(f"PostgreSQL URL lacks {' and '.join(missing)}: {_redact(url)}")
    env = {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": str(parts["dbname"]),
        "POSTGRES_HOST": str(parts.get("host") or "localhost"),
        "POSTGRES_PORT": str(parts.get("port") or "5432"),
        "POSTGRES_USER": str(parts["user"]),
        # Required by the library even when the server trusts us: "" means none.
        "POSTGRES_PASSWORD": str(parts.get("password") or ""),
        "POSTGRES_CONNECT_TIMEOUT": str(connect_timeout),
        "POSTGRES_POOL_SIZE": str(pool_size),
        "POSTGRES_MAX_OVERFLOW": str(max_overflow),
        "POSTGRES_LOCK_TIMEOUT": str(lock_timeout),
        "POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT": str(idle_in_transaction_timeout),
        "POSTGRES_PRE_PING": "y" if pre_ping else "n",
        "POSTGRES_SCHEMA": schema,
        "CREATE_TABLE": "y" if create_table else "n",
        "AGGREGATE_CACHE_MAXSIZE": str(cache_size),
        "AGGREGATE_CACHE_FASTFORWARD": "y",
        "DEEPCOPY_FROM_AGGREGATE_CACHE": "y",
    }
    return env


# --- module helpers ----------------------------------------------------------------------


_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]{0,62}")


class PostgresConnection(Connection[psycopg.Connection[Any]]):
    """One connection, opened again when the server dropped it (a restart, a crash, a
    terminated session): the statement that found it dead fails, as it must (its caller
    retries: the relay, the checkpoint loop), and the next one runs on a new connection.
    Without this a long-running process kept its dead connection for ever."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._closed = False
        super().__init__(self._connect())

    def _connect(self) -> psycopg.Connection[Any]:
        # Autocommit: a store that needs a transaction begins it itself.
        return psycopg.connect(self._url, autocommit=True)

    @contextmanager
    def use(self) -> Iterator[psycopg.Connection[Any]]:
        with self._lock:
            if (self._db.broken or self._db.closed) and not self._closed:
                # While the server is still down this raises OperationalError, which
                # the caller treats like the failed statement it replaces.
                self._db = self._connect()
            yield self._db

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._db.close()


#: Where a store works: a connection shared with the other stores of the same database,
#: or the database's URL, to open a connection of its own.
Database = PostgresConnection | str


class PostgresStore(OnConnection[psycopg.Connection[Any]]):
    def __init__(self, database: Database) -> None:
        if isinstance(database, PostgresConnection):
            super().__init__(database, owned=False)
        else:
            super().__init__(PostgresConnection(database), owned=True)


def _redact(url: str) -> str:
    return re.sub(r"://([^:@/]+):[^@/]*@", r"://\1:***@", url)
