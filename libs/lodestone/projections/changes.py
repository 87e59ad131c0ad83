"""The change log of the projections in one read-model database: every row a view's
transaction writes, appended to ``changes`` in that same transaction, so that streams
(SSE) and change topics (Kafka) can follow a read model without the projection doing
anything for it.

A change is (projection, seq, table, row key, the row as stored after the write, as
JSON, the source and position of the event that wrote it, when it was recorded).
``seq`` counts up per projection and is never reused: a reset or a rebuild switched in
does not start it again. ``projection_state`` holds, per projection:

- ``last_seq``: the last sequence number given out;
- ``floor``: every change up to and including it is gone (trimmed by retention, or
  emptied by a reset), so a reader who has seen up to ``floor`` or more misses nothing
  and one who has seen less must re-read the model. The kept changes are exactly
  ``floor + 1 .. last_seq``: sequence numbers have no gaps;
- ``generation``: how many times the projection's rows were replaced wholesale (a reset,
  a rebuild switched in). A writer that read its positions in an older generation must
  not commit on top of the new rows: see :class:`~lodestone.projections.base.ModelReplaced`;
- ``published``: the last sequence number a change-topic publisher had acknowledged
  (for monitoring: the topic itself is where a publisher resumes from).

A reset (of the rows, or the switch to a rebuilt copy) empties the projection's changes
and appends one marker, a change whose table is ``""`` (:data:`RESET`): a reader who
meets it, or whose position is below ``floor``, re-reads the model and goes on from there.

Retention: each write transaction keeps only the newest ``retention`` changes of its
projection (``LODESTONE_CHANGE_RETENTION``); 0 keeps no change log at all (a rebuild's
shadow copy, which nobody follows, writes none).

No SQL driver here: the per-database modules run these statements.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from lodestone.projections.base import ModelReplaced, ModelUpgraded
from lodestone.projections.tables import (
    DEFAULT_RETENTION,
    Column,
    Dialect,
    Kind,
    Layout,
    Row,
    Table,
    Write,
    to_text,
    upsert,
)
from lodestone.projections.tracking import Session

__all__ = ["DEFAULT_RETENTION", "RESET", "Change", "Page", "State"]

#: The table of a reset marker: the model was replaced; re-read it.
RESET = ""


@dataclass(frozen=True)
class Change:
    projection: str
    seq: int
    table: str  # RESET for a reset marker
    key: str  # the row key's values as text, joined by ":"
    row_json: str  # the row as stored after the write: {"column": value}
    source: str  # where the event that wrote it came from ("ledger", "topic:partition")
    position: int
    recorded_at: str  # ISO 8601, UTC

    @cached_property
    def row(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.row_json)
        return parsed

    @property
    def is_reset(self) -> bool:
        return self.table == RESET


@dataclass(frozen=True)
class Page:
    """Changes after a position, at most a page of them, and the log's bounds when they
    were read (one snapshot)."""

    changes: list[Change]
    floor: int
    last: int
    published: int = 0  # what a change-topic publisher last had acknowledged

    def missed(self, after: int) -> bool:
        """Whether a reader who has seen up to ``after`` has lost changes: they were
        trimmed or reset away (``after < floor``), or ``after`` is not of this log
        (beyond its last sequence number: the read-model database was made anew)."""
        return after < self.floor or after > self.last


@dataclass(frozen=True)
class State:
    last_seq: int = 0
    floor: int = 0
    generation: int = 0
    published: int = 0


CHANGES = Table(
    "changes",
    (
        Column("projection", Kind.TEXT, not_null=True),
        Column("seq", Kind.INT, not_null=True),
        Column("table_name", Kind.TEXT, not_null=True),
        Column("row_key", Kind.TEXT, not_null=True),
        Column("row_json", Kind.TEXT, not_null=True),
        Column("source", Kind.TEXT, not_null=True),
        Column("position", Kind.INT, not_null=True),
        Column("recorded_at", Kind.TEXT, not_null=True),
    ),
    key=("projection", "seq"),
    row=Change,
)
STATE = Table(
    "projection_state",
    (
        Column("projection", Kind.TEXT, not_null=True),
        Column("last_seq", Kind.INT, not_null=True),
        Column("floor", Kind.INT, not_null=True),
        Column("generation", Kind.INT, not_null=True),
        Column("published", Kind.INT, not_null=True),
    ),
    key=("projection",),
    row=lambda projection, *values: State(*values),
)
SAVE_STATE = upsert(STATE)


def statements(dialect: Dialect) -> dict[str, str]:
    """Every statement of the change log, written for ``dialect``."""
    p = dialect.placeholder
    marks = ", ".join([p] * len(CHANGES.columns))
    return {
        "state": f"SELECT last_seq, floor, generation, published FROM {STATE.name} "
        f"WHERE projection = {p}",
        "save_state": SAVE_STATE.render(dialect),
        "append": f"INSERT INTO {CHANGES.name} ({', '.join(CHANGES.column_names)}) "
        f"VALUES ({marks})",
        "trim": f"DELETE FROM {CHANGES.name} WHERE projection = {p} AND seq <= {p}",
        "forget": f"DELETE FROM {CHANGES.name} WHERE projection = {p}",
        "page": f"SELECT {CHANGES.select_list()} FROM {CHANGES.name} "
        f"WHERE projection = {p} AND seq > {p} ORDER BY seq LIMIT {p}",
        "version": f"SELECT version FROM projection_versions WHERE projection = {p}",
        "published": f"UPDATE {STATE.name} SET published = {p} "
        f"WHERE projection = {p} AND published < {p}",
    }


def prepare(session: Session, projection: str) -> State:
    """Make the change log's tables (if missing) and the projection's state row."""
    session.execute(CHANGES.create(session.dialect))
    session.execute(STATE.create(session.dialect))
    return state(session, projection)


def state(session: Session, projection: str) -> State:
    found = session.rows(statements(session.dialect)["state"], (projection,))
    return State(*found[0]) if found else State()


def save(session: Session, projection: str, new: State) -> None:
    session.execute(
        statements(session.dialect)["save_state"],
        (projection, new.last_seq, new.floor, new.generation, new.published),
    )


def guard(session: Session, layout: Layout[Any], generation: int) -> State:
    """The projection's state, inside a write transaction, after checking that the rows
    this writer is about to add go onto the rows it read its positions from."""
    sql = statements(session.dialect)
    found = session.rows(sql["version"], (layout.projection,))
    stored = found[0][0] if found else layout.version
    if stored != layout.version:
        raise ModelUpgraded(
            f"read model {layout.projection} is now at version {stored}, this process "
            f"writes version {layout.version}: restart it with the release of version {stored}"
        )
    current = state(session, layout.projection)
    if current.generation != generation:
        raise ModelReplaced(layout.projection, current.generation)
    return current


def reset(session: Session, projection: str, *, after: int = 0, replaced: bool = True) -> State:
    """Empty the projection's changes and append a reset marker (numbered after
    ``after`` if that is beyond the last number given out); ``replaced``: the rows were
    replaced too, a new generation."""
    current = state(session, projection)
    sql = statements(session.dialect)
    session.execute(sql["forget"], (projection,))
    marker = max(current.last_seq, after) + 1
    session.execute(sql["append"], (projection, marker, RESET, "", "{}", "", 0, _now()))
    generation = current.generation + 1 if replaced else current.generation
    new = State(marker, marker - 1, generation, current.published)
    save(session, projection, new)
    return new


def continue_after(session: Session, projection: str, seq: int) -> State:
    """Give out sequence numbers after ``seq`` from now on: a change topic already
    holds numbers up to it (from a read-model database made anew since), so the
    changes kept here, numbered lower, are dropped for a reset marker after ``seq``."""
    current = state(session, projection)
    if current.last_seq >= seq:
        return current
    return reset(session, projection, after=seq, replaced=False)


class Encoder:
    """A table's returned rows as change entries: key text and row JSON."""

    def __init__(self, table: Table[Any]) -> None:
        self.table = table.name
        names = table.column_names
        self._names = names
        self._key = [names.index(k) for k in table.key]
        self._composition = {i for i, c in enumerate(table.columns) if c.kind is Kind.COMPOSITION}

    def key(self, values: Row) -> str:
        return ":".join(str(to_text(values[i])) for i in self._key)

    def row_json(self, values: Row) -> str:
        shown: dict[str, Any] = {}
        composition = self._composition
        for i, (name, value) in enumerate(zip(self._names, values, strict=True)):
            if i in composition and value is not None:
                # SQLite returns the stored JSON text, PostgreSQL a dict of strings.
                parsed = json.loads(value) if isinstance(value, str) else value
                shown[name] = {k: str(v) for k, v in sorted(parsed.items())}
            else:
                shown[name] = as_text(value)
        return _compact(shown)


#: The change log's JSON: one encoder made once, not one per row.
_compact = json.JSONEncoder(separators=(",", ":")).encode


def as_text(value: Any) -> Any:
    """:func:`~lodestone.projections.tables.to_text`, answering the commonest values
    (exactly text, int or None: most of what a write returns) without its checks; the
    profile of a catch-up shows it called for every value of every row."""
    kind = type(value)
    if kind is str or kind is int or value is None:
        return value
    return to_text(value)


def returning(write: Write, dialect: Dialect) -> str:
    """The write statement answering with the row as stored, when it changed one (a
    repeat that changes nothing answers nothing)."""
    return f"{write.render(dialect)} RETURNING {write.table.select_list()}"


def append(
    session: Session,
    projection: str,
    entries: list[tuple[str, str, str, str, int]],
    current: State,
    retention: int,
) -> State:
    """Number the entries after ``current.last_seq``, append them and trim the log to
    the newest ``retention``."""
    if not entries:
        return current
    sql = statements(session.dialect)
    now = _now()
    first = current.last_seq + 1
    session.executemany(
        sql["append"],
        [
            (projection, first + i, table, key, row, source, position, now)
            for i, (table, key, row, source, position) in enumerate(entries)
        ],
    )
    last = current.last_seq + len(entries)
    floor = current.floor
    if last - retention > floor:
        floor = last - retention
        session.execute(sql["trim"], (projection, floor))
    new = State(last, floor, current.generation, current.published)
    save(session, projection, new)
    return new


def _now() -> str:
    return datetime.now(UTC).isoformat()
