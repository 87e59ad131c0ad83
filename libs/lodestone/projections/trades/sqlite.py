"""The trade ledger's view on SQLite (the embedded default). Everything but the
database is in ``schema``; what SQLite does differently (values as text, one locked
connection) is in :mod:`lodestone.projections.sqlite`. Here: the exact decimal sum and
product its queries use, since SQLite's own arithmetic on text is binary floating
point."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from lodestone.domain.values import EXACT
from lodestone.projections.sqlite import SQLiteView
from lodestone.projections.tables import FROM_TEXT, decoder
from lodestone.projections.trades.schema import SHAPES, TradesTables
from lodestone.projections.trades.view import Writer


class SQLiteTradesView(SQLiteView[Writer], TradesTables):
    """``SQLiteTradesView(path)``: the trade ledger's tables in that SQLite file."""

    def __init__(self, path: Path | str) -> None:
        super().__init__(path)
        self._decoders.update({shape: decoder(shape, FROM_TEXT) for shape in SHAPES})
        with self._lock:
            self._db.create_function("dmul", 2, _multiply, deterministic=True)
            self._db.create_function("dadd", 2, _add, deterministic=True)
            self._db.create_function("dneg", 1, _negate, deterministic=True)
            # typeshed types an aggregate as taking and giving ints; SQLite takes any value.
            self._db.create_aggregate("dsum", 1, _Sum)  # type: ignore[arg-type]


def _multiply(a: str | None, b: str | None) -> str | None:
    if a is None or b is None:
        return None
    return str(EXACT.multiply(Decimal(a), Decimal(b)))


def _add(a: str | None, b: str | None) -> str | None:
    # NULL plus NULL stays NULL (a total of lines has no element content); a value
    # plus NULL is the value (``dadd(x, NULL)`` spells x so). The sum is
    # spelt without trailing zeros, so that a kept total reads the same whatever
    # history of additions and subtractions led to it.
    if a is None and b is None:
        return None
    total = EXACT.add(Decimal(a or 0), Decimal(b or 0))
    return format(EXACT.normalize(total), "f")


def _negate(a: str | None) -> str | None:
    return None if a is None else str(Decimal(a).copy_negate())


class _Sum:
    """SUM over decimals stored as text, exactly; NULL over no values, as SUM is."""

    def __init__(self) -> None:
        self.total: Decimal | None = None

    def step(self, value: str | None) -> None:
        if value is not None:
            self.total = EXACT.add(self.total or Decimal(0), Decimal(value))

    def finalize(self) -> str | None:
        return None if self.total is None else str(self.total)
