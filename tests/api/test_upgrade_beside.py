"""A gateway of a new release finds the genealogy's rows of an older version: it builds
its own version beside them from the event store and switches it in before serving, so
a reader (here another connection polling the model) never sees it empty."""

from __future__ import annotations

import sqlite3
import threading
from contextlib import closing
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient

from lodestone.bootstrap.settings import Settings
from lodestone.gateway import create_app
from lodestone.projections import genealogy
from tests.api.conftest import _settings, beneficiation, register_world


def _execute(settings: Settings, statement: str) -> int:
    """Runs one statement on the genealogy's read-model database; the first value."""
    if settings.postgres_url is None:
        with closing(sqlite3.connect(settings.read_model_path)) as db, db:
            row = db.execute(statement).fetchone()
    else:
        with psycopg.connect(settings.postgres_url.get_secret_value(), autocommit=True) as conn:
            conn.execute("SET search_path TO genealogy")
            cursor = conn.execute(statement)
            row = cursor.fetchone() if cursor.description else None
    return int(row[0]) if row else 0


def test_a_new_release_builds_its_version_beside_the_old_rows_before_serving(
    store: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    settings = _settings(store, tmp_path / "data", request)
    with TestClient(create_app(settings)) as client:
        world = register_world(client)
        world.extract("ORE-1", "10000")
        world.report("batch-transformed", beneficiation())
        # A trace reads the model caught up with every recorded event.
        assert world.get("/v1/batches/MINECO/CON-1/upstream").status_code == 200
    batches = _execute(settings, "SELECT count(*) FROM batches")
    # Rows of the previous release: an older version, and a row this one never writes.
    _execute(settings, f"UPDATE projection_versions SET version = {genealogy.VERSION - 1}")
    _execute(
        settings,
        "INSERT INTO names VALUES ('00000000-0000-0000-0000-000000000001', 'actor', 'GHOST', 'Ghost', 'XX')",
    )
    seen: list[int] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            seen.append(_execute(settings, "SELECT count(*) FROM batches"))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        with TestClient(create_app(settings)):
            pass
    finally:
        stop.set()
        reader.join(timeout=10)

    assert seen and set(seen) == {batches}
    assert (
        _execute(settings, "SELECT version FROM projection_versions WHERE projection = 'genealogy'")
        == genealogy.VERSION
    )
    assert _execute(settings, "SELECT count(*) FROM names WHERE code = 'GHOST'") == 0
