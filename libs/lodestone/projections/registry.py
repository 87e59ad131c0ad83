"""Every projection Lodestone runs, by name: how to make it and how to open its view
on each database. The projector process and ``lodestone rebuild`` run a chosen set of
them (all by default); a new read model is one more entry here."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lodestone.projections.anomalies import schema as anomalies_schema
from lodestone.projections.anomalies.projection import AnomaliesProjection
from lodestone.projections.base import Projection, View
from lodestone.projections.changes import CHANGES, STATE
from lodestone.projections.genealogy import schema as genealogy_schema
from lodestone.projections.genealogy.projection import GenealogyProjection
from lodestone.projections.inventory import schema as inventory_schema
from lodestone.projections.inventory.projection import InventoryProjection
from lodestone.projections.licences import schema as licences_schema
from lodestone.projections.licences.projection import LicencesProjection
from lodestone.projections.tables import Layout
from lodestone.projections.tracking import TRACKING, VERSIONS
from lodestone.projections.trades import schema as trades_schema
from lodestone.projections.trades.projection import TradesProjection


@dataclass(frozen=True)
class Registered:
    """A projection class, the layout of its tables and its views. The views are
    imported when opened, so that choosing projections needs no SQL driver.
    ``postgres(url, schema=None)``: the view in that schema (default: the projection's
    name), so that a rebuild can make its copy beside the live one."""

    projection: type[Projection]
    layout: Layout[Any]
    sqlite: Callable[[Path], View[Any]]
    postgres: Callable[..., View[Any]]

    def __post_init__(self) -> None:
        named = (self.projection.name, self.projection.version)
        if named != (self.layout.projection, self.layout.version):
            raise ValueError(f"projection {named} with the tables of {self.layout.projection}")

    @property
    def name(self) -> str:
        return self.projection.name

    @property
    def version(self) -> int:
        return self.projection.version

    def open(
        self, *, postgres_url: str | None, sqlite_path: Path, schema: str | None = None
    ) -> View[Any]:
        """The view on PostgreSQL when a URL is given (in ``schema``, default the
        projection's name), else in the SQLite file."""
        if postgres_url is not None:
            return (
                self.postgres(postgres_url, schema=schema)
                if schema
                else self.postgres(postgres_url)
            )
        return self.sqlite(sqlite_path)


class Registry:
    def __init__(self, *entries: Registered) -> None:
        self._entries = {entry.name: entry for entry in entries}
        if len(self._entries) != len(entries):
            raise ValueError("two projections with one name")
        tables = [table.name for entry in entries for table in entry.layout.tables]
        # A view drops its tables when its version changes: one table, one owner.
        framework = {TRACKING.name, VERSIONS.name, CHANGES.name, STATE.name}
        if len(set(tables)) != len(tables) or framework & set(tables):
            raise ValueError(f"projections share a table: {sorted(tables)}")

    def __iter__(self) -> Iterator[Registered]:
        return iter(self._entries.values())

    def __getitem__(self, name: str) -> Registered:
        try:
            return self._entries[name]
        except KeyError:
            raise KeyError(
                f"no projection {name!r}; there are: {', '.join(self.names())}"
            ) from None

    def names(self) -> list[str]:
        return list(self._entries)

    def select(self, names: Iterable[str] | None = None) -> list[Registered]:
        """The projections named (each once, in the order given), or all of them."""
        if names is None:
            return list(self)
        return [self[name] for name in dict.fromkeys(names)]


def _genealogy_sqlite(path: Path) -> View[Any]:
    from lodestone.projections.genealogy.sqlite import SQLiteGenealogyView

    return SQLiteGenealogyView(path)


def _genealogy_postgres(url: str, schema: str | None = None) -> View[Any]:
    from lodestone.projections.genealogy.postgres import PostgresGenealogyView

    return PostgresGenealogyView(url, schema=schema)


def _trades_sqlite(path: Path) -> View[Any]:
    from lodestone.projections.trades.sqlite import SQLiteTradesView

    return SQLiteTradesView(path)


def _trades_postgres(url: str, schema: str | None = None) -> View[Any]:
    from lodestone.projections.trades.postgres import PostgresTradesView

    return PostgresTradesView(url, schema=schema)


def _inventory_sqlite(path: Path) -> View[Any]:
    from lodestone.projections.inventory.sqlite import SQLiteInventoryView

    return SQLiteInventoryView(path)


def _inventory_postgres(url: str, schema: str | None = None) -> View[Any]:
    from lodestone.projections.inventory.postgres import PostgresInventoryView

    return PostgresInventoryView(url, schema=schema)


def _licences_sqlite(path: Path) -> View[Any]:
    from lodestone.projections.licences.sqlite import SQLiteLicencesView

    return SQLiteLicencesView(path)


def _licences_postgres(url: str, schema: str | None = None) -> View[Any]:
    from lodestone.projections.licences.postgres import PostgresLicencesView

    return PostgresLicencesView(url, schema=schema)


def _anomalies_sqlite(path: Path) -> View[Any]:
    from lodestone.projections.anomalies.sqlite import SQLiteAnomaliesView

    return SQLiteAnomaliesView(path)


def _anomalies_postgres(url: str, schema: str | None = None) -> View[Any]:
    from lodestone.projections.anomalies.postgres import PostgresAnomaliesView

    return PostgresAnomaliesView(url, schema=schema)


REGISTRY = Registry(
    Registered(
        GenealogyProjection, genealogy_schema.LAYOUT, _genealogy_sqlite, _genealogy_postgres
    ),
    Registered(TradesProjection, trades_schema.LAYOUT, _trades_sqlite, _trades_postgres),
    Registered(
        InventoryProjection, inventory_schema.LAYOUT, _inventory_sqlite, _inventory_postgres
    ),
    Registered(LicencesProjection, licences_schema.LAYOUT, _licences_sqlite, _licences_postgres),
    Registered(
        AnomaliesProjection, anomalies_schema.LAYOUT, _anomalies_sqlite, _anomalies_postgres
    ),
)
