"""The licences view on SQLite (the embedded default). Everything but the database is
in ``schema``; what SQLite does differently is in :mod:`lodestone.projections.sqlite`."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from lodestone.projections.licences.schema import LicencesTables, reading
from lodestone.projections.licences.view import Writer
from lodestone.projections.sqlite import SQLiteView


class SQLiteLicencesView(SQLiteView[Writer], LicencesTables):
    """``SQLiteLicencesView(path)``: the licences' tables in that SQLite file."""

    @contextmanager
    def transaction(self, positions: Mapping[str, int]) -> Iterator[Writer]:
        with reading(super().transaction(positions), self) as writer:
            yield writer
