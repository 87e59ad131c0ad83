"""Positions and versions of the projections that share one read-model database.

``tracking`` holds, per projection and source, how far the projection has come; it is
written in the same transaction as the projection's rows. ``projection_versions``
holds the version each projection's rows were written by: a view opened by another
version drops its tables and positions, so the projector rebuilds it from position 0
by itself (stop the projectors of the old version first: they would go on writing
into the new tables). Both are made, and a database of an earlier release migrated, by
:func:`prepare` when a view opens, in one transaction that the per-database module
serialises (SQLite's BEGIN IMMEDIATE, a PostgreSQL advisory lock).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Protocol

from lodestone.projections.tables import (
    Column,
    Dialect,
    Kind,
    Layout,
    Row,
    Table,
    insert_new,
    upsert,
)

log = logging.getLogger(__name__)

TRACKING = Table(
    "tracking",
    (
        Column("projection", Kind.TEXT, not_null=True),
        Column("source", Kind.TEXT, not_null=True),
        Column("position", Kind.INT, not_null=True),
    ),
    key=("projection", "source"),
    row=lambda *values: values,
)
VERSIONS = Table(
    "projection_versions",
    (Column("projection", Kind.TEXT, not_null=True), Column("version", Kind.INT, not_null=True)),
    key=("projection",),
    row=lambda *values: values,
)
SAVE_POSITION = upsert(TRACKING)
SAVE_VERSION = upsert(VERSIONS)

#: Before projections had names, ``tracking`` was (source, position) and its rows were
#: the positions of the genealogy projection at version 1, the only one there was.
UNNAMED = ("genealogy", 1)


class Session(Protocol):
    """One open write transaction on a read-model database."""

    dialect: Dialect

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None: ...
    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...
    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[Row]: ...
    def columns(self, table: str) -> list[str]:
        """The table's column names; none if there is no such table."""
        ...


def position_query(dialect: Dialect) -> str:
    p = dialect.placeholder
    return f"SELECT position FROM {TRACKING.name} WHERE projection = {p} AND source = {p}"


def forget_positions(dialect: Dialect) -> str:
    return f"DELETE FROM {TRACKING.name} WHERE projection = {dialect.placeholder}"


def prepare(session: Session, layout: Layout[Any]) -> bool:
    """Make what ``layout``'s view needs, keeping rows of its version and dropping
    rows of any other; whether it dropped them."""
    dialect = session.dialect
    session.execute(VERSIONS.create(dialect))
    _name_unnamed_positions(session)
    session.execute(TRACKING.create(dialect))
    found = session.rows(
        f"SELECT version FROM {VERSIONS.name} WHERE projection = {dialect.placeholder}",
        (layout.projection,),
    )
    stored = found[0][0] if found else None
    dropped = stored is not None and stored != layout.version
    if stored != layout.version:
        if stored is not None:
            log.warning(
                "read model %s holds rows of version %s, not %s: emptied, to be rebuilt "
                "from position 0",
                layout.projection,
                stored,
                layout.version,
            )
        # Rows of another version mean something else, and their tables may have
        # another shape: drop them rather than alter them.
        for table in layout.tables:
            session.execute(f"DROP TABLE IF EXISTS {table.name}")
        session.execute(forget_positions(dialect), (layout.projection,))
        session.execute(SAVE_VERSION.render(dialect), (layout.projection, layout.version))
    for table in layout.tables:
        existing = session.columns(table.name)
        session.execute(table.create(dialect))
        for column in table.columns:
            if existing and column.name not in existing:
                session.execute(table.add_column(column, dialect))
        for statement in table.create_indexes():
            session.execute(statement)
    return dropped


def _name_unnamed_positions(session: Session) -> None:
    columns = session.columns(TRACKING.name)
    if not columns or "projection" in columns:
        return
    name, version = UNNAMED
    log.info("tracking table of an earlier release: its positions become %s's", name)
    positions = session.rows(f"SELECT source, position FROM {TRACKING.name}")
    # Rebuilt rather than altered: SQLite cannot change a primary key in place.
    session.execute(f"DROP TABLE {TRACKING.name}")
    session.execute(TRACKING.create(session.dialect))
    insert = insert_new(TRACKING).render(session.dialect)
    for source, position in positions:
        session.execute(insert, (name, source, position))
    session.execute(SAVE_VERSION.render(session.dialect), (name, version))
