"""The ``backend`` fixture: one test body, run on SQLite and on PostgreSQL.

A backend makes event stores (``ledger_env``/``ledger``) and genealogy views
(``genealogy_view``) that are fresh and private to the test: SQLite files in the test's
temporary directory, or schemas in a database made for the test. The same name within
one test means the same store, so two Ledger instances can share one.

Register with ``pytest_plugins = ["tests.integration.postgres_fixture",
"tests.integration.backends"]`` in the root conftest. ``-m "not postgres"`` leaves
the PostgreSQL half out, and no server is started unless a postgres test runs.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Protocol

import psycopg
import pytest
from psycopg import sql

from lodestone.infra.postgres.database import postgres_env
from lodestone.infra.sqlite.database import sqlite_env
from lodestone.ledger import Ledger
from lodestone.projections.genealogy import GenealogyView
from lodestone.projections.genealogy.postgres import PostgresGenealogyView
from lodestone.projections.genealogy.sqlite import SQLiteGenealogyView

Clock = Callable[[], datetime]
_NAME = re.compile(r"[a-z][a-z0-9_]{0,40}")


class Backend(Protocol):
    name: str

    def ledger_env(self, name: str = "events") -> dict[str, str]: ...
    def ledger(self, name: str = "events", clock: Clock | None = None) -> Ledger: ...
    def genealogy_view(self, name: str = "genealogy") -> GenealogyView: ...
    def close(self) -> None: ...


class _Opened:
    """Closes what a test opened through the backend, newest first."""

    def __init__(self) -> None:
        self._ledgers: list[Ledger] = []
        self._views: list[GenealogyView] = []

    def ledger(self, env: dict[str, str], clock: Clock | None) -> Ledger:
        ledger = Ledger(env, clock=clock)
        self._ledgers.append(ledger)
        return ledger

    def view(self, view: GenealogyView) -> GenealogyView:
        self._views.append(view)
        return view

    def close(self) -> None:
        for view in reversed(self._views):
            view.close()
        for ledger in reversed(self._ledgers):
            ledger.close()


class SQLiteBackend:
    name = "sqlite"

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._opened = _Opened()

    def ledger_env(self, name: str = "events") -> dict[str, str]:
        return sqlite_env(self._directory / f"{_checked(name)}.sqlite")

    def ledger(self, name: str = "events", clock: Clock | None = None) -> Ledger:
        return self._opened.ledger(self.ledger_env(name), clock)

    def genealogy_view(self, name: str = "genealogy") -> GenealogyView:
        path = self._directory / f"view-{_checked(name)}.sqlite"
        return self._opened.view(SQLiteGenealogyView(path))

    def close(self) -> None:
        self._opened.close()


class PostgresBackend:
    """One database per test, made on first use; each store and each view is a schema
    in it (``ledger_<name>``, ``view_<name>``)."""

    name = "postgres"

    def __init__(self, make_database: Callable[[], str]) -> None:
        self._make_database = make_database
        self._url: str | None = None
        self._opened = _Opened()

    @property
    def url(self) -> str:
        if self._url is None:
            self._url = self._make_database()
        return self._url

    def ledger_env(self, name: str = "events") -> dict[str, str]:
        schema = f"ledger_{_checked(name)}"
        # eventsourcing creates its tables but not the schema they go in.
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        return postgres_env(self.url, schema=schema)

    def ledger(self, name: str = "events", clock: Clock | None = None) -> Ledger:
        return self._opened.ledger(self.ledger_env(name), clock)

    def genealogy_view(self, name: str = "genealogy") -> GenealogyView:
        view = PostgresGenealogyView(self.url, schema=f"view_{_checked(name)}")
        return self._opened.view(view)

    def close(self) -> None:
        self._opened.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    chosen: Backend
    if request.param == "sqlite":
        chosen = SQLiteBackend(tmp_path)
    else:
        # Asked for only here, so a SQLite-only run never starts a server.
        chosen = PostgresBackend(request.getfixturevalue("make_postgres_database"))
    yield chosen
    chosen.close()


def _checked(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise ValueError(f"backend store name {name!r}: lower-case letters, digits, _")
    return name
