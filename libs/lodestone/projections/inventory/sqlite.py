"""The inventory view on SQLite (the embedded default). Everything but the database is
in ``schema``; what SQLite does differently is in :mod:`lodestone.projections.sqlite`.
Here: the exact decimal addition and sum the stock's statements use, since SQLite's
own arithmetic on text is binary floating point."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

from lodestone.domain.values import EXACT
from lodestone.projections.inventory.schema import SHAPES, InventoryTables, reading
from lodestone.projections.inventory.view import Writer
from lodestone.projections.sqlite import SQLiteView
from lodestone.projections.tables import FROM_TEXT, decoder


class SQLiteInventoryView(SQLiteView[Writer], InventoryTables):
    """``SQLiteInventoryView(path)``: the inventory's tables in that SQLite file."""

    def __init__(self, path: Path | str) -> None:
        super().__init__(path)
        self._decoders.update({shape: decoder(shape, FROM_TEXT) for shape in SHAPES})
        with self._lock:
            self._db.create_function("dadd", 2, _add, deterministic=True)
            # typeshed types an aggregate as taking and giving ints; SQLite takes any value.
            self._db.create_aggregate("dsum", 1, _Sum)  # type: ignore[arg-type]

    @contextmanager
    def transaction(self, positions: Mapping[str, int]) -> Iterator[Writer]:
        with reading(super().transaction(positions), self) as writer:
            yield writer


def _add(a: str, b: str) -> str:
    return str(EXACT.add(Decimal(a), Decimal(b)))


class _Sum:
    """SUM over decimals stored as text, exactly; NULL over no values, as SUM is."""

    def __init__(self) -> None:
        self.total: Decimal | None = None

    def step(self, value: str | None) -> None:
        if value is not None:
            self.total = EXACT.add(self.total or Decimal(0), Decimal(value))

    def finalize(self) -> str | None:
        return None if self.total is None else str(self.total)
