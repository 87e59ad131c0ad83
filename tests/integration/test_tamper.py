"""Tampering with the stored rows is caught, on SQLite and on PostgreSQL.

Each test records the demo chain, checkpoints it (50 events per checkpoint, so several
checkpoints), then edits the database directly with sqlite3 or psycopg, as someone with
access to the files or the server would, never through Lodestone, and checks that
``verify`` is not ok and names the right first problem: its kind and the position,
aggregate and version, or the checkpoint, where the break is.
"""

from __future__ import annotations

import itertools
import json
import math
import re
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import psycopg
import pytest

from lodestone import integrity
from lodestone.audit.checkpointer import Checkpointer, TamperDetected
from lodestone.audit.verify import Problem, Report, verify
from lodestone.demo.generator import ADMIN, load
from lodestone.ledger import Ledger
from lodestone.ledger import commands as c
from lodestone.ledger.stores import Checkpoint, CheckpointStore, EventRows
from tests.fixtures.backends import Backend, PostgresBackend
from tests.integration.conftest import open_audit_stores

LEAVES_PER_CHECKPOINT = 50
MASS = re.compile(rb'"mass_kg":\{"_data_":"(\d)')


@dataclass(frozen=True)
class Row:
    position: int
    aggregate_id: str
    version: int
    topic: str
    state: bytes


class Tables:
    """The event and checkpoint tables, read and edited behind Lodestone's back."""

    def __init__(
        self, connection: Any, events: str, position: str, mark: str, checkpoints: str
    ) -> None:
        self._db = connection
        self._events = events
        self._position = position
        self._mark = mark
        self._checkpoints = checkpoints

    @classmethod
    def sqlite(cls, path: str) -> Tables:
        db = sqlite3.connect(path, isolation_level=None)
        return cls(db, "stored_events", "rowid", "?", "lodestone_checkpoints")

    @classmethod
    def postgres(cls, url: str, schema: str) -> Tables:
        db = psycopg.connect(url, autocommit=True)
        return cls(
            db, f"{schema}.lodestone_events", "notification_id", "%s", "lodestone_checkpoints"
        )

    def _run(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        cursor = self._db.execute(sql.replace("?", self._mark), args)
        return cursor.fetchall() if cursor.description else []

    def events(self) -> list[Row]:
        rows = self._run(
            f"SELECT {self._position}, originator_id, originator_version, topic, state "
            f"FROM {self._events} ORDER BY {self._position}"
        )
        return [Row(p, str(UUID(str(i))), v, t, bytes(s)) for p, i, v, t, s in rows]

    def event(self, position: int) -> Row:
        return next(row for row in self.events() if row.position == position)

    def set_state(self, position: int, state: bytes) -> None:
        self._run(
            f"UPDATE {self._events} SET state = ? WHERE {self._position} = ?", state, position
        )

    def set_content(self, position: int, topic: str, state: bytes) -> None:
        self._run(
            f"UPDATE {self._events} SET topic = ?, state = ? WHERE {self._position} = ?",
            topic,
            state,
            position,
        )

    def delete_events(self, positions: Sequence[int]) -> None:
        for position in positions:
            self._run(f"DELETE FROM {self._events} WHERE {self._position} = ?", position)

    def swap_positions(self, a: int, b: int) -> None:
        move = f"UPDATE {self._events} SET {self._position} = ? WHERE {self._position} = ?"
        self._run(move, -1, a)
        self._run(move, a, b)
        self._run(move, b, -1)

    def set_checkpoint(self, seq: int, column: str, value: Any) -> None:
        self._run(f"UPDATE {self._checkpoints} SET {column} = ? WHERE seq = ?", value, seq)

    def delete_checkpoints_from(self, seq: int) -> None:
        self._run(f"DELETE FROM {self._checkpoints} WHERE seq >= ?", seq)

    def close(self) -> None:
        self._db.close()


@dataclass
class Audited:
    """A checkpointed demo chain on the backend under test, and its tables."""

    ledger: Ledger
    store: CheckpointStore
    tables: Tables
    rows: EventRows

    def verify(self, published: Sequence[Checkpoint] | None = None) -> Report:
        """Through the library's recorder and through the direct row scan the CLI and
        the API use: both must tell the same."""
        through_recorder = verify(self.ledger.recorder, self.store, published=published)
        direct = verify(self.ledger.recorder, self.store, published=published, rows=self.rows)
        assert direct.as_dict() == through_recorder.as_dict()
        return direct

    def checkpoint_of(self, position: int) -> Checkpoint:
        found = self.store.covering(position)
        assert found is not None, f"position {position} is not checkpointed"
        return found


@pytest.fixture
def audited(backend: Backend) -> Iterator[Audited]:
    ledger = backend.ledger("events")
    load(ledger, seed=7, size=150)
    env = backend.ledger_env("events")
    tables = (
        Tables.postgres(backend.url, env["POSTGRES_SCHEMA"])
        if isinstance(backend, PostgresBackend)
        else Tables.sqlite(env["SQLITE_DBNAME"])
    )
    rows, store = open_audit_stores(backend)
    Checkpointer(ledger.recorder, store, max_leaves=LEAVES_PER_CHECKPOINT).make()
    yield Audited(ledger, store, tables, rows)
    rows.close()
    tables.close()
    store.close()


def by_aggregate(rows: Sequence[Row]) -> dict[str, list[Row]]:
    """Each aggregate's rows, in version order."""
    found: dict[str, list[Row]] = {}
    for row in sorted(rows, key=lambda r: (r.aggregate_id, r.version)):
        found.setdefault(row.aggregate_id, []).append(row)
    return found


def consecutive_versions(audited: Audited, not_the_first: bool = False) -> tuple[Row, Row]:
    """Two consecutive versions of one aggregate, in one checkpoint; with
    ``not_the_first``, the earlier one has a predecessor."""
    for rows in by_aggregate(audited.tables.events()).values():
        for earlier, later in itertools.pairwise(rows[1:] if not_the_first else rows):
            if audited.checkpoint_of(earlier.position) == audited.checkpoint_of(later.position):
                return earlier, later
    raise AssertionError("the demo chain has no such aggregate")


def where(p: Problem | None) -> tuple[Any, ...]:
    assert p is not None, "no problem reported"
    return (p.kind, p.position, p.aggregate_id, p.version)


def at(row: Row) -> tuple[int, str, int]:
    return (row.position, row.aggregate_id, row.version)


def with_mass_edited(state: bytes) -> bytes:
    """``state`` with the first digit of its mass changed: one byte."""
    found = MASS.search(state)
    assert found is not None
    digit = (int(found[1]) + 1) % 10
    return state[: found.start(1)] + str(digit).encode() + state[found.end(1) :]


def test_an_untouched_ledger_verifies_with_its_events_and_aggregates_counted(
    audited: Audited,
) -> None:
    rows = audited.tables.events()

    report = audited.verify(published=audited.store.list())

    assert report.ok, report.problems
    assert report.events == len(rows)
    assert report.aggregates == len({row.aggregate_id for row in rows})
    assert report.checkpoints == math.ceil(len(rows) / LEAVES_PER_CHECKPOINT) > 1
    assert report.covered_up_to == rows[-1].position
    assert report.uncovered_events == 0
    assert report.compared_with_published == report.checkpoints


def test_one_byte_of_a_mass_edited_is_reported_as_that_event_edited(audited: Audited) -> None:
    row = next(r for r in audited.tables.events() if MASS.search(r.state))
    audited.tables.set_state(row.position, with_mass_edited(row.state))

    report = audited.verify()

    assert not report.ok
    assert [where(p) for p in report.problems] == [("edited", *at(row))]


def test_an_edited_chain_hash_is_reported_as_edited_and_breaks_the_next_link(
    audited: Audited,
) -> None:
    row, successor = consecutive_versions(audited)
    recorded = json.loads(row.state)[integrity.CHAIN_KEY]["hash"]
    forged = ("0" if recorded[0] != "0" else "1") + recorded[1:]
    audited.tables.set_state(row.position, row.state.replace(recorded.encode(), forged.encode()))

    report = audited.verify()

    assert not report.ok
    assert where(report.first) == ("edited", *at(row))
    assert ("chain-broken", *at(successor)) in [where(p) for p in report.problems]


def test_a_link_stripped_from_an_event_is_reported_as_unchained(audited: Audited) -> None:
    rows = audited.tables.events()
    row = rows[len(rows) // 2]
    event, _, _ = integrity.split_state(json.loads(row.state))
    audited.tables.set_state(row.position, integrity.canonical(event))

    report = audited.verify()

    assert not report.ok
    assert where(report.first) == ("unchained", *at(row))


def test_a_deleted_middle_version_is_reported_missing_at_the_next_version(
    audited: Audited,
) -> None:
    # The next version is in the deleted one's checkpoint, so that it is the first break
    # in store order (the checkpoint's count, wrong too, is judged at its range's end).
    deleted, successor = consecutive_versions(audited, not_the_first=True)
    audited.tables.delete_events([deleted.position])

    report = audited.verify()

    assert not report.ok
    assert where(report.first) == ("missing", *at(successor))
    mismatch = report.problems[1]
    assert mismatch.kind == "checkpoint-mismatch"
    assert mismatch.checkpoint == audited.checkpoint_of(deleted.position)["seq"]


def test_deleting_the_newest_checkpointed_events_is_reported_as_truncated(
    audited: Audited,
) -> None:
    newest = audited.store.latest()
    assert newest is not None
    rows = audited.tables.events()
    audited.tables.delete_events([row.position for row in rows[-3:]])

    report = audited.verify()

    assert not report.ok
    assert report.first is not None
    assert (report.first.kind, report.first.checkpoint) == ("truncated", newest["seq"])
    assert len(report.problems) == 1


def test_two_events_of_different_aggregates_swapped_in_position_break_their_checkpoint(
    audited: Audited,
) -> None:
    rows = audited.tables.events()
    a, b = next(
        (a, b)
        for a, b in itertools.pairwise(rows)
        if a.aggregate_id != b.aggregate_id
        and a.position > LEAVES_PER_CHECKPOINT
        and audited.checkpoint_of(a.position) == audited.checkpoint_of(b.position)
    )
    audited.tables.swap_positions(a.position, b.position)

    report = audited.verify()

    assert not report.ok
    # Each event and each aggregate's chain is intact: only the Merkle root notices.
    assert [(p.kind, p.checkpoint) for p in report.problems] == [
        ("checkpoint-mismatch", audited.checkpoint_of(a.position)["seq"])
    ]


def test_two_versions_of_one_aggregate_swapped_in_content_are_reported_at_that_aggregate(
    audited: Audited,
) -> None:
    first, second = consecutive_versions(audited)
    audited.tables.set_content(first.position, second.topic, second.state)
    audited.tables.set_content(second.position, first.topic, first.state)

    report = audited.verify()

    assert not report.ok
    assert where(report.first) == ("edited", *at(first))
    assert ("edited", *at(second)) in [where(p) for p in report.problems]


def test_two_versions_of_one_aggregate_swapped_in_position_are_reported_at_that_aggregate(
    audited: Audited,
) -> None:
    first, second = consecutive_versions(audited)
    audited.tables.swap_positions(first.position, second.position)

    report = audited.verify()

    assert not report.ok
    # The later version now comes first: in store order its predecessor looks deleted,
    # then shows up out of order.
    assert where(report.first) == ("missing", first.position, first.aggregate_id, second.version)
    assert ("reordered", second.position, first.aggregate_id, first.version) in [
        where(p) for p in report.problems
    ]


@pytest.mark.parametrize("column", ["root", "created_at"])
def test_an_edited_checkpoint_row_is_reported_as_checkpoint_altered(
    audited: Audited, column: str
) -> None:
    checkpoint = audited.store.list()[1]
    value = checkpoint[column]
    audited.tables.set_checkpoint(
        checkpoint["seq"], column, value[:-1] + ("0" if value[-1] != "0" else "1")
    )

    report = audited.verify()

    assert not report.ok
    assert report.first is not None
    assert (report.first.kind, report.first.checkpoint) == ("checkpoint-altered", checkpoint["seq"])


def test_dropping_the_newest_events_with_their_checkpoint_is_caught_only_by_the_published_copy(
    audited: Audited,
) -> None:
    published = audited.store.list()
    newest = published[-1]
    dropped = [
        r.position for r in audited.tables.events() if r.position >= newest["first_position"]
    ]
    audited.tables.delete_events(dropped)
    audited.tables.delete_checkpoints_from(newest["seq"])

    assert audited.verify().ok  # a consistent, shorter past: invisible locally
    report = audited.verify(published=published)

    assert not report.ok
    assert report.first is not None
    assert (report.first.kind, report.first.checkpoint, report.first.position) == (
        "checkpoint-missing",
        newest["seq"],
        newest["first_position"],
    )


def test_an_event_and_its_checkpoint_rewritten_consistently_are_caught_by_the_published_copy(
    audited: Audited,
) -> None:
    """Someone who knows the hashing rewrites an aggregate's newest event (who reported
    it) and recomputes its hash and its checkpoint's root and hash: every local check
    agrees, only a copy held elsewhere can tell."""
    published = audited.store.list()
    newest = published[-1]
    rows = audited.tables.events()
    heads = {r.aggregate_id: r for r in rows}  # each aggregate's newest version
    row = next(
        r for r in reversed(rows) if heads[r.aggregate_id] == r and b'"reported_by"' in r.state
    )
    assert row.position >= newest["first_position"]
    event, _, prev = integrity.split_state(json.loads(row.state))
    event["reported_by"] = "someone-else"
    state, _ = integrity.chained_state(row.aggregate_id, row.version, row.topic, event, prev)
    audited.tables.set_state(row.position, state)
    leaves = []
    for r in audited.tables.events():
        if r.position >= newest["first_position"]:
            digest, _, intact = integrity.check_stored(r.aggregate_id, r.version, r.topic, r.state)
            assert intact and digest is not None
            leaves.append(integrity.leaf_hash(r.position, digest))
    forged = {**newest, "root": integrity.merkle_root(leaves).hex()}
    forged["hash"] = integrity.checkpoint_hash(forged)
    audited.tables.set_checkpoint(newest["seq"], "root", forged["root"])
    audited.tables.set_checkpoint(newest["seq"], "hash", forged["hash"])

    assert audited.verify().ok
    report = audited.verify(published=published)

    assert not report.ok
    assert report.first is not None
    assert (report.first.kind, report.first.checkpoint) == ("checkpoint-rewritten", newest["seq"])


def test_the_checkpointer_refuses_to_cover_an_event_edited_before_it_was_checkpointed(
    audited: Audited,
) -> None:
    before = audited.store.list()
    audited.ledger.execute(ADMIN, [c.RegisterActor("NEWCO", "New Co", "DE", ["trader"])])
    row = next(r for r in reversed(audited.tables.events()) if b'"New Co"' in r.state)
    audited.tables.set_state(row.position, row.state.replace(b'"New Co"', b'"Old Co"'))

    with pytest.raises(TamperDetected) as refused:
        Checkpointer(audited.ledger.recorder, audited.store).make()

    assert refused.value.position == row.position
    assert audited.store.list() == before  # nothing vouches for the edited event
