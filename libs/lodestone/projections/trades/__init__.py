"""The trade ledger read model: every sale, export and receipt as a line with seller,
client (buyer; consignee and end user for exports), material, mass, element content,
price, contract, destination, customs code, licence and month; totals by month,
client, destination and element.

``rows`` (the row types), ``view`` (the writer and the view interface) and
``projection`` (events -> rows) need no database; ``schema`` describes the tables and
writes the queries once, and ``sqlite`` and ``postgres`` are the two views (import them
from there: this package does not, so that its readers need no SQL driver).
"""

from lodestone.projections.trades.projection import NAME, VERSION, TradesProjection, month
from lodestone.projections.trades.rows import (
    Content,
    Element,
    Line,
    ListedLine,
    Party,
    Total,
    TradedBatch,
)
from lodestone.projections.trades.view import Key, LineFilter, TradesView, Writer

__all__ = [
    "NAME",
    "VERSION",
    "Content",
    "Element",
    "Key",
    "Line",
    "LineFilter",
    "ListedLine",
    "Party",
    "Total",
    "TradedBatch",
    "TradesProjection",
    "TradesView",
    "Writer",
    "month",
]
