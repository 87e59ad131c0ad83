"""The project's own PostgreSQL stores (positions, checkpoints, stored rows: one shared
connection, ``PostgresConnection``) outlive a server restart. Found by the fault
injection run (bench/faults.py): after PostgreSQL was SIGKILLed and restarted, the relay
answered "the connection is closed" forever, so events accepted by the gateway never
reached Kafka or the read models until someone restarted the relay by hand."""

from __future__ import annotations

from collections.abc import Callable

import psycopg
import pytest

from lodestone.devtools.postgres_local import LocalPostgres
from lodestone.infra.postgres.database import PostgresConnection
from lodestone.infra.postgres.stores import PostgresPositionStore

pytestmark = pytest.mark.slow  # a private server, killed and restarted


def _get_within(store: PostgresPositionStore, name: str, attempts: int) -> int:
    """What a loop such as the relay's does: a failed statement is tried again."""
    for _ in range(attempts - 1):
        try:
            return store.get(name)
        except psycopg.OperationalError:
            continue
    return store.get(name)


def test_postgres_positions_are_read_again_once_a_killed_server_is_back(
    local_postgres: Callable[[], LocalPostgres],
) -> None:
    server = local_postgres()
    connection = PostgresConnection(server.url)
    store = PostgresPositionStore(connection)
    try:
        store.set("relay", 42)

        server.kill()
        server.start()

        # The statement that finds the old connection dead may fail; the next one runs.
        assert _get_within(store, "relay", attempts=2) == 42
    finally:
        connection.close()


def test_postgres_connection_closed_on_purpose_stays_closed(
    local_postgres: Callable[[], LocalPostgres],
) -> None:
    server = local_postgres()
    connection = PostgresConnection(server.url)
    store = PostgresPositionStore(connection)
    connection.close()

    with pytest.raises(psycopg.OperationalError):
        store.get("relay")
