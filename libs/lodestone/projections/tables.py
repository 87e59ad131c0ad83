"""A read model's tables described once; each database's DDL, statements and value
conversion derived from that description.

A table is a list of typed columns, a key and indexes. The kinds are what Lodestone
stores: ids, text, integers, exact decimals, instants and compositions (element ->
mass fraction). SQLite stores ids, decimals, instants and compositions as text
(decimals as ``str``, instants as ISO 8601, compositions as sorted JSON with string
values, so masses stay exact); PostgreSQL as UUID, NUMERIC, TIMESTAMPTZ and JSONB.
:func:`to_text` is that text form (it also renders PostgreSQL's values for a fingerprint
equal to SQLite's) and ``FROM_TEXT`` reads it back.

No SQL driver here: the per-database modules (``sqlite``, ``postgres``) run what this
module writes.
"""

from __future__ import annotations

import functools
import json
from abc import abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, ClassVar, Generic, TypeVar
from uuid import UUID

from lodestone.projections.base import View

R = TypeVar("R")
W = TypeVar("W")
Row = tuple[Any, ...]


class Kind(StrEnum):
    UUID = "uuid"
    TEXT = "text"
    INT = "int"
    DECIMAL = "decimal"
    TIME = "time"
    COMPOSITION = "composition"


@dataclass(frozen=True)
class Dialect:
    name: str
    placeholder: str
    types: dict[Kind, str]
    casts: bool  # whether a parameter compared with a typed column needs a cast

    def param(self, kind: Kind) -> str:
        return f"{self.placeholder}::{self.types[kind]}" if self.casts else self.placeholder


SQLITE = Dialect(
    "sqlite",
    "?",
    {
        Kind.UUID: "TEXT",
        Kind.TEXT: "TEXT",
        Kind.INT: "INTEGER",
        Kind.DECIMAL: "TEXT",
        Kind.TIME: "TEXT",
        Kind.COMPOSITION: "TEXT",
    },
    casts=False,
)
POSTGRES = Dialect(
    "postgres",
    "%s",
    {
        Kind.UUID: "UUID",
        Kind.TEXT: "TEXT",
        Kind.INT: "BIGINT",
        Kind.DECIMAL: "NUMERIC",
        Kind.TIME: "TIMESTAMPTZ",
        Kind.COMPOSITION: "JSONB",
    },
    casts=True,
)


@dataclass(frozen=True)
class Column:
    name: str
    kind: Kind
    not_null: bool = False
    default: Any = None  # what a NULL reads back as ("" for a trade without a contract)


@dataclass(frozen=True)
class Index:
    name: str
    columns: tuple[str, ...]


@dataclass(frozen=True, eq=False)
class Table(Generic[R]):
    """``row`` builds the row type from the column values in column order."""

    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    row: Callable[..., R]
    indexes: tuple[Index, ...] = ()

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def select_list(self, alias: str = "") -> str:
        prefix = f"{alias}." if alias else ""
        return ", ".join(prefix + c.name for c in self.columns)

    def create(self, dialect: Dialect) -> str:
        columns = [
            f"{c.name} {dialect.types[c.kind]}{' NOT NULL' if c.not_null else ''}"
            for c in self.columns
        ]
        return (
            f"CREATE TABLE IF NOT EXISTS {self.name} ("
            f"{', '.join(columns)}, PRIMARY KEY ({', '.join(self.key)}))"
        )

    def create_indexes(self) -> list[str]:
        return [
            f"CREATE INDEX IF NOT EXISTS {index.name} ON {self.name} ({', '.join(index.columns)})"
            for index in self.indexes
        ]

    def add_column(self, column: Column, dialect: Dialect) -> str:
        """For a table made before ``column`` existed; its old rows read NULL there."""
        if column.not_null:
            raise ValueError(f"{self.name}.{column.name}: a column added later must allow NULL")
        return f"ALTER TABLE {self.name} ADD COLUMN {column.name} {dialect.types[column.kind]}"


@dataclass(frozen=True, eq=False)
class Write:
    """One write statement into one table, taking a row's values in column order."""

    table: Table[Any]
    render: Callable[[Dialect], str]


def insert_new(table: Table[Any]) -> Write:
    """Insert, or leave the row already under that key as it is (a repeat)."""

    def render(dialect: Dialect) -> str:
        return f"{_insert(table, dialect)} ON CONFLICT DO NOTHING"

    return Write(table, render)


def upsert(table: Table[Any], *, keep_nulls: bool = False, newer: str | None = None) -> Write:
    """Insert, or update the row under that key. ``keep_nulls``: a NULL value leaves
    the stored one alone. ``newer``: update only if that column grows (a version), so a
    repeated or older event changes nothing."""

    def render(dialect: Dialect) -> str:
        updates = ", ".join(
            f"{c} = COALESCE(excluded.{c}, {table.name}.{c})"
            if keep_nulls
            else f"{c} = excluded.{c}"
            for c in table.column_names
            if c not in table.key
        )
        condition = f" WHERE excluded.{newer} > {table.name}.{newer}" if newer else ""
        return (
            f"{_insert(table, dialect)} ON CONFLICT ({', '.join(table.key)}) "
            f"DO UPDATE SET {updates}{condition}"
        )

    return Write(table, render)


def _insert(table: Table[Any], dialect: Dialect) -> str:
    marks = ", ".join([dialect.placeholder] * len(table.columns))
    return f"INSERT INTO {table.name} ({', '.join(table.column_names)}) VALUES ({marks})"


@dataclass(frozen=True, eq=False)
class Query(Generic[R]):
    """A select of ``table``'s columns, in column order, written for a dialect."""

    table: Table[R]
    render: Callable[[Dialect], str]


class Buffer:
    """The rows a projection wrote in one transaction, per statement, in the order it
    wrote them: within a table the order matters (a batch's version 2 must not overtake
    its version 1), across tables it does not, so each statement runs once over its
    rows (an executemany) when the transaction commits."""

    def __init__(self, writes: Sequence[Write]) -> None:
        self.rows: dict[Write, list[Row]] = {write: [] for write in writes}


@dataclass(frozen=True, eq=False)
class Layout(Generic[W]):
    """A projection's tables in any database: what a view of it creates, fills, empties
    and fingerprints. ``writer`` makes the projection's writer over a transaction's
    buffer."""

    projection: str
    version: int
    tables: tuple[Table[Any], ...]
    writes: tuple[Write, ...]
    writer: Callable[[Buffer], W]


class TableView(View[W]):
    """A view whose rows live in the tables of its ``layout``. The per-database base
    classes implement these two reads; a read model's queries are written once over
    them."""

    layout: ClassVar[Layout[Any]]

    @abstractmethod
    def _query(self, query: Query[R], params: Sequence[Any]) -> list[R]:
        """Rows of ``query`` (parameters as Python values)."""

    @abstractmethod
    def _rows_in(self, table: Table[R], column: str, values: Iterable[Any]) -> list[R]:
        """Rows of ``table`` whose ``column`` is one of ``values``, in no given order."""


def to_text(value: Any) -> Any:
    """A value as SQLite stores it: ints and text as they are, everything else text."""
    if value is None or isinstance(value, int | str):
        return value
    if isinstance(value, dict):
        return json.dumps({k: str(v) for k, v in value.items()}, sort_keys=True)
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def decoder(table: Table[R], kinds: Mapping[Kind, Callable[[Any], Any]]) -> Callable[[Row], R]:
    """Builds ``table``'s row type from a database row: each value read by its kind's
    function (none: as it is), then a NULL replaced by the column's default."""
    steps = [(i, step) for i, c in enumerate(table.columns) if (step := _step(c, kinds))]
    make = table.row

    def decode(values: Row) -> R:
        found = list(values)
        for i, step in steps:
            found[i] = step(found[i])
        return make(*found)

    return decode


def _step(
    column: Column, kinds: Mapping[Kind, Callable[[Any], Any]]
) -> Callable[[Any], Any] | None:
    read = kinds.get(column.kind)
    default = column.default
    if default is None:
        return read
    if read is None:
        return lambda value: default if value is None else value
    return lambda value: default if value is None else read(value)


@functools.lru_cache(maxsize=1 << 18)
def parse_uuid(value: str) -> UUID:
    # Parsing a UUID costs microseconds and the same ids (facilities, actors, batches
    # met again as edge ends) recur in every trace: parse each once.
    return UUID(value)


def _composition(text: str) -> dict[str, Decimal]:
    return {k: Decimal(v) for k, v in json.loads(text).items()}


FROM_TEXT: dict[Kind, Callable[[Any], Any]] = {
    Kind.UUID: lambda v: parse_uuid(v) if v else None,
    Kind.DECIMAL: lambda v: Decimal(v) if v else None,
    Kind.TIME: lambda v: datetime.fromisoformat(v) if v else None,
    Kind.COMPOSITION: lambda v: _composition(v) if v else None,
}
