"""The trade ledger's tables, described once for both databases, with the statements
that write them and the queries of :class:`TradesView` written over them. The
``sqlite`` and ``postgres`` modules only pick the database.

Masses are summed and multiplied in SQL, exactly: NUMERIC on PostgreSQL; on SQLite,
where decimals are text, by the ``dsum`` and ``dmul`` functions its view registers
(Python's decimals: SQLite's own arithmetic is binary floating point).

Each line's element content is kept with it (``trade_contents``: one row per line and
element, with the line's kind, parties, destination, material, month and mass), written
when the projection records the line and rewritten whenever the batch's lines or
composition change, so that totals by element and the export dashboard are one
aggregate over one table and nothing is multiplied when read.

Totals are kept as rows too (``trade_totals``, see ``KeptTotal``): after each write
transaction the view subtracts what each batch it touched added before (kept per batch
in ``trade_batch_totals``) and adds what its lines and content rows add now, by exact
addition in SQL, so a total reads a few rows whatever order the events came in.
Totals that name a company (seller, client, an operator's own lines) keep the query
over the lines.

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
    SQLITE,
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
    to_text,
    upsert,
)
from lodestone.projections.tracking import Session
from lodestone.projections.trades.projection import NAME, VERSION
from lodestone.projections.trades.rows import (
    BatchTotal,
    Content,
    Element,
    KeptTotal,
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
CONTENTS = Table(
    "trade_contents",
    (
        Column("line", Kind.TEXT, not_null=True),
        Column("element", Kind.TEXT, not_null=True),
        Column("batch_id", Kind.UUID, not_null=True),
        Column("version", Kind.INT, not_null=True),
        Column("kind", Kind.TEXT),
        Column("seller_id", Kind.UUID),
        Column("client_id", Kind.UUID),
        Column("destination_country", Kind.TEXT),
        Column("material", Kind.TEXT),
        Column("month", Kind.TEXT),
        Column("line_kg", Kind.DECIMAL),
        Column("kg", Kind.DECIMAL),
    ),
    key=("line", "element"),
    row=Content,
    indexes=(
        # Totals by element and the dashboard: an element (or the seven controlled
        # ones), a kind, a period.
        Index("trade_contents_by_element", ("element", "kind", "month")),
        Index("trade_contents_by_seller", ("seller_id",)),
        Index("trade_contents_by_client", ("client_id",)),
    ),
)
_TOTAL_KEY = ("dimension", "key", "element", "kind", "month", "material")
_TOTAL_COLUMNS = (
    Column("id", Kind.TEXT, not_null=True),
    *(Column(name, Kind.TEXT, not_null=True) for name in _TOTAL_KEY),
    Column("kg", Kind.DECIMAL),
    Column("lines", Kind.INT, not_null=True),
    Column("element_kg", Kind.DECIMAL),
)
#: Totals kept as rows (see ``KeptTotal``): written by the view after the projection's
#: rows (``_derive``), not in the change log (a total names clients by id).
KEPT = Table("trade_totals", _TOTAL_COLUMNS, key=("id",), row=KeptTotal)
BATCH_TOTALS = Table(
    "trade_batch_totals",
    (Column("batch_id", Kind.UUID, not_null=True), *_TOTAL_COLUMNS),
    key=("batch_id", "id"),
    row=BatchTotal,
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


def line_key(batch_id: UUID, version: int) -> str:
    """A line's ``trade_contents.line``: the same text :func:`_line_sql` writes."""
    return f"{batch_id}/{version}"


def _line_sql(dialect: Dialect, alias: str) -> str:
    # SQLite keeps ids as their text already; PostgreSQL's UUID text is the same form.
    batch = f"{alias}.batch_id" if dialect.name == "sqlite" else f"{alias}.batch_id::text"
    return f"{batch} || '/' || {alias}.version"


#: What a content row takes from its line, its batch and its element row.
_CONTENT_FROM = {
    "batch_id": "l.batch_id",
    "version": "l.version",
    # An element the batch's composition no longer has (an older version's row):
    # no longer the line's.
    "kind": "CASE WHEN e.version = b.composition_version THEN l.kind END",
    "seller_id": "l.seller_id",
    "client_id": "l.client_id",
    "destination_country": "l.destination_country",
    "material": "b.material",
    "month": "l.month",
    "line_kg": "l.kg",
}


def _refresh_contents(dialect: Dialect) -> str:
    # Every line of the batch times every element row of it, run last in a
    # transaction (the layout's order), so it reads the lines, receipts and composition
    # as the transaction leaves them. Only a row that differs is written (and logged).
    _, product = EXACT_SQL[dialect.name]
    values = {
        "line": _line_sql(dialect, "l"),
        "element": "e.element",
        **_CONTENT_FROM,
        "kg": product.format("l.kg", "e.fraction"),
    }
    differs = "IS DISTINCT FROM" if dialect.name == "postgres" else "IS NOT"
    updated = [c for c in CONTENTS.column_names if c not in CONTENTS.key]
    return (
        f"INSERT INTO {CONTENTS.name} ({', '.join(values)}) "
        f"SELECT {', '.join(values.values())} "
        "FROM trade_lines l JOIN trade_batches b ON b.id = l.batch_id "
        "JOIN trade_elements e ON e.batch_id = l.batch_id "
        f"WHERE l.batch_id = {dialect.param(Kind.UUID)} "
        f"ON CONFLICT ({', '.join(CONTENTS.key)}) DO UPDATE SET "
        + ", ".join(f"{c} = excluded.{c}" for c in updated)
        + " WHERE "
        + " OR ".join(f"excluded.{c} {differs} {CONTENTS.name}.{c}" for c in updated)
    )


REFRESH_CONTENTS = Write(CONTENTS, _refresh_contents)

#: Exact sum and product per database: (sum, product) templates.
EXACT_SQL = {"sqlite": ("dsum({})", "dmul({}, {})"), "postgres": ("SUM({})", "({} * {})")}

# --- totals kept as rows -----------------------------------------------------------------
# After each transaction, per batch it touched: its old contribution (trade_batch_totals)
# is subtracted from the kept totals, its new one computed from its lines and content
# rows as the transaction leaves them, stored, and added. A kept total is then the sum
# over batches of what their rows add now, whatever order or batching brought them.

#: Exact addition (NULL only where both are) and negation per database.
#: Sums spelt without trailing zeros (see the SQLite view's ``dadd``).
_ADD = {"sqlite": "dadd({a}, {b})", "postgres": "trim_scale(COALESCE({a} + {b}, {a}, {b}))"}
_NEG = {"sqlite": "dneg({})", "postgres": "(-{})"}
_TOTAL_VALUES = ("kg", "lines", "element_kg")


def _text_id(dialect: Dialect, column: str) -> str:
    return column if dialect.name == "sqlite" else f"{column}::text"


def _batch_contribution(dialect: Dialect) -> str:
    total, _ = EXACT_SQL[dialect.name]

    def plain(value: str) -> str:
        return _ADD[dialect.name].format(a=value, b="NULL")

    p = dialect.placeholder
    none = "NULL" if dialect.name == "sqlite" else "CAST(NULL AS NUMERIC)"
    # The same rows the totals queries read: lines with a kind (the batch's row joined
    # for the material), content rows with a kind.
    lines = (
        "SELECT l.batch_id, l.kind, COALESCE(l.month, '') AS month, "
        "COALESCE(b.material, '') AS material, "
        f"COALESCE({_text_id(dialect, 'l.client_id')}, '') AS client, "
        "COALESCE(l.destination_country, '') AS destination, '' AS element, "
        f"l.kg AS kg, {none} AS element_kg "
        "FROM trade_lines l LEFT JOIN trade_batches b ON b.id = l.batch_id "
        f"WHERE l.batch_id = {p} AND l.kind IS NOT NULL"
    )
    contents = (
        "SELECT c.batch_id, c.kind, COALESCE(c.month, ''), COALESCE(c.material, ''), "
        f"COALESCE({_text_id(dialect, 'c.client_id')}, ''), "
        "COALESCE(c.destination_country, ''), c.element, c.line_kg, c.kg "
        f"FROM trade_lines l JOIN {CONTENTS.name} c ON c.line = {_line_sql(dialect, 'l')} "
        f"WHERE l.batch_id = {p} AND c.kind IS NOT NULL"
    )
    dimensions = "(SELECT '' AS dimension UNION ALL SELECT 'client' UNION ALL SELECT 'destination')"
    key = (
        "CASE d.dimension WHEN 'client' THEN s.client "
        "WHEN 'destination' THEN s.destination ELSE '' END"
    )
    return (
        f"INSERT INTO {BATCH_TOTALS.name} ({', '.join(BATCH_TOTALS.column_names)}) "
        f"SELECT s.batch_id, {_joined(['d.dimension', key, *_SOURCE_KEY])}, "
        f"d.dimension, {key}, s.element, s.kind, s.month, s.material, "
        f"{plain(total.format('s.kg'))}, COUNT(*), {plain(total.format('s.element_kg'))} "
        f"FROM ({lines} UNION ALL {contents}) s CROSS JOIN {dimensions} d "
        "WHERE s.kind IS NOT NULL GROUP BY 1, 2, 3, 4, 5, 6, 7, 8"
    )


_SOURCE_KEY = ("s.element", "s.kind", "s.month", "s.material")


def _joined(parts: Sequence[str]) -> str:
    return " || '|' || ".join(parts)


def _apply_contribution(dialect: Dialect, negate: bool) -> str:
    def value(column: str) -> str:
        if not negate:
            return column
        return f"-{column}" if column == "lines" else _NEG[dialect.name].format(column)

    updates = ", ".join(
        f"{c} = "
        + (
            f"{KEPT.name}.lines + excluded.lines"
            if c == "lines"
            else _ADD[dialect.name].format(a=f"{KEPT.name}.{c}", b=f"excluded.{c}")
        )
        for c in _TOTAL_VALUES
    )
    return (
        f"INSERT INTO {KEPT.name} ({', '.join(KEPT.column_names)}) "
        f"SELECT id, {', '.join(_TOTAL_KEY)}, {', '.join(value(c) for c in _TOTAL_VALUES)} "
        f"FROM {BATCH_TOTALS.name} WHERE batch_id = {dialect.placeholder} "
        f"ON CONFLICT (id) DO UPDATE SET {updates}"
    )


def _forget_contribution(dialect: Dialect) -> str:
    return f"DELETE FROM {BATCH_TOTALS.name} WHERE batch_id = {dialect.placeholder}"


def _drop_emptied(dialect: Dialect) -> str:
    # A total the batch's subtraction left with no line goes: whether it was ever
    # written depends on how the events were grouped into transactions.
    return (
        f"DELETE FROM {KEPT.name} WHERE lines = 0 AND EXISTS (SELECT 1 FROM "
        f"{BATCH_TOTALS.name} o WHERE o.batch_id = {dialect.placeholder} "
        f"AND o.id = {KEPT.name}.id)"
    )


def keep_totals(session: Session, batches: Iterable[UUID]) -> None:
    """Bring the kept totals up to date with ``batches``' rows, in the transaction
    that wrote them."""
    dialect = session.dialect
    ids = [(to_text(b),) if dialect.name == "sqlite" else (b,) for b in dict.fromkeys(batches)]
    if not ids:
        return
    session.executemany(_apply_contribution(dialect, negate=True), ids)
    session.executemany(_drop_emptied(dialect), ids)
    session.executemany(_forget_contribution(dialect), ids)
    session.executemany(_batch_contribution(dialect), [(*i, *i) for i in ids])
    session.executemany(_apply_contribution(dialect, negate=False), ids)


def kept_dimension(where: LineFilter, by: Sequence[Key]) -> str | None:
    """The dimension of the kept totals that answers ``where`` grouped ``by``; None if
    none can (a seller, a client, a party named, or both a client and a country)."""
    if where.seller is not None or where.client is not None or where.party is not None:
        return None
    if "client" in by:
        return None if "destination" in by or where.country is not None else "client"
    if "destination" in by or where.country is not None:
        return "destination"
    return ""


def kept_totals_query(
    where: LineFilter, by: Sequence[Key], dimension: str
) -> tuple[Query[Total], list[Any]]:
    """The totals of ``totals_query`` summed from the kept rows of ``dimension``."""
    by_content = "element" in by or bool(where.elements)
    conditions = ["t.dimension = ?"]
    params: list[Any] = [dimension]
    if where.elements:
        conditions.append(f"t.element IN ({_marks(where.elements)})")
        params += where.elements
    else:
        conditions.append("t.element <> ''" if by_content else "t.element = ''")
    if where.kinds:
        conditions.append(f"t.kind IN ({_marks(where.kinds)})")
        params += where.kinds
    for condition, value in (
        ("t.key = ?", where.country),
        ("t.material = ?", where.material),
        ("t.month >= ?", where.from_month),
        ("t.month <= ?", where.to_month),
    ):
        if value is not None:
            conditions.append(condition)
            params.append(value)

    def render(dialect: Dialect) -> str:
        total, _ = EXACT_SQL[dialect.name]
        client = "NULLIF(t.key, '')" if dialect.name == "sqlite" else "NULLIF(t.key, '')::uuid"
        columns = {
            "month": ("t.month", "t.month"),
            "client": (client, "t.key"),
            "destination": ("NULLIF(t.key, '')", "t.key"),
            "element": ("t.element", "t.element"),
        }
        keys = [columns[k][0] if k in by else "NULL" for k in _KEYS]
        content = total.format("t.element_kg") if by_content else "NULL"
        select = ", ".join([*keys, total.format("t.kg"), "COALESCE(SUM(t.lines), 0)", content])
        group = f" GROUP BY {', '.join(columns[k][1] for k in by)}" if by else ""
        return _in(
            dialect,
            f"SELECT {select} FROM {KEPT.name} t WHERE {' AND '.join(conditions)}{group}",
        )

    return Query(TOTAL, render), params


_KEYS = ("month", "client", "destination", "element")
_KEY_COLUMNS = {
    "month": "month",
    "client": "client_id",
    "destination": "destination_country",
    "element": "element",
}


def _conditions(where: LineFilter, alias: str) -> tuple[list[str], list[Any]]:
    """The conditions of ``where`` but its elements over lines (``alias`` ``l``, the
    batch's row joined as ``b``) or content rows (``c``, which carry the material)."""
    material = "c.material" if alias == "c" else "b.material"
    # A row with no kind is not a line (yet, or any more): see ``Content``.
    conditions = [f"{alias}.kind IS NOT NULL"]
    params: list[Any] = []
    if where.kinds:
        conditions.append(f"{alias}.kind IN ({_marks(where.kinds)})")
        params += where.kinds
    for condition, value in (
        (f"{alias}.seller_id = ?", where.seller),
        (f"{alias}.client_id = ?", where.client),
        (f"{material} = ?", where.material),
        (f"{alias}.destination_country = ?", where.country),
        (f"{alias}.month >= ?", where.from_month),
        (f"{alias}.month <= ?", where.to_month),
    ):
        if value is not None:
            conditions.append(condition)
            params.append(value)
    if where.party is not None:
        conditions.append(f"({alias}.seller_id = ? OR {alias}.client_id = ?)")
        params += [where.party, where.party]
    return conditions, params


def _line_scope(dialect: Dialect, where: LineFilter) -> tuple[str, list[Any]]:
    """``FROM ... WHERE ...`` of the lines ``where`` covers ("?" for each parameter)
    and its parameters; a line with ``where``'s element has a content row of it."""
    conditions, params = _conditions(where, "l")
    if where.elements:
        if len(where.elements) > 1:
            raise ValueError("lines not grouped by element are filtered by one element at most")
        conditions.insert(
            0,
            f"EXISTS (SELECT 1 FROM {CONTENTS.name} c WHERE c.line = {_line_sql(dialect, 'l')} "
            "AND c.element = ? AND c.kind IS NOT NULL)",
        )
        params.insert(0, where.elements[0])
    sql = "FROM trade_lines l LEFT JOIN trade_batches b ON b.id = l.batch_id"
    return f"{sql} WHERE {' AND '.join(conditions)}", params


def _content_scope(where: LineFilter) -> tuple[str, list[Any]]:
    """The same over content rows: one per line and element of its batch."""
    conditions, params = _conditions(where, "c")
    if where.elements:
        conditions.insert(0, f"c.element IN ({_marks(where.elements)})")
        params[:0] = where.elements
    return f"FROM {CONTENTS.name} c WHERE {' AND '.join(conditions)}", params


def _marks(values: Sequence[Any]) -> str:
    return ", ".join("?" * len(values))


def _in(dialect: Dialect, sql: str) -> str:
    # The scopes mark parameters "?" (no literal "?" appears in these statements).
    return sql.replace("?", dialect.placeholder)


def lines_query(where: LineFilter, limit: int, offset: int) -> tuple[Query[ListedLine], list[Any]]:
    columns = f"{LINES.select_list('l')}, b.reference, b.material, b.composition_version"

    def render(dialect: Dialect) -> str:
        scope, _ = _line_scope(dialect, where)
        return _in(
            dialect,
            f"SELECT {columns} {scope} ORDER BY l.occurred_at, l.batch_id, l.version "
            "LIMIT ? OFFSET ?",
        )

    return Query(LISTED, render), [*_line_scope(SQLITE, where)[1], limit, offset]


def count_query(where: LineFilter) -> tuple[Query[int], list[Any]]:
    def render(dialect: Dialect) -> str:
        return _in(dialect, f"SELECT COUNT(*) {_line_scope(dialect, where)[0]}")

    return Query(COUNT, render), _line_scope(SQLITE, where)[1]


def totals_query(where: LineFilter, by: Sequence[Key]) -> tuple[Query[Total], list[Any]]:
    """Grouped by element or filtered on one: an aggregate over the content rows (each
    line once per element, with its mass and its content of that element); else over
    the lines."""
    by_content = "element" in by or bool(where.elements)
    if "element" not in by and len(where.elements) > 1:
        raise ValueError("lines not grouped by element are filtered by one element at most")
    if not by_content:
        scope, params = _line_scope(SQLITE, where)
    else:
        scope, params = _content_scope(where)
    alias = "c" if by_content else "l"

    def render(dialect: Dialect) -> str:
        total, _ = EXACT_SQL[dialect.name]
        mass = total.format(f"{alias}.line_kg" if by_content else "l.kg")
        content = total.format("c.kg") if by_content else "NULL"
        keys = [f"{alias}.{_KEY_COLUMNS[k]}" if k in by else "NULL" for k in _KEYS]
        select = ", ".join([*keys, mass, "COUNT(*)", content])
        group = f" GROUP BY {', '.join(f'{alias}.{_KEY_COLUMNS[k]}' for k in by)}" if by else ""
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
        self._contents = buffer.rows[REFRESH_CONTENTS]
        self._refreshed: set[UUID] = set()

    def upsert_batch(self, row: TradedBatch) -> None:
        self._batches.append(_BATCH(row))

    def set_composition(self, rows: Sequence[Element]) -> None:
        self._elements += [_ELEMENT(row) for row in rows]
        if rows:
            self._refresh(rows[0].batch_id)

    def upsert_line(self, line: Line) -> None:
        self._lines.append(_LINE(line))
        self._refresh(line.batch_id)

    def _refresh(self, batch_id: UUID) -> None:
        # Once per batch and transaction: the statement runs after every other write
        # of the transaction and reads the batch as the transaction leaves it.
        if batch_id not in self._refreshed:
            self._refreshed.add(batch_id)
            self._contents.append((batch_id,))

    def fill_receipt(self, batch_id: UUID, version: int) -> None:
        self._receipts.append((batch_id, version))

    def upsert_party(self, party: Party) -> None:
        self._parties.append(_PARTY(party))


LAYOUT: Layout[Writer] = Layout(
    NAME,
    VERSION,
    tables=(LINES, BATCHES, ELEMENTS, CONTENTS, PARTIES, KEPT, BATCH_TOTALS),
    # In this order within a transaction: a receipt is filled after every line, and
    # the contents are written from all of them.
    writes=(
        UPSERT_BATCH,
        UPSERT_ELEMENT,
        UPSERT_LINE,
        FILL_RECEIPT,
        UPSERT_PARTY,
        REFRESH_CONTENTS,
    ),
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
        dimension = kept_dimension(where, by)
        if dimension is not None:
            query, params = kept_totals_query(where, by, dimension)
        return [t for t in self._query(query, params) if t.lines]

    def _derive(self, session: Session, buffer: Buffer) -> None:
        # Every batch whose lines or content rows the transaction may have changed.
        keep_totals(session, (row[0] for row in buffer.rows[REFRESH_CONTENTS]))

    def compositions(self, versions: Mapping[UUID, int]) -> dict[UUID, dict[str, Decimal]]:
        found: dict[UUID, dict[str, Decimal]] = {id: {} for id in versions}
        for row in self._rows_in(ELEMENTS, "batch_id", versions):
            if row.version == versions[row.batch_id]:
                found[row.batch_id][row.element] = row.fraction
        return found

    def contents(
        self, lines: Iterable[tuple[UUID, int]]
    ) -> dict[tuple[UUID, int], dict[str, Decimal]]:
        found: dict[tuple[UUID, int], dict[str, Decimal]] = {line: {} for line in lines}
        keys = {line_key(*line): line for line in found}
        for row in self._rows_in(CONTENTS, "line", keys):
            if row.kind is not None and row.kg is not None:
                found[keys[row.line]][row.element] = row.kg
        return found

    def parties(self, ids: Iterable[UUID]) -> dict[UUID, Party]:
        return {row.id: row for row in self._rows_in(PARTIES, "id", ids)}

    def traders(self, month: str) -> set[UUID]:
        return {id for id in self._query(TRADERS, (month, month)) if id is not None}
