"""Builds the ledger and the read-model views from Settings."""

from __future__ import annotations

from lodestone.infra.settings import Settings
from lodestone.ledger import Ledger
from lodestone.ledger.application import sqlite_env
from lodestone.projections.genealogy import GenealogyView
from lodestone.projections.sqlite_genealogy import SQLiteGenealogyView


def build_ledger(settings: Settings) -> Ledger:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return Ledger(sqlite_env(settings.event_store_path, settings.aggregate_cache_size))


def build_genealogy_view(settings: Settings) -> GenealogyView:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return SQLiteGenealogyView(settings.read_model_path)
