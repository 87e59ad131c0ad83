"""The inventory view on PostgreSQL. Everything but the database is in ``schema``;
what PostgreSQL does differently (native types, a pool, advisory locks, a schema of its
own, default ``inventory``) is in :mod:`lodestone.projections.postgres`."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from lodestone.projections.inventory.schema import InventoryTables, reading
from lodestone.projections.inventory.view import Writer
from lodestone.projections.postgres import PostgresView


class PostgresInventoryView(PostgresView[Writer], InventoryTables):
    """``PostgresInventoryView(url, schema="inventory")``: the inventory's tables in that
    schema of that database."""

    @contextmanager
    def transaction(self, positions: Mapping[str, int]) -> Iterator[Writer]:
        with reading(super().transaction(positions), self) as writer:
            yield writer
