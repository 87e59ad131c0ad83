"""The genealogy's tables, described once for both databases, with the statements that
write them, the recursive ancestor and descendant queries and the queries of
:class:`GenealogyView` written over them. The ``sqlite`` and ``postgres`` modules only
pick the database.

Each table's columns are its row type's fields, in order (a test holds them equal).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from operator import attrgetter
from typing import Any, TypeVar
from uuid import UUID

from lodestone.projections.genealogy.projection import NAME, VERSION
from lodestone.projections.genealogy.provenance import Shares, decode, encode, pooled
from lodestone.projections.genealogy.rows import BatchRow, Edge, Name, ProvenanceRow, Trade
from lodestone.projections.genealogy.view import GenealogyView, Writer
from lodestone.projections.tables import (
    Buffer,
    Column,
    Dialect,
    Index,
    Kind,
    Layout,
    Query,
    Row,
    Table,
    TableView,
    insert_new,
    to_text,
    upsert,
)
from lodestone.projections.tracking import Session

T = TypeVar("T")

BATCHES = Table(
    "batches",
    (
        Column("id", Kind.UUID, not_null=True),
        Column("version", Kind.INT, not_null=True),
        Column("reference", Kind.TEXT),
        Column("material", Kind.TEXT),
        Column("initial_kg", Kind.DECIMAL),
        Column("remaining_kg", Kind.DECIMAL),
        Column("composition", Kind.COMPOSITION),
        Column("facility_id", Kind.UUID),
        Column("custodian_id", Kind.UUID),
        Column("reporter_id", Kind.UUID),
        Column("status", Kind.TEXT),
        Column("origin_kind", Kind.TEXT),
        Column("origin_facility_id", Kind.UUID),
        Column("origin_licence_id", Kind.UUID),
        Column("origin_country", Kind.TEXT),
        Column("created_at", Kind.TIME),
        Column("corrections", Kind.INT),  # added after the first release: a column, no rebuild
    ),
    key=("id",),
    row=BatchRow,
    # The batches an actor made in a period (its monthly declaration's production).
    indexes=(Index("batches_by_reporter", ("reporter_id", "created_at")),),
)
EDGES = Table(
    "edges",
    (
        Column("parent_id", Kind.UUID, not_null=True),
        Column("child_id", Kind.UUID, not_null=True),
        Column("kg", Kind.DECIMAL, not_null=True),
        Column("operation", Kind.TEXT, not_null=True),
        Column("operation_id", Kind.UUID, not_null=True),
    ),
    key=("parent_id", "child_id"),
    row=Edge,
    indexes=(Index("edges_by_child", ("child_id",)),),
)
TRADES = Table(
    "trades",
    (
        Column("batch_id", Kind.UUID, not_null=True),
        Column("version", Kind.INT, not_null=True),
        Column("kind", Kind.TEXT, not_null=True),
        Column("from_id", Kind.UUID),
        Column("to_id", Kind.UUID),
        Column("kg", Kind.DECIMAL, not_null=True),
        Column("contract", Kind.TEXT, default=""),
        Column("price", Kind.DECIMAL),
        Column("currency", Kind.TEXT, default=""),
        Column("destination_country", Kind.TEXT, default=""),
        Column("occurred_at", Kind.TIME),
    ),
    key=("batch_id", "version"),
    row=Trade,
)
NAMES = Table(
    "names",
    (
        Column("id", Kind.UUID, not_null=True),
        Column("kind", Kind.TEXT, not_null=True),
        Column("code", Kind.TEXT, not_null=True),
        Column("name", Kind.TEXT, default=""),
        Column("country", Kind.TEXT, default=""),
    ),
    key=("id",),
    row=Name,
)

#: Each batch's provenance shares, derived by the view from the rows above whenever a
#: transaction writes a batch's composition or an edge into it (see ``_derive``).
PROVENANCE = Table(
    "batch_provenance",
    (
        Column("batch_id", Kind.UUID, not_null=True),
        Column("shares", Kind.TEXT, not_null=True),
    ),
    key=("batch_id",),
    row=ProvenanceRow,
)

# A value the event does not give is None and leaves the stored one alone; only a
# newer version of the batch changes the row, so a repeat is a no-op.
UPSERT_BATCH = upsert(BATCHES, keep_nulls=True, newer="version")
INSERT_EDGE = insert_new(EDGES)
INSERT_TRADE = insert_new(TRADES)
UPSERT_NAME = upsert(NAMES)
# Written by the view, not the projection: the same shares again write nothing.
UPSERT_PROVENANCE = upsert(PROVENANCE)


def _walk(towards: str) -> Query[Edge]:
    """Every edge on a path from (``up``: to) the given batch, by a recursive query."""
    near, far = ("child_id", "parent_id") if towards == "up" else ("parent_id", "child_id")

    def render(dialect: Dialect) -> str:
        return (
            f"WITH RECURSIVE {towards}(id) AS (SELECT {dialect.param(Kind.UUID)} "
            f"UNION SELECT e.{far} FROM edges e JOIN {towards} ON e.{near} = {towards}.id) "
            f"SELECT {EDGES.select_list('e')} FROM edges e "
            f"WHERE e.{near} IN (SELECT id FROM {towards}) ORDER BY e.parent_id, e.child_id"
        )

    return Query(EDGES, render)


ANCESTORS = _walk("up")
DESCENDANTS = _walk("down")

#: Left out of a traced batch's row (None there): a trace does not show them, and the
#: composition is most of the cost of reading a row.
_UNTRACED = {"composition", "created_at"}


def _traced(towards: str) -> Query[BatchRow]:
    """The given batch and every batch on a path from (``up``: to) it, by one recursive
    query, without the columns a trace does not show."""
    near, far = ("child_id", "parent_id") if towards == "up" else ("parent_id", "child_id")
    columns = ", ".join("NULL" if c.name in _UNTRACED else f"b.{c.name}" for c in BATCHES.columns)

    def render(dialect: Dialect) -> str:
        return (
            f"WITH RECURSIVE {towards}(id) AS (SELECT {dialect.param(Kind.UUID)} "
            f"UNION SELECT e.{far} FROM edges e JOIN {towards} ON e.{near} = {towards}.id) "
            f"SELECT {columns} FROM batches b JOIN {towards} ON b.id = {towards}.id"
        )

    return Query(BATCHES, render)


TRACED_UP = _traced("up")
TRACED_DOWN = _traced("down")

#: A batch's ``created_at`` is kept as reported, with its own UTC offset (-12:00 to
#: +14:00); SQLite compares it as text, so the period is widened by more than any offset
#: in SQL and cut exactly in Python.
_OFFSETS = timedelta(days=1)


def _created(by_reporter: bool) -> Query[BatchRow]:
    def render(dialect: Dialect) -> str:
        time = dialect.param(Kind.TIME)
        reporter = f"reporter_id = {dialect.param(Kind.UUID)} AND " if by_reporter else ""
        return (
            f"SELECT {BATCHES.select_list()} FROM batches "
            f"WHERE {reporter}created_at >= {time} AND created_at < {time}"
        )

    return Query(BATCHES, render)


CREATED = _created(by_reporter=False)
CREATED_BY = _created(by_reporter=True)


def _named(kind: str) -> Query[Name]:
    def render(dialect: Dialect) -> str:
        return f"SELECT {NAMES.select_list()} FROM names WHERE kind = '{kind}' ORDER BY code"

    return Query(NAMES, render)


ACTORS = _named("actor")


_BATCH = attrgetter(*BATCHES.column_names)
_EDGE = attrgetter(*EDGES.column_names)
_TRADE = attrgetter(*TRADES.column_names)
_NAME = attrgetter(*NAMES.column_names)


class _Writer:
    """Appends each row's values, in column order, to the transaction's buffer."""

    def __init__(self, buffer: Buffer) -> None:
        self._batches = buffer.rows[UPSERT_BATCH]
        self._edges = buffer.rows[INSERT_EDGE]
        self._trades = buffer.rows[INSERT_TRADE]
        self._names = buffer.rows[UPSERT_NAME]

    def upsert_batch(self, row: BatchRow) -> None:
        self._batches.append(_BATCH(row))

    def add_edges(self, edges: Sequence[Edge]) -> None:
        self._edges += [_EDGE(e) for e in edges]

    def add_trade(self, trade: Trade) -> None:
        self._trades.append(_TRADE(trade))

    def upsert_name(self, name: Name) -> None:
        self._names.append(_NAME(name))


_COMPOSITION = BATCHES.column_names.index("composition")
#: SQLite's default limit on the parameters of one statement is 999.
_CHUNK = 900


class _Derivation:
    """Recomputes, inside a write transaction and over what it has written, the shares
    of some batches and of every batch below them, inputs before outputs."""

    def __init__(self, session: Session, decoders: dict[Table[Any], Callable[[Row], Any]]):
        self._session = session
        self._decoders = decoders
        self._postgres = session.dialect.name == "postgres"

    def recompute(self, touched: set[UUID]) -> None:
        # Most writes make a new batch, which nothing is made of yet: one level each.
        below = set(touched)
        frontier = set(touched)
        while frontier:
            frontier = {e.child_id for e in self._select(EDGES, "parent_id", frontier)} - below
            below |= frontier
        inputs: dict[UUID, list[Edge]] = {}
        for edge in self._select(EDGES, "child_id", below):
            inputs.setdefault(edge.child_id, []).append(edge)
        parents = {e.parent_id for edges in inputs.values() for e in edges}
        rows: dict[UUID, BatchRow] = {
            row.id: row for row in self._select(BATCHES, "id", below | parents)
        }
        shares: dict[UUID, Shares] = {
            row.batch_id: decode(row.shares)
            for row in self._select(PROVENANCE, "batch_id", parents - below)
        }
        written = []
        for node in _inputs_first(below, inputs):
            row = rows.get(node)
            if row is None:  # an edge came before the batch it made: its turn comes
                continue
            edges = sorted(inputs.get(node, ()), key=lambda e: e.parent_id)
            shares[node] = pooled(
                row, [(e.kg, rows.get(e.parent_id), shares.get(e.parent_id, {})) for e in edges]
            )
            written.append((node, encode(shares[node])))
        if written:
            dialect = self._session.dialect
            params = written if self._postgres else [(to_text(i), t) for i, t in written]
            self._session.executemany(UPSERT_PROVENANCE.render(dialect), params)

    def _select(self, table: Table[T], column: str, values: Iterable[Any]) -> list[T]:
        decode = self._decoders[table]
        columns = table.select_list()
        if self._postgres:
            query = f"SELECT {columns} FROM {table.name} WHERE {column} = ANY(%s)"
            return [decode(row) for row in self._session.rows(query, (list(values),))]
        keys = [to_text(v) for v in values]
        found: list[T] = []
        for start in range(0, len(keys), _CHUNK):
            chunk = keys[start : start + _CHUNK]
            query = (
                f"SELECT {columns} FROM {table.name} "
                f"WHERE {column} IN ({', '.join('?' * len(chunk))})"
            )
            found += [decode(row) for row in self._session.rows(query, chunk)]
        return found


def _inputs_first(nodes: set[UUID], inputs: dict[UUID, list[Edge]]) -> list[UUID]:
    """``nodes`` ordered so that each comes after those of its inputs among them (Kahn's
    order; sorted within a round, so the same every time)."""
    waiting = {
        node: {e.parent_id for e in inputs.get(node, ()) if e.parent_id in nodes} for node in nodes
    }
    outputs: dict[UUID, list[UUID]] = {}
    for node, parents in waiting.items():
        for parent in parents:
            outputs.setdefault(parent, []).append(node)
    ready = sorted(node for node, parents in waiting.items() if not parents)
    order: list[UUID] = []
    while ready:
        order += ready
        next_round = []
        for node in ready:
            for child in outputs.get(node, ()):
                waiting[child].discard(node)
                if not waiting[child]:
                    next_round.append(child)
        ready = sorted(next_round)
    return order


LAYOUT: Layout[Writer] = Layout(
    NAME,
    VERSION,
    tables=(BATCHES, EDGES, TRADES, NAMES, PROVENANCE),
    writes=(UPSERT_BATCH, INSERT_EDGE, INSERT_TRADE, UPSERT_NAME),
    writer=_Writer,
)


class GenealogyTables(TableView[Writer], GenealogyView):
    """The genealogy's queries over its tables, the same on every database."""

    layout = LAYOUT
    _decoders: dict[Table[Any], Callable[[Row], Any]]  # each database's, per table

    def _derive(self, session: Session, buffer: Buffer) -> None:
        # A batch's shares depend on its composition, the edges into it and its inputs'
        # compositions and shares: what a write of a composition (a batch made or
        # corrected) or of an edge changes, for that batch and every batch below it.
        touched = {row[0] for row in buffer.rows[UPSERT_BATCH] if row[_COMPOSITION] is not None}
        touched.update(row[1] for row in buffer.rows[INSERT_EDGE])
        if touched:
            _Derivation(session, self._decoders).recompute(touched)

    def shares(self, ids: Iterable[UUID]) -> dict[UUID, Shares]:
        rows = self._rows_in(PROVENANCE, "batch_id", ids)
        return {row.batch_id: decode(row.shares) for row in rows}

    def batches(self, ids: Iterable[UUID]) -> dict[UUID, BatchRow]:
        return {row.id: row for row in self._rows_in(BATCHES, "id", ids)}

    def ancestors(self, batch_id: UUID) -> list[Edge]:
        return self._query(ANCESTORS, (batch_id,))

    def descendants(self, batch_id: UUID) -> list[Edge]:
        return self._query(DESCENDANTS, (batch_id,))

    def traced(self, batch_id: UUID, towards: str) -> dict[UUID, BatchRow]:
        rows = self._query(TRACED_UP if towards == "up" else TRACED_DOWN, (batch_id,))
        return {row.id: row for row in rows}

    def trades(self, ids: Iterable[UUID]) -> list[Trade]:
        # Sorted here rather than in SQL: SQLite reads long id lists in chunks.
        trades = self._rows_in(TRADES, "batch_id", ids)
        trades.sort(key=lambda t: (t.occurred_at, t.batch_id, t.version))
        return trades

    def names(self, ids: Iterable[UUID]) -> dict[UUID, Name]:
        return {row.id: row for row in self._rows_in(NAMES, "id", ids)}

    def created_by(
        self, reporter_id: UUID | None, since: datetime, before: datetime
    ) -> list[BatchRow]:
        wide = [since - _OFFSETS, before + _OFFSETS]
        if reporter_id is None:
            found = self._query(CREATED, wide)
        else:
            found = self._query(CREATED_BY, [reporter_id, *wide])
        made = [b for b in found if b.created_at is not None and since <= b.created_at < before]
        made.sort(key=lambda b: (b.created_at or since, str(b.id)))
        return made

    def inputs(self, ids: Iterable[UUID]) -> list[Edge]:
        edges = self._rows_in(EDGES, "child_id", ids)
        edges.sort(key=lambda e: (str(e.child_id), str(e.parent_id)))
        return edges

    def actors(self) -> list[Name]:
        return self._query(ACTORS, ())
