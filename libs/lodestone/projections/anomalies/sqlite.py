"""The anomalies view on SQLite (the embedded default). Everything but the database is
in ``schema``; what SQLite does differently is in :mod:`lodestone.projections.sqlite`."""

from __future__ import annotations

from lodestone.projections.anomalies.schema import AnomaliesTables
from lodestone.projections.anomalies.view import Writer
from lodestone.projections.sqlite import SQLiteView


class SQLiteAnomaliesView(SQLiteView[Writer], AnomaliesTables):
    """``SQLiteAnomaliesView(path)``: the anomalies' tables in that SQLite file."""
