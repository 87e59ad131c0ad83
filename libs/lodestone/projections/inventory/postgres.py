"""The inventory view on PostgreSQL. Everything but the database is in ``schema``
(NUMERIC sums are exact as they are); what PostgreSQL does differently (native types,
a pool, advisory locks, a schema of its own, default ``inventory``) is in
:mod:`lodestone.projections.postgres`."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from lodestone.projections.inventory.schema import SHAPES, InventoryTables, reading
from lodestone.projections.inventory.view import Writer
from lodestone.projections.postgres import FROM_POSTGRES, PostgresView
from lodestone.projections.tables import decoder


class PostgresInventoryView(PostgresView[Writer], InventoryTables):
    """``PostgresInventoryView(url, schema="inventory")``: the inventory's tables in that
    schema of that database."""

    def __init__(self, url: str, **options: Any) -> None:
        super().__init__(url, **options)
        self._decoders.update({shape: decoder(shape, FROM_POSTGRES) for shape in SHAPES})

    @contextmanager
    def transaction(self, positions: Mapping[str, int]) -> Iterator[Writer]:
        with reading(super().transaction(positions), self) as writer:
            yield writer
