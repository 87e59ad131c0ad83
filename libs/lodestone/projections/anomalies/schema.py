"""The anomalies read model's tables, described once for both databases, and the
queries of :class:`AnomaliesView` over them. The ``sqlite`` and ``postgres`` modules
only pick the database. Each table's columns are its row type's fields, in order.

Table names start with ``anomaly_``: projections may share a database, never a table.
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import attrgetter
from typing import Any

from lodestone.projections.anomalies.facts import Facts
from lodestone.projections.anomalies.projection import NAME, VERSION
from lodestone.projections.anomalies.rows import (
    BatchFact,
    InputFact,
    LicenceFact,
    MovementFact,
    PartyFact,
    ReviewFact,
    StepFact,
)
from lodestone.projections.anomalies.view import AnomaliesView, Writer
from lodestone.projections.tables import (
    Buffer,
    Column,
    Dialect,
    Kind,
    Layout,
    Query,
    Table,
    TableView,
    insert_new,
    upsert,
)

BATCHES = Table(
    "anomaly_batches",
    (
        Column("id", Kind.UUID, not_null=True),
        Column("version", Kind.INT, not_null=True),
        Column("reference", Kind.TEXT),
        Column("actor_id", Kind.UUID),
        Column("material", Kind.TEXT),
        Column("initial_kg", Kind.DECIMAL),
        Column("composition", Kind.COMPOSITION),
        Column("facility_id", Kind.UUID),
        Column("created_at", Kind.TIME),
        Column("kind", Kind.TEXT),
        Column("made_by", Kind.UUID),
        Column("origin_country", Kind.TEXT),
        Column("quota_id", Kind.UUID),
        Column("status", Kind.TEXT),
    ),
    key=("id",),
    row=BatchFact,
)
STEPS = Table(
    "anomaly_steps",
    (
        Column("id", Kind.UUID, not_null=True),
        Column("actor_id", Kind.UUID, not_null=True),
        Column("facility_id", Kind.UUID, not_null=True),
        Column("process", Kind.TEXT, not_null=True),
        Column("reference", Kind.TEXT, not_null=True),
        Column("tolerance", Kind.DECIMAL, not_null=True),
        Column("output_kg", Kind.COMPOSITION, not_null=True),
        Column("output_total_kg", Kind.DECIMAL, not_null=True),
        Column("untraced_kg", Kind.COMPOSITION, not_null=True),
        Column("occurred_at", Kind.TIME, not_null=True),
    ),
    key=("id",),
    row=StepFact,
)
INPUTS = Table(
    "anomaly_inputs",
    (
        Column("step_id", Kind.UUID, not_null=True),
        Column("batch_id", Kind.UUID, not_null=True),
        Column("kg", Kind.DECIMAL, not_null=True),
    ),
    key=("step_id", "batch_id"),
    row=InputFact,
)
MOVEMENTS = Table(
    "anomaly_movements",
    (
        Column("batch_id", Kind.UUID, not_null=True),
        Column("version", Kind.INT, not_null=True),
        Column("kind", Kind.TEXT),
        Column("from_id", Kind.UUID),
        Column("to_id", Kind.UUID),
        Column("kg", Kind.DECIMAL),
        Column("facility_id", Kind.UUID),
        Column("price", Kind.DECIMAL),
        Column("currency", Kind.TEXT),
        Column("contract", Kind.TEXT),
        Column("licence_id", Kind.UUID),
        Column("destination_country", Kind.TEXT),
        Column("end_user", Kind.TEXT),
        Column("customs_code", Kind.TEXT),
        Column("occurred_at", Kind.TIME),
        Column("corrected_by", Kind.INT),
    ),
    key=("batch_id", "version"),
    row=MovementFact,
)
PARTIES = Table(
    "anomaly_parties",
    (
        Column("id", Kind.UUID, not_null=True),
        Column("kind", Kind.TEXT, not_null=True),
        Column("code", Kind.TEXT, not_null=True),
        Column("name", Kind.TEXT, default=""),
        Column("country", Kind.TEXT, default=""),
        Column("owner_id", Kind.UUID),
        Column("facility_kind", Kind.TEXT, default=""),
    ),
    key=("id",),
    row=PartyFact,
)
LICENCES = Table(
    "anomaly_licences",
    (
        Column("id", Kind.UUID, not_null=True),
        Column("number", Kind.TEXT, not_null=True),
        Column("kind", Kind.TEXT, not_null=True),
        Column("holder_id", Kind.UUID, not_null=True),
        Column("consignee_id", Kind.UUID),
        Column("end_user", Kind.TEXT, default=""),
        Column("destination_country", Kind.TEXT, default=""),
    ),
    key=("id",),
    row=LicenceFact,
)
REVIEWS = Table(
    "anomaly_reviews",
    (
        Column("anomaly_id", Kind.UUID, not_null=True),
        Column("version", Kind.INT, not_null=True),
        Column("rule", Kind.TEXT, not_null=True),
        Column("status", Kind.TEXT, not_null=True),
        Column("note", Kind.TEXT, default=""),
        Column("by_role", Kind.TEXT, not_null=True),
        Column("reviewed_by", Kind.TEXT, not_null=True),
        Column("reviewed_at", Kind.TIME, not_null=True),
    ),
    key=("anomaly_id", "version"),
    row=ReviewFact,
)
TABLES: tuple[Table[Any], ...] = (BATCHES, STEPS, INPUTS, MOVEMENTS, PARTIES, LICENCES, REVIEWS)

# A value the event does not give is None and leaves the stored one alone. A batch row
# changes only for a newer version of the batch (its creation, then its corrections); a
# movement only for a newer correction of its time: a repeat is a no-op, and so is an
# older event arriving after a newer one.
UPSERT_BATCH = upsert(BATCHES, keep_nulls=True, newer="version")
INSERT_STEP = insert_new(STEPS)
INSERT_INPUT = insert_new(INPUTS)
UPSERT_MOVEMENT = upsert(MOVEMENTS, keep_nulls=True, newer="corrected_by")
UPSERT_PARTY = upsert(PARTIES)
UPSERT_LICENCE = upsert(LICENCES)
INSERT_REVIEW = insert_new(REVIEWS)


def _everything(table: Table[Any]) -> Query[Any]:
    def render(dialect: Dialect) -> str:
        return f"SELECT {table.select_list()} FROM {table.name} ORDER BY {', '.join(table.key)}"

    return Query(table, render)


ALL = {table: _everything(table) for table in TABLES}

_BATCH = attrgetter(*BATCHES.column_names)
_STEP = attrgetter(*STEPS.column_names)
_INPUT = attrgetter(*INPUTS.column_names)
_MOVEMENT = attrgetter(*MOVEMENTS.column_names)
_PARTY = attrgetter(*PARTIES.column_names)
_LICENCE = attrgetter(*LICENCES.column_names)
_REVIEW = attrgetter(*REVIEWS.column_names)


class _Writer:
    """Appends each row's values, in column order, to the transaction's buffer."""

    def __init__(self, buffer: Buffer) -> None:
        self._rows = buffer.rows

    def upsert_batch(self, row: BatchFact) -> None:
        self._rows[UPSERT_BATCH].append(_BATCH(row))

    def add_step(self, row: StepFact) -> None:
        self._rows[INSERT_STEP].append(_STEP(row))

    def add_inputs(self, rows: Sequence[InputFact]) -> None:
        self._rows[INSERT_INPUT].extend(_INPUT(row) for row in rows)

    def upsert_movement(self, row: MovementFact) -> None:
        self._rows[UPSERT_MOVEMENT].append(_MOVEMENT(row))

    def upsert_party(self, row: PartyFact) -> None:
        self._rows[UPSERT_PARTY].append(_PARTY(row))

    def upsert_licence(self, row: LicenceFact) -> None:
        self._rows[UPSERT_LICENCE].append(_LICENCE(row))

    def add_review(self, row: ReviewFact) -> None:
        self._rows[INSERT_REVIEW].append(_REVIEW(row))


LAYOUT: Layout[Writer] = Layout(
    NAME,
    VERSION,
    tables=TABLES,
    writes=(
        UPSERT_BATCH,
        INSERT_STEP,
        INSERT_INPUT,
        UPSERT_MOVEMENT,
        UPSERT_PARTY,
        UPSERT_LICENCE,
        INSERT_REVIEW,
    ),
    writer=_Writer,
)


class AnomaliesTables(TableView[Writer], AnomaliesView):
    """The anomalies' queries over its tables, the same on every database."""

    layout = LAYOUT

    def facts(self) -> Facts:
        return Facts.of(
            batches=self._query(ALL[BATCHES], ()),
            steps=self._query(ALL[STEPS], ()),
            inputs=self._query(ALL[INPUTS], ()),
            movements=self._query(ALL[MOVEMENTS], ()),
            parties=self._query(ALL[PARTIES], ()),
            licences=self._query(ALL[LICENCES], ()),
            reviews=self._query(ALL[REVIEWS], ()),
        )
