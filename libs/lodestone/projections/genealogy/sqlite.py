"""The genealogy view on SQLite (the embedded default). Everything but the database
is in ``schema``; what SQLite does differently (values as text, one locked connection,
long id lists read in chunks) is in :mod:`lodestone.projections.sqlite`."""

from __future__ import annotations

from lodestone.projections.genealogy.schema import GenealogyTables
from lodestone.projections.genealogy.view import Writer
from lodestone.projections.sqlite import SQLiteView


class SQLiteGenealogyView(SQLiteView[Writer], GenealogyTables):
    """``SQLiteGenealogyView(path)``: the genealogy's tables in that SQLite file."""
