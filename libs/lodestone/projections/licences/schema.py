"""The licences' tables, described once for both databases, with the statements that
write them, the writer that reads a licence back while the projection writes, and the
queries of :class:`LicencesView` written over them. The ``sqlite`` and ``postgres``
modules only pick the database.

Each table's columns are its row type's fields, in order (a test holds them equal);
every table's first two columns are unique together (the fingerprint orders by them).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from operator import attrgetter
from typing import Protocol
from uuid import UUID

from lodestone.projections.licences.projection import NAME, VERSION
from lodestone.projections.licences.rows import Draw, LicenceRow, Party
from lodestone.projections.licences.view import LicencesView, Writer
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
    upsert,
)

LICENCES = Table(
    "licences",
    (
        Column("id", Kind.UUID, not_null=True),
        Column("version", Kind.INT, not_null=True),
        Column("number", Kind.TEXT, not_null=True),
        Column("kind", Kind.TEXT, not_null=True),
        Column("holder_id", Kind.UUID, not_null=True),
        Column("max_kg", Kind.DECIMAL, not_null=True),
        Column("valid_from", Kind.TIME, not_null=True),
        Column("valid_until", Kind.TIME, not_null=True),
        Column("consignee_id", Kind.UUID),
        Column("end_user", Kind.TEXT, default=""),
        Column("end_use", Kind.TEXT, default=""),
        Column("destination_country", Kind.TEXT, default=""),
        Column("contract", Kind.TEXT, default=""),
        Column("items", Kind.TEXT, default="[]"),
        Column("issued_at", Kind.TIME, not_null=True),
        Column("drawn_kg", Kind.DECIMAL, not_null=True),
        Column("draws", Kind.INT, not_null=True),
    ),
    key=("id",),
    row=LicenceRow,
)
DRAWS = Table(
    "licence_draws",
    (
        Column("licence_id", Kind.UUID, not_null=True),
        Column("version", Kind.INT, not_null=True),
        Column("kind", Kind.TEXT, not_null=True),
        Column("cause", Kind.TEXT, not_null=True),
        Column("batch_id", Kind.UUID, not_null=True),
        Column("kg", Kind.DECIMAL, not_null=True),
        Column("occurred_at", Kind.TIME, not_null=True),
        Column("month", Kind.TEXT, not_null=True),
        Column("corrects_version", Kind.INT),
    ),
    key=("licence_id", "version"),
    row=Draw,
    indexes=(Index("licence_draws_by_month", ("month",)),),
)
PARTIES = Table(
    "licence_parties",
    (
        Column("id", Kind.UUID, not_null=True),
        Column("code", Kind.TEXT, not_null=True),
        Column("name", Kind.TEXT, default=""),
        Column("country", Kind.TEXT, default=""),
    ),
    key=("id",),
    row=Party,
)

# Only a newer version of a licence changes its row, so a repeat is a no-op.
SAVE_LICENCE = upsert(LICENCES, newer="version")
SAVE_DRAW = upsert(DRAWS)
SAVE_PARTY = upsert(PARTIES)


def _everything(table: Table[LicenceRow]) -> Query[LicenceRow]:
    def render(dialect: Dialect) -> str:
        return f"SELECT {table.select_list()} FROM {table.name} ORDER BY number"

    return Query(table, render)


ALL_LICENCES = _everything(LICENCES)

_LICENCE = attrgetter(*LICENCES.column_names)
_DRAW = attrgetter(*DRAWS.column_names)
_PARTY = attrgetter(*PARTIES.column_names)


class Stored(Protocol):
    def licences_by_id(self, ids: Iterable[UUID]) -> dict[UUID, LicenceRow]: ...
    def draws_of(self, ids: Iterable[UUID]) -> list[Draw]: ...


class _Writer:
    """Appends each row's values, in column order, to the transaction's buffer, and
    remembers the licences and draws it wrote, so that the projection reads its own
    writes before the stored rows."""

    def __init__(self, buffer: Buffer) -> None:
        self._licence_rows = buffer.rows[SAVE_LICENCE]
        self._draw_rows = buffer.rows[SAVE_DRAW]
        self._party_rows = buffer.rows[SAVE_PARTY]
        self._licences: dict[UUID, LicenceRow | None] = {}
        self._draws: dict[UUID, dict[int, Draw]] = {}
        self.stored: Stored | None = None  # set by the view's transaction

    def licence(self, id: UUID) -> LicenceRow | None:
        if id not in self._licences:
            self._licences[id] = self._store().licences_by_id([id]).get(id)
        return self._licences[id]

    def draws(self, licence_id: UUID) -> list[Draw]:
        found = {d.version: d for d in self._store().draws_of([licence_id])}
        found.update(self._draws.get(licence_id, {}))
        return sorted(found.values(), key=lambda d: d.version)

    def save_licence(self, row: LicenceRow) -> None:
        self._licences[row.id] = row
        self._licence_rows.append(_LICENCE(row))

    def save_draw(self, draw: Draw) -> None:
        self._draws.setdefault(draw.licence_id, {})[draw.version] = draw
        self._draw_rows.append(_DRAW(draw))

    def save_party(self, party: Party) -> None:
        self._party_rows.append(_PARTY(party))

    def _store(self) -> Stored:
        if self.stored is None:
            raise RuntimeError("the licences writer reads through its view's transaction")
        return self.stored


LAYOUT: Layout[Writer] = Layout(
    NAME,
    VERSION,
    tables=(LICENCES, DRAWS, PARTIES),
    writes=(SAVE_LICENCE, SAVE_DRAW, SAVE_PARTY),
    writer=_Writer,
)


@contextmanager
def reading(transaction: AbstractContextManager[Writer], stored: Stored) -> Iterator[Writer]:
    """A view's transaction whose writer reads back from ``stored`` (the view itself):
    committed rows, read outside the write lock; a licence's events are applied by one
    projector at a time, in order."""
    with transaction as writer:
        if not isinstance(writer, _Writer):
            raise TypeError(f"not the licences' writer: {writer!r}")
        writer.stored = stored
        yield writer


class LicencesTables(TableView[Writer], LicencesView):
    """The licences' queries over its tables, the same on every database."""

    layout = LAYOUT

    def licences(self) -> list[LicenceRow]:
        return self._query(ALL_LICENCES, ())

    def licences_by_id(self, ids: Iterable[UUID]) -> dict[UUID, LicenceRow]:
        return {row.id: row for row in self._rows_in(LICENCES, "id", ids)}

    def draws_of(self, ids: Iterable[UUID]) -> list[Draw]:
        draws = self._rows_in(DRAWS, "licence_id", ids)
        draws.sort(key=lambda d: (str(d.licence_id), d.version))
        return draws

    def parties(self, ids: Iterable[UUID]) -> dict[UUID, Party]:
        return {row.id: row for row in self._rows_in(PARTIES, "id", ids)}
