"""Builds a process's ledger and stores from its Settings: PostgreSQL when a URL is
configured, else SQLite files in the data directory."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

from lodestone.bootstrap.settings import Settings
from lodestone.domain.values import ExportControls
from lodestone.infra.postgres.database import PostgresConnection, postgres_env
from lodestone.infra.postgres.stores import (
    PostgresCheckpointStore,
    PostgresEventRows,
    PostgresPositionStore,
)
from lodestone.infra.sql import Connection
from lodestone.infra.sqlite.database import SQLiteConnection, sqlite_env
from lodestone.infra.sqlite.stores import (
    SQLiteCheckpointStore,
    SQLiteEventRows,
    SQLitePositionStore,
)
from lodestone.ledger import Ledger
from lodestone.ledger.stores import CheckpointStore, EventRows, PositionStore
from lodestone.projections.base import View
from lodestone.projections.genealogy import GenealogyView
from lodestone.projections.refusals import RefusalLog
from lodestone.projections.registry import REGISTRY, Registered
from lodestone.projections.tables import TableView


class LedgerTables:
    """The stores a long-running process keeps beside the event store (stored rows with
    their positions, loop positions, checkpoints), sharing one connection to its
    database instead of one each. Close this, not the stores."""

    def __init__(
        self,
        connection: Connection[Any],
        rows: EventRows,
        positions: PositionStore,
        checkpoints: CheckpointStore,
    ) -> None:
        self._connection = connection
        self.rows = rows
        self.positions = positions
        self.checkpoints = checkpoints

    def close(self) -> None:
        self._connection.close()


def build_ledger(settings: Settings) -> Ledger:
    controls = ExportControls(threshold=settings.export_control_threshold)
    if settings.postgres_url is not None:
        url = settings.postgres_url.get_secret_value()
        return Ledger(
            postgres_env(url, cache_size=settings.aggregate_cache_size), controls=controls
        )
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return Ledger(
        sqlite_env(settings.event_store_path, settings.aggregate_cache_size), controls=controls
    )


def open_view(settings: Settings, entry: Registered) -> View[Any]:
    """A registered projection's view in the read-model database the settings name,
    keeping the newest ``change_retention`` changes of its change log."""
    url = settings.postgres_url.get_secret_value() if settings.postgres_url is not None else None
    if url is None:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    view = entry.open(postgres_url=url, sqlite_path=settings.read_model_path)
    if isinstance(view, TableView):
        view.change_retention = settings.change_retention
    return view


def stored_version(settings: Settings, entry: Registered) -> int | None:
    """The version of the registered projection's rows in the read-model database (None:
    none yet), read without opening its view (which would empty rows of another
    version)."""
    if settings.postgres_url is not None:
        from lodestone.projections import postgres

        return postgres.stored_version(
            settings.postgres_url.get_secret_value(), entry.name, entry.name
        )
    from lodestone.projections import sqlite

    return sqlite.stored_version(settings.read_model_path, entry.name)


def open_shadow(
    settings: Settings, entry: Registered, purpose: str = "rebuild"
) -> tuple[TableView[Any], Path | str]:
    """A copy of a registered projection's view to rebuild beside the live one (a
    SQLite file of its own in the data directory, or a schema of its own in the same
    PostgreSQL database), and where to switch it in (the live file, the live schema).
    ``purpose`` names the copy, so that a check and a rebuild never share one."""
    url = settings.postgres_url.get_secret_value() if settings.postgres_url is not None else None
    target: Path | str
    if url is None:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        target = settings.read_model_path
    else:
        target = entry.name
    shadow = entry.open(
        postgres_url=url,
        sqlite_path=settings.data_dir / f"{purpose}-{entry.name}.sqlite",
        schema=f"{entry.name}_{purpose}",
    )
    if not isinstance(shadow, TableView):
        shadow.close()
        raise TypeError(f"{entry.name}: only a table view can be rebuilt beside the live one")
    return shadow, target


def build_genealogy_view(settings: Settings) -> GenealogyView:
    return cast(GenealogyView, open_view(settings, REGISTRY["genealogy"]))


def build_ledger_tables(settings: Settings) -> LedgerTables:
    """Rows, positions and checkpoints on one connection to the event store's database
    (the gateway, the relay service)."""
    if settings.postgres_url is not None:
        postgres = PostgresConnection(settings.postgres_url.get_secret_value())
        return LedgerTables(
            postgres,
            PostgresEventRows(postgres),
            PostgresPositionStore(postgres),
            PostgresCheckpointStore(postgres),
        )
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    sqlite = SQLiteConnection(settings.event_store_path)
    return LedgerTables(
        sqlite, SQLiteEventRows(sqlite), SQLitePositionStore(sqlite), SQLiteCheckpointStore(sqlite)
    )


def build_checkpoint_store(settings: Settings) -> CheckpointStore:
    """Checkpoints alone, on a connection of their own (one-off commands)."""
    if settings.postgres_url is not None:
        return PostgresCheckpointStore(settings.postgres_url.get_secret_value())
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return SQLiteCheckpointStore(settings.event_store_path)


def build_event_rows(settings: Settings) -> EventRows:
    """Stored rows with their positions alone, on a connection of their own (one-off
    commands: history, bundles, verify)."""
    if settings.postgres_url is not None:
        return PostgresEventRows(settings.postgres_url.get_secret_value())
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return SQLiteEventRows(settings.event_store_path)


def build_refusal_log(settings: Settings) -> RefusalLog:
    """Refused attempts, beside the read models (their database, a table of their own)."""
    if settings.postgres_url is not None:
        from lodestone.projections.refusals.postgres import PostgresRefusalLog

        return PostgresRefusalLog(settings.postgres_url.get_secret_value())
    from lodestone.projections.refusals.sqlite import SQLiteRefusalLog

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return SQLiteRefusalLog(settings.read_model_path)
