"""The anomalies view on PostgreSQL (schema ``anomalies`` by default). Everything but the
database is in ``schema``; what PostgreSQL does differently is in
:mod:`lodestone.projections.postgres`."""

from __future__ import annotations

from lodestone.projections.anomalies.schema import AnomaliesTables
from lodestone.projections.anomalies.view import Writer
from lodestone.projections.postgres import PostgresView


class PostgresAnomaliesView(PostgresView[Writer], AnomaliesTables):
    """``PostgresAnomaliesView(url, schema="anomalies")``: the anomalies' tables there."""
