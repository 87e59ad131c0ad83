"""The genealogy view on PostgreSQL. Everything but the database is in ``schema``;
what PostgreSQL does differently (native types, a pool, advisory locks, a schema of
its own, default ``genealogy``) is in :mod:`lodestone.projections.postgres`."""

from __future__ import annotations

from lodestone.projections.genealogy.schema import GenealogyTables
from lodestone.projections.genealogy.view import Writer
from lodestone.projections.postgres import PostgresView


class PostgresGenealogyView(PostgresView[Writer], GenealogyTables):
    """``PostgresGenealogyView(url, schema="genealogy")``: the genealogy's tables in
    that schema of that database."""
