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

import bisect
import functools
import json
from abc import abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar
from uuid import UUID

from lodestone.projections.base import View

if TYPE_CHECKING:
    from lodestone.projections.changes import Page
    from lodestone.projections.tracking import Session

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
    repeated or older event changes nothing; without it, update only if a value differs."""

    def render(dialect: Dialect) -> str:
        values = {
            c: f"COALESCE(excluded.{c}, {table.name}.{c})" if keep_nulls else f"excluded.{c}"
            for c in table.column_names
            if c not in table.key
        }
        if not values:  # nothing but the key: a repeat is a repeat
            return f"{_insert(table, dialect)} ON CONFLICT DO NOTHING"
        updates = ", ".join(f"{c} = {value}" for c, value in values.items())
        if newer:
            condition = f" WHERE excluded.{newer} > {table.name}.{newer}"
        else:
            # A row that would stay as it is is not written again: a repeat changes
            # nothing, not even the change log.
            differs = "IS DISTINCT FROM" if dialect.name == "postgres" else "IS NOT"
            condition = " WHERE " + " OR ".join(
                f"{value} {differs} {table.name}.{c}" for c, value in values.items()
            )
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
    rows (an executemany) when the transaction commits.

    ``mark(source, position)`` notes where the events written from then on came from,
    so that the change log can say which event wrote each row."""

    def __init__(self, writes: Sequence[Write]) -> None:
        self.rows: dict[Write, list[Row]] = {write: [] for write in writes}
        self._writes = tuple(self.rows)
        self._marks: list[tuple[str, int]] = []
        self._starts: list[tuple[int, ...]] = []  # per mark, each write's row count then

    def mark(self, source: str, position: int) -> None:
        self._marks.append((source, position))
        self._starts.append(tuple(len(self.rows[w]) for w in self._writes))

    def origins(self, write: Write, default: tuple[str, int]) -> Callable[[int], tuple[str, int]]:
        """The (source, position) of the event that wrote ``write``'s row ``i``."""
        column = self._writes.index(write)
        starts = [start[column] for start in self._starts]
        marks = self._marks

        def origin(i: int) -> tuple[str, int]:
            found = bisect.bisect_right(starts, i) - 1
            return marks[found] if found >= 0 else default

        return origin


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


#: How many changes per projection a view keeps in its change log unless told otherwise.
DEFAULT_RETENTION = 100_000


class TableView(View[W]):
    """A view whose rows live in the tables of its ``layout``. The per-database base
    classes implement these two reads; a read model's queries are written once over
    them.

    They also keep the projection's change log (``lodestone.projections.changes``):
    every row a transaction writes is appended there in the same transaction, the
    newest ``change_retention`` kept (0: no change log). Readers of the log (streams,
    change-topic publishers) use ``changes`` and the methods below it."""

    layout: ClassVar[Layout[Any]]
    change_retention: int = DEFAULT_RETENTION

    @abstractmethod
    def _query(self, query: Query[R], params: Sequence[Any]) -> list[R]:
        """Rows of ``query`` (parameters as Python values)."""

    @abstractmethod
    def _rows_in(self, table: Table[R], column: str, values: Iterable[Any]) -> list[R]:
        """Rows of ``table`` whose ``column`` is one of ``values``, in no given order."""

    def _derive(self, session: Session, buffer: Buffer) -> None:
        """Rows the view computes from the rows it holds, in each write transaction after
        the projection's rows are written (so they are never out of step with them, in
        whatever order the events came): none, unless a read model says (the genealogy
        keeps each batch's provenance shares). Not in the change log."""
        return None

    # --- the change log ----------------------------------------------------------------

    @abstractmethod
    def changes(self, after: int, limit: int) -> Page:
        """At most ``limit`` changes of this projection after sequence number ``after``,
        in order, with the log's bounds, read in one snapshot on a connection of their
        own (a reader never waits for the projector's write lock, nor it for them)."""

    @abstractmethod
    def published(self, seq: int) -> None:
        """Note that a change-topic publisher has had changes up to ``seq`` acknowledged."""

    @abstractmethod
    def continue_after(self, seq: int) -> None:
        """Number changes after ``seq`` from now on (see ``changes.continue_after``)."""

    @abstractmethod
    def publishing(self) -> AbstractContextManager[bool]:
        """Holds, while open, the one right to publish this projection's changes (yields
        False if another process or thread holds it). A process that dies lets go."""

    @abstractmethod
    def switch_into(self, target: Any) -> Switched:
        """This view is a rebuilt copy: replace the rows, positions and version of the
        same projection at ``target`` (a SQLite file, a PostgreSQL schema of the same
        database) by its own, in one transaction, so that readers there see the whole
        old model until the commit and the whole new one after it. Its change log gets
        a reset marker."""

    @abstractmethod
    def discard(self) -> None:
        """Close this view and delete what holds it (its file, its schema): for a
        rebuilt copy once switched in, or given up."""


@dataclass(frozen=True)
class Switched:
    """What a switch replaced: the version the rows there had (None: there were none),
    their fingerprint if of the same version, and the positions before and after."""

    previous_version: int | None
    before: str | None
    positions_before: dict[str, int]
    positions: dict[str, int]


#: Exact types to_text meets millions of times in a rebuild: looked up by type first.
_AS_IS = frozenset({type(None), int, str, bool})
_TEXT: dict[type, Callable[[Any], str]] = {UUID: str, Decimal: str, datetime: datetime.isoformat}


def to_text(value: Any) -> Any:
    """A value as SQLite stores it: ints and text as they are, everything else text."""
    kind = type(value)
    if kind in _AS_IS:
        return value
    convert = _TEXT.get(kind)
    if convert is not None:
        return convert(value)
    if isinstance(value, int | str):
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
