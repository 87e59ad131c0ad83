"""The trade ledger's tables, described once for both databases, with the statements
that write them and the queries of :class:`TradesView` written over them. The
``sqlite`` and ``postgres`` modules only pick the database.

Masses are summed and multiplied in SQL, exactly: NUMERIC on PostgreSQL; on SQLite,
where decimals are text, by the ``dsum`` and ``dmul`` functions its view registers
(Python's decimals: SQLite's own arithmetic is binary floating point).

Each stored table's columns are its row type's fields, in order (a test holds them
equal); ``LISTED``, ``TOTAL`` and ``COUNT`` are not stored: they are the shapes of answers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from operator import attrgetter
from typing import Any
from uuid import UUID

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
from lodestone.projections.trades.projection import NAME, VERSION
from lodestone.projections.trades.rows import (
    Element,
    Line,
    ListedLine,
    Party,
    Total,
    TradedBatch,
)
from lodestone.projections.trades.view import Key, LineFilter, TradesView, Writer

_LINE_COLUMNS = (
    Column("batch_id", Kind.UUID, not_null=True),
    Column("version", Kind.INT, not_null=True),
    Column("revision", Kind.INT, not_null=True),
    Column("kind", Kind.TEXT),
    Column("seller_id", Kind.UUID),
    Column("client_id", Kind.UUID),
    Column("end_user", Kind.TEXT),
    Column("kg", Kind.DECIMAL),
    Column("price", Kind.DECIMAL),
    Column("currency", Kind.TEXT),
    Column("contract", Kind.TEXT),
    Column("destination_country", Kind.TEXT),
    Column("customs_code", Kind.TEXT),
    Column("licence_id", Kind.UUID),
    Column("shipment", Kind.TEXT),
    Column("controlled", Kind.INT),  # 1 | 0
    Column("occurred_at", Kind.TIME),
    Column("month", Kind.TEXT),
    Column("corrected_by", Kind.INT),
)
LINES = Table(
    "trade_lines",
    _LINE_COLUMNS,
    key=("batch_id", "version"),
    row=Line,
    indexes=(
        Index("trade_lines_in_order", ("occurred_at", "batch_id", "version")),
        Index("trade_lines_by_month", ("month",)),
        Index("trade_lines_by_seller", ("seller_id",)),
        Index("trade_lines_by_client", ("client_id",)),
        Index("trade_lines_by_destination", ("destination_country",)),
    ),
)
BATCHES = Table(
    "trade_batches",
    (
        Column("id", Kind.UUID, not_null=True),
        Column("version", Kind.INT, not_null=True),
        Column("reference", Kind.TEXT),
        Column("material", Kind.TEXT),
        Column("composition_version", Kind.INT),
    ),
    key=("id",),
    row=TradedBatch,
)
ELEMENTS = Table(
    "trade_elements",
    (
        Column("batch_id", Kind.UUID, not_null=True),
        Column("element", Kind.TEXT, not_null=True),
        Column("version", Kind.INT, not_null=True),
        Column("fraction", Kind.DECIMAL, not_null=True),
    ),
    key=("batch_id", "element"),
    row=Element,
    indexes=(Index("trade_elements_by_element", ("element",)),),
)
PARTIES = Table(
    "trade_parties",
    (
        Column("id", Kind.UUID, not_null=True),
        Column("kind", Kind.TEXT, not_null=True),
        Column("code", Kind.TEXT, not_null=True),
        Column("name", Kind.TEXT, default=""),
        Column("country", Kind.TEXT, default=""),
    ),
    key=("id",),
    row=Party,
)
LISTED = Table(
    "listed_lines",
    (
        *_LINE_COLUMNS,
        Column("reference", Kind.TEXT),
        Column("material", Kind.TEXT),
        Column("composition_version", Kind.INT),
    ),
    key=("batch_id", "version"),
    row=ListedLine,
)
TOTAL = Table(
    "totals",
    (
        Column("month", Kind.TEXT),
        Column("client_id", Kind.UUID),
        Column("destination_country", Kind.TEXT),
        Column("element", Kind.TEXT),
        Column("kg", Kind.DECIMAL),
        Column("lines", Kind.INT),
        Column("element_kg", Kind.DECIMAL),
    ),
    key=(),
    row=Total,
)
COUNT = Table("counts", (Column("lines", Kind.INT, not_null=True),), key=(), row=int)
TRADER = Table("traders", (Column("actor_id", Kind.UUID),), key=(), row=lambda id: id)
#: The answers' shapes, for the per-database modules' decoders.
SHAPES = (LISTED, TOTAL, COUNT, TRADER)

# A value an event does not give is None and leaves the stored one alone; only a newer
# version of the batch changes a row (``revision`` for lines: a correction of a sale's
# time is newer than the sale), so a repeat is a no-op.
UPSERT_BATCH = upsert(BATCHES, keep_nulls=True, newer="version")
UPSERT_ELEMENT = upsert(ELEMENTS, newer="version")
UPSERT_LINE = upsert(LINES, keep_nulls=True, newer="revision")
UPSERT_PARTY = upsert(PARTIES)

_FROM_EXPORT = (
    "seller_id",
    "end_user",
    "destination_country",
    "customs_code",
    "licence_id",
    "controlled",
)


def _fill_receipt(dialect: Dialect) -> str:
    # The export a receipt answers is the batch's latest export before it: a batch
    # can be exported again after it was received. Run after UPSERT_LINE (the layout's
    # order), so an export and its receipt in one transaction find each other.
    columns = ", ".join(_FROM_EXPORT)
    return (
        f"UPDATE trade_lines SET ({columns}) = (SELECT "
        f"{', '.join('x.' + c for c in _FROM_EXPORT)} FROM trade_lines x "
        "WHERE x.batch_id = trade_lines.batch_id AND x.kind = 'export' "
        "AND x.version < trade_lines.version ORDER BY x.version DESC LIMIT 1) "
        f"WHERE batch_id = {dialect.param(Kind.UUID)} AND version = {dialect.param(Kind.INT)}"
    )


FILL_RECEIPT = Write(LINES, _fill_receipt)

#: Exact sum and product per database: (sum, product) templates.
EXACT_SQL = {"sqlite": ("dsum({})", "dmul({}, {})"), "postgres": ("SUM({})", "({} * {})")}

_KEYS: dict[str, str] = {
    "month": "l.month",
    "client": "l.client_id",
    "destination": "l.destination_country",
    "element": "e.element",
}


def _scope(where: LineFilter, by_element: bool) -> tuple[str, list[Any], bool]:
    """``FROM ... WHERE ...`` of the lines ``where`` covers ("?" for each parameter),
    its parameters, and whether element rows are joined (alias ``e``)."""
    sql = "FROM trade_lines l LEFT JOIN trade_batches b ON b.id = l.batch_id"
    params: list[Any] = []
    joined = by_element or bool(where.elements)
    if joined:
        if not by_element and len(where.elements) > 1:
            raise ValueError("lines not grouped by element are filtered by one element at most")
        sql += (
            " JOIN trade_elements e ON e.batch_id = l.batch_id"
            " AND e.version = b.composition_version"
        )
        if where.elements:
            sql += f" AND e.element IN ({_marks(where.elements)})"
            params += where.elements
    # A row with no kind is a correction that came before its line: not a line yet.
    conditions = ["l.kind IS NOT NULL"]
    if where.kinds:
        conditions.append(f"l.kind IN ({_marks(where.kinds)})")
        params += where.kinds
    for condition, value in (
        ("l.seller_id = ?", where.seller),
        ("l.client_id = ?", where.client),
        ("b.material = ?", where.material),
        ("l.destination_country = ?", where.country),
        ("l.month >= ?", where.from_month),
        ("l.month <= ?", where.to_month),
    ):
        if value is not None:
            conditions.append(condition)
            params.append(value)
    if where.party is not None:
        conditions.append("(l.seller_id = ? OR l.client_id = ?)")
        params += [where.party, where.party]
    return f"{sql} WHERE {' AND '.join(conditions)}", params, joined


def _marks(values: Sequence[Any]) -> str:
    return ", ".join("?" * len(values))


def _in(dialect: Dialect, sql: str) -> str:
    # The scope marks parameters "?" (no literal "?" appears in these statements).
    return sql.replace("?", dialect.placeholder)


def lines_query(where: LineFilter, limit: int, offset: int) -> tuple[Query[ListedLine], list[Any]]:
    scope, params, _ = _scope(where, by_element=False)
    columns = f"{LINES.select_list('l')}, b.reference, b.material, b.composition_version"

    def render(dialect: Dialect) -> str:
        return _in(
            dialect,
            f"SELECT {columns} {scope} ORDER BY l.occurred_at, l.batch_id, l.version "
            "LIMIT ? OFFSET ?",
        )

    return Query(LISTED, render), [*params, limit, offset]


def count_query(where: LineFilter) -> tuple[Query[int], list[Any]]:
    scope, params, _ = _scope(where, by_element=False)
    return Query(COUNT, lambda dialect: _in(dialect, f"SELECT COUNT(*) {scope}")), params


def totals_query(where: LineFilter, by: Sequence[Key]) -> tuple[Query[Total], list[Any]]:
    scope, params, joined = _scope(where, by_element="element" in by)

    def render(dialect: Dialect) -> str:
        total, product = EXACT_SQL[dialect.name]
        content = total.format(product.format("l.kg", "e.fraction")) if joined else "NULL"
        keys = [_KEYS[k] if k in by else "NULL" for k in _KEYS]
        select = ", ".join([*keys, total.format("l.kg"), "COUNT(*)", content])
        group = f" GROUP BY {', '.join(_KEYS[k] for k in by)}" if by else ""
        return _in(dialect, f"SELECT {select} {scope}{group}")

    return Query(TOTAL, render), params


def _traders(dialect: Dialect) -> str:
    # Whoever reported a line (a seller its sale, an exporter its shipment, a receiver
    # its receipt) or bought one: what a monthly declaration of theirs would show.
    month = dialect.param(Kind.TEXT)
    return (
        f"SELECT seller_id FROM trade_lines WHERE month = {month} "
        "AND kind IN ('sale', 'export') "
        f"UNION SELECT client_id FROM trade_lines WHERE month = {month} "
        "AND kind IN ('sale', 'receipt')"
    )


TRADERS = Query(TRADER, _traders)

_BATCH = attrgetter(*BATCHES.column_names)
_ELEMENT = attrgetter(*ELEMENTS.column_names)
_LINE = attrgetter(*LINES.column_names)
_PARTY = attrgetter(*PARTIES.column_names)


class _Writer:
    """Appends each row's values, in column order, to the transaction's buffer."""

    def __init__(self, buffer: Buffer) -> None:
        self._batches = buffer.rows[UPSERT_BATCH]
        self._elements = buffer.rows[UPSERT_ELEMENT]
        self._lines = buffer.rows[UPSERT_LINE]
        self._receipts = buffer.rows[FILL_RECEIPT]
        self._parties = buffer.rows[UPSERT_PARTY]

    def upsert_batch(self, row: TradedBatch) -> None:
        self._batches.append(_BATCH(row))

    def set_composition(self, rows: Sequence[Element]) -> None:
        self._elements += [_ELEMENT(row) for row in rows]

    def upsert_line(self, line: Line) -> None:
        self._lines.append(_LINE(line))

    def fill_receipt(self, batch_id: UUID, version: int) -> None:
        self._receipts.append((batch_id, version))

    def upsert_party(self, party: Party) -> None:
        self._parties.append(_PARTY(party))


LAYOUT: Layout[Writer] = Layout(
    NAME,
    VERSION,
    tables=(LINES, BATCHES, ELEMENTS, PARTIES),
    # In this order within a transaction: a receipt is filled after every line.
    writes=(UPSERT_BATCH, UPSERT_ELEMENT, UPSERT_LINE, FILL_RECEIPT, UPSERT_PARTY),
    writer=_Writer,
)


class TradesTables(TableView[Writer], TradesView):
    """The trade ledger's queries over its tables, the same on every database."""

    layout = LAYOUT

    def lines(self, where: LineFilter, limit: int, offset: int) -> list[ListedLine]:
        query, params = lines_query(where, limit, offset)
        return self._query(query, params)

    def count(self, where: LineFilter) -> int:
        query, params = count_query(where)
        return self._query(query, params)[0]

    def totals(self, where: LineFilter, by: Sequence[Key]) -> list[Total]:
        query, params = totals_query(where, by)
        return [t for t in self._query(query, params) if t.lines]

    def compositions(self, versions: Mapping[UUID, int]) -> dict[UUID, dict[str, Decimal]]:
        found: dict[UUID, dict[str, Decimal]] = {id: {} for id in versions}
        for row in self._rows_in(ELEMENTS, "batch_id", versions):
            if row.version == versions[row.batch_id]:
                found[row.batch_id][row.element] = row.fraction
        return found

    def parties(self, ids: Iterable[UUID]) -> dict[UUID, Party]:
        return {row.id: row for row in self._rows_in(PARTIES, "id", ids)}

    def traders(self, month: str) -> set[UUID]:
        return {id for id in self._query(TRADERS, (month, month)) if id is not None}
