"""The inventory read model: what each actor holds at each facility, by material and by
element, now (stock rows each event keeps up to date) and at any past moment (by event
time, from signed, dated movements).

``rows`` (the row types), ``view`` (the writer and the view interface), ``projection``
(events -> rows) and ``stock`` (steps -> movements -> holdings) need no database;
``schema`` describes the tables once, and ``sqlite`` and ``postgres`` are the two views
(import them from there: this package does not, so that its readers need no SQL driver).
"""

from lodestone.projections.inventory.projection import NAME, VERSION, InventoryProjection
from lodestone.projections.inventory.rows import HeldBatch, Movement, Place, Step, Stock
from lodestone.projections.inventory.stock import Holding, holdings, lots_from, lots_now, stock
from lodestone.projections.inventory.view import InventoryView, Writer

__all__ = [
    "NAME",
    "VERSION",
    "HeldBatch",
    "Holding",
    "InventoryProjection",
    "InventoryView",
    "Movement",
    "Place",
    "Step",
    "Stock",
    "Writer",
    "holdings",
    "lots_from",
    "lots_now",
    "stock",
]
