"""Builds the ledger and the read-model views from Settings."""

from __future__ import annotations

from lodestone.infra.checkpoints import (
    CheckpointStore,
    PostgresCheckpointStore,
    SQLiteCheckpointStore,
)
from lodestone.infra.event_rows import EventRows, PostgresEventRows, SQLiteEventRows
from lodestone.infra.positions import PositionStore, PostgresPositionStore, SQLitePositionStore
from lodestone.infra.postgres_local import postgres_env
from lodestone.infra.settings import Settings
from lodestone.ledger import Ledger
from lodestone.ledger.application import sqlite_env
from lodestone.projections.genealogy import GenealogyView
from lodestone.projections.genealogy.postgres import PostgresGenealogyView
from lodestone.projections.genealogy.sqlite import SQLiteGenealogyView


def build_ledger(settings: Settings) -> Ledger:
    if settings.postgres_url is not None:
        url = settings.postgres_url.get_secret_value()
        return Ledger(postgres_env(url, cache_size=settings.aggregate_cache_size))
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return Ledger(sqlite_env(settings.event_store_path, settings.aggregate_cache_size))


def build_genealogy_view(settings: Settings) -> GenealogyView:
    if settings.postgres_url is not None:
        return PostgresGenealogyView(settings.postgres_url.get_secret_value())
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return SQLiteGenealogyView(settings.read_model_path)


def build_position_store(settings: Settings) -> PositionStore:
    """Where the relay records how far it has published: beside the event store."""
    if settings.postgres_url is not None:
        return PostgresPositionStore(settings.postgres_url.get_secret_value())
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return SQLitePositionStore(settings.event_store_path)


def build_checkpoint_store(settings: Settings) -> CheckpointStore:
    """Checkpoints live beside the events they cover."""
    if settings.postgres_url is not None:
        return PostgresCheckpointStore(settings.postgres_url.get_secret_value())
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return SQLiteCheckpointStore(settings.event_store_path)


def build_event_rows(settings: Settings) -> EventRows:
    """Stored rows with their positions, for history and audit bundles."""
    if settings.postgres_url is not None:
        return PostgresEventRows(settings.postgres_url.get_secret_value())
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return SQLiteEventRows(settings.event_store_path)
