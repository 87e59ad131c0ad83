"""The trade ledger's view on PostgreSQL. Everything but the database is in ``schema``
(NUMERIC sums and products are exact as they are); what PostgreSQL does differently
(native types, a pool, advisory locks, a schema of its own, default ``trades``) is in
:mod:`lodestone.projections.postgres`."""

from __future__ import annotations

from typing import Any

from lodestone.projections.postgres import FROM_POSTGRES, PostgresView
from lodestone.projections.tables import decoder
from lodestone.projections.trades.schema import SHAPES, TradesTables
from lodestone.projections.trades.view import Writer


class PostgresTradesView(PostgresView[Writer], TradesTables):
    """``PostgresTradesView(url, schema="trades")``: the trade ledger's tables in that
    schema of that database."""

    def __init__(self, url: str, **options: Any) -> None:
        super().__init__(url, **options)
        self._decoders.update({shape: decoder(shape, FROM_POSTGRES) for shape in SHAPES})
