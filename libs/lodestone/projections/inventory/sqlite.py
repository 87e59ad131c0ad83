"""The inventory view on SQLite (the embedded default). Everything but the database is
in ``schema``; what SQLite does differently is in :mod:`lodestone.projections.sqlite`."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from lodestone.projections.inventory.schema import InventoryTables, reading
from lodestone.projections.inventory.view import Writer
from lodestone.projections.sqlite import SQLiteView


class SQLiteInventoryView(SQLiteView[Writer], InventoryTables):
    """``SQLiteInventoryView(path)``: the inventory's tables in that SQLite file."""

    @contextmanager
    def transaction(self, positions: Mapping[str, int]) -> Iterator[Writer]:
        with reading(super().transaction(positions), self) as writer:
            yield writer
