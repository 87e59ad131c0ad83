"""The inventory's tables, described once for both databases, with the statements that
write them, the writer that reads a batch back while the projection writes, and the
queries of :class:`InventoryView` written over them. The ``sqlite`` and ``postgres``
modules only pick the database.

Each table's columns are its row type's fields, in order (a test holds them equal).
Every table's first two columns are unique together: the fingerprint orders rows by
them.

What is held now is kept in ``inventory_stock``, a row per holder, place, material
(and element), to which each transaction adds what its batches' changes amount to, so
that stock now is read, not summed; stock at a past moment is the movements up to it,
summed by the database. The writer keeps the last row of each key it was given and
writes them when the projection is done with the transaction's events, so a batch
touched by many events of one transaction is written once.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from decimal import Decimal
from operator import attrgetter
from typing import Any, Protocol
from uuid import UUID

from lodestone.projections.inventory.projection import NAME, VERSION
from lodestone.projections.inventory.rows import HeldBatch, Movement, Place, Step, Stock
from lodestone.projections.inventory.stock import HELD, Delta, Holding, Lot, add_held, holdings_of
from lodestone.projections.inventory.view import InventoryView, Writer
from lodestone.projections.tables import (
    Buffer,
    Column,
    Dialect,
    Index,
    Kind,
    Layout,
    Query,
    Table,
    TableView,
    Write,
    upsert,
)

BATCHES = Table(
    "inventory_batches",
    (
        Column("id", Kind.UUID, not_null=True),
        Column("version", Kind.INT, not_null=True),
        Column("reference", Kind.TEXT, not_null=True),
        Column("material", Kind.TEXT, not_null=True),
        Column("composition", Kind.COMPOSITION, not_null=True),
        Column("actor_id", Kind.UUID),
        Column("facility_id", Kind.UUID),
        Column("remaining_kg", Kind.DECIMAL, not_null=True),
        Column("status", Kind.TEXT, not_null=True),
        Column("created_at", Kind.TIME, not_null=True),
    ),
    key=("id",),
    row=HeldBatch,
    indexes=(
        Index("inventory_batches_by_actor", ("actor_id", "status")),
        Index("inventory_batches_by_facility", ("facility_id", "status")),
    ),
)
STEPS = Table(
    "inventory_steps",
    (
        Column("batch_id", Kind.UUID, not_null=True),
        Column("version", Kind.INT, not_null=True),
        Column("kind", Kind.TEXT, not_null=True),
        Column("occurred_at", Kind.TIME, not_null=True),
        Column("actor_id", Kind.UUID),
        Column("facility_id", Kind.UUID),
        Column("kg", Kind.DECIMAL),
        Column("void", Kind.INT, not_null=True),
    ),
    key=("batch_id", "version"),
    row=Step,
)
MOVEMENTS = Table(
    "inventory_movements",
    (
        Column("batch_id", Kind.UUID, not_null=True),
        Column("entry", Kind.INT, not_null=True),
        Column("version", Kind.INT, not_null=True),
        Column("occurred_at", Kind.TIME, not_null=True),
        Column("actor_id", Kind.UUID),
        Column("facility_id", Kind.UUID),
        Column("kg", Kind.DECIMAL, not_null=True),
    ),
    key=("batch_id", "entry"),
    row=Movement,
    indexes=(
        Index("inventory_movements_by_time", ("occurred_at",)),
        Index("inventory_movements_by_actor", ("actor_id", "occurred_at")),
        Index("inventory_movements_by_facility", ("facility_id", "occurred_at")),
    ),
)
PLACES = Table(
    "inventory_places",
    (
        Column("id", Kind.UUID, not_null=True),
        Column("kind", Kind.TEXT, not_null=True),
        Column("code", Kind.TEXT, not_null=True),
        Column("name", Kind.TEXT, default=""),
        Column("country", Kind.TEXT, default=""),
        Column("facility_kind", Kind.TEXT, default=""),
        Column("owner_id", Kind.UUID),
    ),
    key=("id",),
    row=Place,
)

STOCK = Table(
    "inventory_stock",
    (
        Column("holding", Kind.TEXT, not_null=True),
        Column("element", Kind.TEXT, not_null=True),
        Column("actor_id", Kind.UUID),
        Column("facility_id", Kind.UUID),
        Column("material", Kind.TEXT, not_null=True),
        Column("kg", Kind.DECIMAL, not_null=True),
        Column("batches", Kind.INT, not_null=True),
    ),
    key=("holding", "element"),
    row=Stock,
    indexes=(
        Index("inventory_stock_by_actor", ("actor_id", "facility_id")),
        Index("inventory_stock_by_facility", ("facility_id",)),
    ),
)
LOT = Table(
    "lots",
    (
        Column("actor_id", Kind.UUID),
        Column("facility_id", Kind.UUID),
        Column("batch_id", Kind.UUID),
        Column("kg", Kind.DECIMAL),
    ),
    key=(),
    row=lambda *values: values,
)
#: The answers' shapes that are no table's rows, for the per-database decoders.
SHAPES = (LOT,)

#: Exact sum per database: SQLite keeps decimals as text and sums them with the
#: ``dadd`` and ``dsum`` functions its view registers (its own arithmetic is binary).
ADD_SQL = {"sqlite": "dadd({}, {})", "postgres": "({} + {})"}
SUM_SQL = {"sqlite": "dsum({})", "postgres": "SUM({})"}

# Only a newer version of a batch changes its row, so a repeat is a no-op. Steps and
# movements are rewritten whole when a correction replays the batch.
SAVE_BATCH = upsert(BATCHES, newer="version")
SAVE_STEP = upsert(STEPS)
SAVE_MOVEMENT = upsert(MOVEMENTS)
SAVE_PLACE = upsert(PLACES)


def _add_stock(dialect: Dialect) -> str:
    # A row's kg and batches are what the transaction adds (or takes away, negative);
    # the projection computes them only for events it has not applied yet.
    marks = ", ".join([dialect.placeholder] * len(STOCK.columns))
    kg = ADD_SQL[dialect.name].format(f"{STOCK.name}.kg", "excluded.kg")
    return (
        f"INSERT INTO {STOCK.name} ({', '.join(STOCK.column_names)}) VALUES ({marks}) "
        f"ON CONFLICT ({', '.join(STOCK.key)}) DO UPDATE SET kg = {kg}, "
        f"batches = {STOCK.name}.batches + excluded.batches"
    )


ADD_STOCK = Write(STOCK, _add_stock)


def _filtered(
    table: Table[Any], conditions: Sequence[tuple[str, str, Kind]], fixed: str = ""
) -> Query[Any]:
    """A select of ``table`` under ``conditions`` (column, operator, kind of value:
    parameters in that order) and a ``fixed`` condition without parameters."""

    def render(dialect: Dialect) -> str:
        where = [fixed] if fixed else []
        where += [f"{c} {op} {dialect.param(kind)}" for c, op, kind in conditions]
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        return f"SELECT {table.select_list()} FROM {table.name}{clause}"

    return Query(table, render)


def _held_query(by_actor: bool, by_facility: bool) -> Query[HeldBatch]:
    held = ", ".join(f"'{status}'" for status in HELD)
    return _filtered(BATCHES, _by(by_actor, by_facility), f"status IN ({held})")


def _movement_query(by_actor: bool, by_facility: bool) -> Query[Movement]:
    return _filtered(MOVEMENTS, [("occurred_at", "<=", Kind.TIME), *_by(by_actor, by_facility)])


def _by(actor: bool, facility: bool) -> list[tuple[str, str, Kind]]:
    return [(c, "=", Kind.UUID) for c, on in (("actor_id", actor), ("facility_id", facility)) if on]


def _stock_query(by_actor: bool, by_facility: bool) -> Query[Stock]:
    return _filtered(STOCK, _by(by_actor, by_facility), "batches > 0")


def _lot_query(by_actor: bool, by_facility: bool) -> Query[Lot]:
    def render(dialect: Dialect) -> str:
        where = [f"occurred_at <= {dialect.param(Kind.TIME)}"]
        where += [f"{c} {op} {dialect.param(kind)}" for c, op, kind in _by(by_actor, by_facility)]
        return (
            f"SELECT actor_id, facility_id, batch_id, {SUM_SQL[dialect.name].format('kg')} "
            f"FROM {MOVEMENTS.name} WHERE {' AND '.join(where)} "
            "GROUP BY actor_id, facility_id, batch_id"
        )

    return Query(LOT, render)


_BOTH = [(a, f) for a in (False, True) for f in (False, True)]
HELD_QUERIES = {(a, f): _held_query(a, f) for a, f in _BOTH}
MOVEMENT_QUERIES = {(a, f): _movement_query(a, f) for a, f in _BOTH}
STOCK_QUERIES = {(a, f): _stock_query(a, f) for a, f in _BOTH}
LOT_QUERIES = {(a, f): _lot_query(a, f) for a, f in _BOTH}

_BATCH = attrgetter(*BATCHES.column_names)
_STEP = attrgetter(*STEPS.column_names)
_MOVEMENT = attrgetter(*MOVEMENTS.column_names)
_PLACE = attrgetter(*PLACES.column_names)
_ZERO = Decimal(0)


class Stored(Protocol):
    """What the writer reads back: the committed rows of one batch."""

    def batches(self, ids: Iterable[UUID]) -> dict[UUID, HeldBatch]: ...
    def steps_of(self, ids: Iterable[UUID]) -> list[Step]: ...


class _Writer:
    """Keeps the last row of each key the projection saves, and the batches and steps
    it wrote, so that the projection reads its own writes before the stored rows; at
    the end of the transaction's events (:meth:`flush`) appends each row's values, in
    column order, to the transaction's buffer, with what the stock rows gain or lose."""

    def __init__(self, buffer: Buffer) -> None:
        self._buffer = buffer
        self._batches: dict[UUID, HeldBatch | None] = {}
        self._stock: Delta = {}
        self._saved: dict[UUID, HeldBatch] = {}
        self._steps: dict[UUID, dict[int, Step]] = {}
        self._movements: dict[tuple[UUID, int], Movement] = {}
        self._places: dict[UUID, Place] = {}
        self.stored: Stored | None = None  # set by the view's transaction

    def batch(self, id: UUID) -> HeldBatch | None:
        if id not in self._batches:
            self._batches[id] = self._store().batches([id]).get(id)
        return self._batches[id]

    def steps(self, id: UUID) -> list[Step]:
        found = {s.version: s for s in self._store().steps_of([id])}
        found.update(self._steps.get(id, {}))
        return sorted(found.values(), key=lambda s: s.version)

    def save_batch(self, row: HeldBatch) -> None:
        # Event by event, not once per transaction from first to last: the stock rows a
        # batch passes through are then the same however events are grouped into
        # transactions, and so are their figures (to the last trailing zero).
        add_held(self._stock, self.batch(row.id), -1)
        add_held(self._stock, row, 1)
        self._batches[row.id] = row
        self._saved[row.id] = row

    def save_steps(self, steps: Sequence[Step]) -> None:
        for step in steps:
            self._steps.setdefault(step.batch_id, {})[step.version] = step

    def save_movements(self, movements: Sequence[Movement]) -> None:
        for m in movements:
            self._movements[m.batch_id, m.entry] = m

    def save_place(self, place: Place) -> None:
        self._places[place.id] = place

    def flush(self) -> None:
        """Hand the rows to the buffer: called once, when the projection is done."""
        rows = self._buffer.rows
        rows[SAVE_BATCH] += [_BATCH(b) for b in self._saved.values()]
        rows[SAVE_STEP] += [_STEP(s) for steps in self._steps.values() for s in steps.values()]
        rows[SAVE_MOVEMENT] += [_MOVEMENT(m) for m in self._movements.values()]
        rows[SAVE_PLACE] += [_PLACE(p) for p in self._places.values()]
        rows[ADD_STOCK] += [(*key, *change) for key, change in self._stock.items()]
        self._saved, self._steps, self._movements, self._places = {}, {}, {}, {}
        self._stock = {}

    def _store(self) -> Stored:
        if self.stored is None:
            raise RuntimeError("the inventory writer reads through its view's transaction")
        return self.stored


LAYOUT: Layout[Writer] = Layout(
    NAME,
    VERSION,
    tables=(BATCHES, STEPS, MOVEMENTS, PLACES, STOCK),
    writes=(SAVE_BATCH, SAVE_STEP, SAVE_MOVEMENT, SAVE_PLACE, ADD_STOCK),
    writer=_Writer,
)


@contextmanager
def reading(transaction: AbstractContextManager[Writer], stored: Stored) -> Iterator[Writer]:
    """A view's transaction whose writer reads back from ``stored`` (the view itself).
    The reads are of committed rows, outside the write lock: a batch's events are
    applied by one projector at a time, in order."""
    with transaction as writer:
        if not isinstance(writer, _Writer):
            raise TypeError(f"not the inventory's writer: {writer!r}")
        writer.stored = stored
        yield writer
        writer.flush()


class InventoryTables(TableView[Writer], InventoryView):
    """The inventory's queries over its tables, the same on every database."""

    layout = LAYOUT

    def held(
        self, *, actor_id: UUID | None = None, facility_id: UUID | None = None
    ) -> list[HeldBatch]:
        query = HELD_QUERIES[actor_id is not None, facility_id is not None]
        return self._query(query, [p for p in (actor_id, facility_id) if p is not None])

    def movements(
        self,
        until: datetime,
        *,
        actor_id: UUID | None = None,
        facility_id: UUID | None = None,
    ) -> list[Movement]:
        query = MOVEMENT_QUERIES[actor_id is not None, facility_id is not None]
        params = [until, *(p for p in (actor_id, facility_id) if p is not None)]
        return self._query(query, params)

    def held_now(
        self, *, actor_id: UUID | None = None, facility_id: UUID | None = None
    ) -> list[Holding]:
        query = STOCK_QUERIES[actor_id is not None, facility_id is not None]
        return holdings_of(
            self._query(query, [p for p in (actor_id, facility_id) if p is not None])
        )

    def lots(
        self,
        until: datetime,
        *,
        actor_id: UUID | None = None,
        facility_id: UUID | None = None,
    ) -> list[Lot]:
        query = LOT_QUERIES[actor_id is not None, facility_id is not None]
        params = [until, *(p for p in (actor_id, facility_id) if p is not None)]
        return [lot for lot in self._query(query, params) if lot[3] != _ZERO]

    def batches(self, ids: Iterable[UUID]) -> dict[UUID, HeldBatch]:
        return {row.id: row for row in self._rows_in(BATCHES, "id", ids)}

    def steps_of(self, ids: Iterable[UUID]) -> list[Step]:
        return self._rows_in(STEPS, "batch_id", ids)

    def places(self, ids: Iterable[UUID]) -> dict[UUID, Place]:
        return {row.id: row for row in self._rows_in(PLACES, "id", ids)}
