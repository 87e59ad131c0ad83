"""The licences view on PostgreSQL. Everything but the database is in ``schema``; what
PostgreSQL does differently (native types, a pool, advisory locks, a schema of its own,
default ``licences``) is in :mod:`lodestone.projections.postgres`."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from lodestone.projections.licences.schema import LicencesTables, reading
from lodestone.projections.licences.view import Writer
from lodestone.projections.postgres import PostgresView


class PostgresLicencesView(PostgresView[Writer], LicencesTables):
    """``PostgresLicencesView(url, schema="licences")``: the licences' tables in that
    schema of that database."""

    @contextmanager
    def transaction(self, positions: Mapping[str, int]) -> Iterator[Writer]:
        with reading(super().transaction(positions), self) as writer:
            yield writer
