"""Group commit (``lodestone.ledger.group``) on SQLite and PostgreSQL: requests validated
one after another on in-memory state, saved together, each answered after the commit."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from decimal import Decimal
from typing import Any

import pytest

from lodestone.audit.verify import verify
from lodestone.domain import ids
from lodestone.domain.access import Principal, Role
from lodestone.domain.refusals import Conflict, InvalidInput, NotFound
from lodestone.infra.postgres.database import postgres_env
from lodestone.infra.postgres.stores import PostgresEventRows, PostgresWriterLock
from lodestone.infra.sqlite.stores import SQLiteWriterLock
from lodestone.ledger import Ledger, application
from lodestone.ledger import commands as c
from lodestone.ledger.application import Outcome
from lodestone.ledger.group import GroupWriter, Job
from lodestone.ledger.idempotency import IdempotencyRecord
from lodestone.ledger.stores import EventRows, WriterLock
from tests.fixtures.backends import Backend, PostgresBackend
from tests.integration.conftest import open_audit_stores
from tests.unit.builders import NOW, ORE_REO_PER_1000_KG, World, extraction, register_chain_world

ADMIN = Principal("admin", Role.ADMIN)


@pytest.fixture
def ledger(backend: Backend) -> Ledger:
    return backend.ledger(clock=lambda: NOW)


@pytest.fixture
def world(ledger: Ledger) -> World:
    return register_chain_world(ledger, ADMIN)


@pytest.fixture
def rows(backend: Backend, ledger: Ledger) -> Iterator[EventRows]:
    """The store's rows on a connection of their own, as the gateway gives its writer."""
    rows, checkpoints = open_audit_stores(backend)
    checkpoints.close()
    yield rows
    rows.close()


@pytest.fixture
def writer(ledger: Ledger, world: World, rows: EventRows) -> Iterator[GroupWriter]:
    """A writer whose groups a test makes itself (``write_group``): not started."""
    yield GroupWriter(ledger, rows=rows)


@pytest.fixture
def running(ledger: Ledger, world: World, rows: EventRows) -> Iterator[GroupWriter]:
    """A writer thread, as the gateway runs it."""
    writer = GroupWriter(ledger, rows=rows)
    writer.start()
    yield writer
    writer.stop()


def answers(jobs: Sequence[Job]) -> list[Outcome | BaseException]:
    out: list[Outcome | BaseException] = []
    for job in jobs:
        error = job.answer.exception(timeout=0)
        out.append(error if error is not None else job.answer.result(timeout=0))
    return out


def drawn(ledger: Ledger) -> Decimal:
    return ledger.licence_by_number("MQ-1").drawn_kg


def lots(ledger: Ledger, after: int) -> list[str]:
    """The lots of the batches created after position ``after``, in store order."""
    found = ledger.recorder.select_notifications(start=after + 1, limit=10_000)
    return [
        ledger.repository.get(n.originator_id).lot_code
        for n in found
        if n.topic.endswith("OreExtracted")
    ]


def writer_lock(backend: Backend) -> WriterLock:
    """The lock the gateway gives its writer, on the test's store."""
    env = backend.ledger_env("events")
    if isinstance(backend, PostgresBackend):
        return PostgresWriterLock(backend.url, table=f"{env['POSTGRES_SCHEMA']}.lodestone_events")
    return SQLiteWriterLock(env["SQLITE_DBNAME"])


def verified(backend: Backend) -> Any:
    rows, checkpoints = open_audit_stores(backend)
    try:
        return verify(_recorder(backend), checkpoints, rows=rows)
    finally:
        rows.close()
        checkpoints.close()


def _recorder(backend: Backend) -> Any:
    return backend.ledger(clock=lambda: NOW).recorder


def test_racing_writers_under_group_commit_store_every_event_with_chains_verified(
    backend: Backend, ledger: Ledger, world: World, running: GroupWriter
) -> None:
    before_drawn, clients, each = drawn(ledger), 8, 15
    failures: list[BaseException] = []

    def client(n: int) -> None:
        try:
            for i in range(each):
                running.submit(world.mine, [extraction(f"C{n}-{i}")])
        except BaseException as error:  # reported by the assertion below
            failures.append(error)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert failures == []
    assert max(running.group_sizes) > 1  # the requests did share commits
    assert drawn(ledger) - before_drawn == ORE_REO_PER_1000_KG * clients * each  # no lost update
    assert sorted(lots(ledger, 0)) == sorted(
        f"C{n}-{i}" for n in range(clients) for i in range(each)
    )  # every one once: no doubled event
    report = verified(backend)
    assert report.ok, report.first


def test_requests_of_one_group_are_saved_in_one_transaction_in_the_order_validated(
    ledger: Ledger, world: World, writer: GroupWriter
) -> None:
    before = ledger.recorder.max_notification_id()
    jobs = [Job(world.mine, [extraction(lot)]) for lot in ("G-1", "G-2", "G-3")]

    writer.write_group(jobs)

    outcomes = answers(jobs)
    stored = ledger.recorder.select_notifications(start=before + 1, limit=100)
    assert {o.position for o in outcomes if isinstance(o, Outcome)} == {stored[-1].id}
    mine, quota = ids.actor_id("MINECO"), ids.licence_id("MQ-1")
    # Each request's two events (its batch's creation, the quota's draw) side by side,
    # requests in the order they were validated; the draws in version order.
    assert [{n.originator_id for n in stored[i : i + 2]} for i in (0, 2, 4)] == [
        {ids.batch_id(mine, lot), quota} for lot in ("G-1", "G-2", "G-3")
    ]
    versions = [n.originator_version for n in stored if n.originator_id == quota]
    assert versions == sorted(versions)


def test_a_refused_request_in_a_mixed_group_refuses_only_itself_and_stores_nothing_of_it(
    ledger: Ledger, world: World, writer: GroupWriter
) -> None:
    before, before_drawn = ledger.recorder.max_notification_id(), drawn(ledger)
    jobs = [
        Job(world.mine, [extraction("M-1", kg="100")]),
        Job(world.mine, [extraction("M-2", kg="100"), extraction("M-3", kg="100.0000000001")]),
        Job(world.mine, [extraction("M-4", kg="100")]),
    ]

    writer.write_group(jobs)

    first, refused, last = answers(jobs)
    assert isinstance(first, Outcome) and isinstance(last, Outcome)
    assert isinstance(refused, InvalidInput)
    assert lots(ledger, before) == ["M-1", "M-4"]
    assert drawn(ledger) - before_drawn == ORE_REO_PER_1000_KG / 5
    with pytest.raises(NotFound):
        ledger.batch("MINECO/M-2")


def test_a_lot_extracted_twice_in_one_group_is_stored_once(
    ledger: Ledger, world: World, writer: GroupWriter
) -> None:
    before = ledger.recorder.max_notification_id()
    jobs = [Job(world.mine, [extraction("TWICE")]), Job(world.mine, [extraction("TWICE")])]

    writer.write_group(jobs)

    first, second = answers(jobs)
    assert isinstance(first, Outcome)
    assert isinstance(second, Conflict) and second.rule == "unique"
    assert lots(ledger, before) == ["TWICE"]


def test_a_lot_stored_before_the_group_is_refused_when_the_group_repeats_it(
    ledger: Ledger, world: World, writer: GroupWriter
) -> None:
    ledger.execute(world.mine, [extraction("STORED")])
    before = ledger.recorder.max_notification_id()
    jobs = [Job(world.mine, [extraction("NEW")]), Job(world.mine, [extraction("STORED")])]

    writer.write_group(jobs)

    new, again = answers(jobs)
    assert isinstance(new, Outcome)
    assert isinstance(again, Conflict) and again.rule == "unique"
    assert lots(ledger, before) == ["NEW"]


def test_an_idempotent_retry_inside_a_group_answers_as_the_first_time(
    ledger: Ledger, world: World, writer: GroupWriter
) -> None:
    before = ledger.recorder.max_notification_id()
    jobs = [
        Job(world.mine, [extraction("IDEM")], idempotency_key="k-1", fingerprint="f"),
        Job(world.mine, [extraction("IDEM")], idempotency_key="k-1", fingerprint="f"),
    ]

    writer.write_group(jobs)

    first, retry = answers(jobs)
    assert isinstance(first, Outcome) and isinstance(retry, Outcome)
    assert (first.replayed, retry.replayed) == (False, True)
    assert retry.results == first.results
    assert lots(ledger, before) == ["IDEM"]
    record = ids.idempotency_id(world.mine.id, "k-1")
    assert isinstance(ledger.repository.get(record), IdempotencyRecord)


def test_a_key_reused_for_another_body_inside_a_group_is_refused(
    ledger: Ledger, world: World, writer: GroupWriter
) -> None:
    jobs = [
        Job(world.mine, [extraction("K-1")], idempotency_key="k-2", fingerprint="one"),
        Job(world.mine, [extraction("K-2")], idempotency_key="k-2", fingerprint="two"),
    ]

    writer.write_group(jobs)

    first, reused = answers(jobs)
    assert isinstance(first, Outcome)
    assert isinstance(reused, Conflict) and reused.rule == "idempotency-key-reuse"


def test_an_idempotent_retry_of_a_stored_request_answers_as_the_first_time(
    ledger: Ledger, world: World, writer: GroupWriter
) -> None:
    first = ledger.execute(world.mine, [extraction("OLD")], idempotency_key="k-3", fingerprint="f")
    before = ledger.recorder.max_notification_id()
    job = Job(world.mine, [extraction("OLD")], idempotency_key="k-3", fingerprint="f")

    writer.write_group([job])

    (retry,) = answers([job])
    assert isinstance(retry, Outcome) and retry.replayed
    assert retry.results == first.results
    assert ledger.recorder.max_notification_id() == before


class Interrupted(Ledger):
    """Lets another writer in between a group's validation and its commit, once."""

    interloper: Callable[[], None] | None = None

    def save_events(self, *args: Any, **kwargs: Any) -> list[Any]:
        interloper, type(self).interloper = type(self).interloper, None
        if interloper is not None:
            interloper()
        return super().save_events(*args, **kwargs)


def test_a_group_whose_commit_lost_a_race_runs_each_request_again_on_fresh_state(
    backend: Backend, world: World
) -> None:
    ledger = Interrupted(backend.ledger_env("events"), clock=lambda: NOW)
    other = backend.ledger(clock=lambda: NOW)
    rows, checkpoints = open_audit_stores(backend)
    checkpoints.close()
    writer = GroupWriter(ledger, rows=rows)
    before_drawn = drawn(ledger)
    Interrupted.interloper = lambda: other.execute(world.mine, [extraction("RACE-0")])
    jobs = [Job(world.mine, [extraction(lot)]) for lot in ("RACE-1", "RACE-2")]
    try:
        writer.write_group(jobs)
    finally:
        rows.close()
        ledger.close()

    assert all(isinstance(a, Outcome) for a in answers(jobs))
    assert writer.retried == 1
    assert drawn(other) - before_drawn == ORE_REO_PER_1000_KG * 3
    assert sorted(lots(other, 0)) == ["RACE-0", "RACE-1", "RACE-2"]
    report = verified(backend)
    assert report.ok, report.first


def test_the_next_group_validates_against_what_another_writer_stored_meanwhile(
    ledger: Ledger, world: World, writer: GroupWriter, backend: Backend
) -> None:
    writer.write_group([Job(world.mine, [extraction("SEEN-1", kg="5")])])
    other = backend.ledger(clock=lambda: NOW)
    other.execute(world.mine, [extraction("SEEN-2", kg="5")])  # the quota moves on there
    job = Job(world.mine, [extraction("SEEN-3", kg="5")])

    writer.write_group([job])

    assert isinstance(answers([job])[0], Outcome)
    assert writer.retried == 0  # validated on the quota as stored, not as cached
    assert ledger.licence_by_number("MQ-1").drawn_kg == other.licence_by_number("MQ-1").drawn_kg


def test_two_writers_sharing_one_store_lose_no_update_and_keep_every_chain(
    backend: Backend, ledger: Ledger, world: World
) -> None:
    """Two gateway workers on one database: each its own ledger, cache and writer."""
    writers, opened = [], []
    for _ in range(2):
        rows, checkpoints = open_audit_stores(backend)
        checkpoints.close()
        lock = writer_lock(backend)
        opened += [rows, lock]
        writers.append(GroupWriter(backend.ledger(clock=lambda: NOW), rows=rows, lock=lock))
    before_drawn, clients, each = drawn(ledger), 4, 12
    failures: list[BaseException] = []

    def client(writer: GroupWriter, name: str) -> None:
        try:
            for i in range(each):
                writer.submit(world.mine, [extraction(f"{name}-{i}")])
        except BaseException as error:  # reported by the assertion below
            failures.append(error)

    threads = [
        threading.Thread(target=client, args=(w, f"W{n}-C{c}"))
        for n, w in enumerate(writers)
        for c in range(clients)
    ]
    for w in writers:
        w.start()
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        for w in writers:
            w.stop()
        for store in opened:
            store.close()

    assert failures == []
    assert [w.retried for w in writers] == [0, 0]  # they took turns: no commit lost
    assert drawn(ledger) - before_drawn == ORE_REO_PER_1000_KG * 2 * clients * each
    assert len(lots(ledger, 0)) == len(set(lots(ledger, 0))) == 2 * clients * each
    report = verified(backend)
    assert report.ok, report.first


def test_a_snapshot_taken_from_memory_holds_the_state_its_events_make(
    ledger: Ledger, world: World, writer: GroupWriter
) -> None:
    quota = ids.licence_id("MQ-1")
    version = ledger.licence_by_number("MQ-1").version
    jobs = [Job(world.mine, [extraction(f"SNAP-{n}")]) for n in range(200 - version)]

    writer.write_group(jobs)

    (snapshot,) = ledger.snapshots.get(quota, desc=True, limit=1)  # type: ignore[union-attr]
    assert snapshot.originator_version == 200
    replayed: Any = None
    for event in ledger.events.get(quota):
        replayed = event.mutate(replayed)
    assert snapshot.state == type(snapshot).take(replayed).state


def issued_key(ledger: Ledger) -> str:
    key_hash = "cd" * 32
    ledger.execute(ADMIN, [c.IssueCredential(key_hash=key_hash, role="auditor", label="a")])
    assert ledger.authenticate(key_hash) is not None  # now cached
    return key_hash


def revoke(ledger: Ledger, key_hash: str) -> None:
    credential = str(ids.credential_id(key_hash))
    ledger.execute(ADMIN, [c.RevokeCredential(credential_id=credential, reason="leaked")])


def test_a_key_revoked_through_this_ledger_is_refused_at_once(ledger: Ledger, world: World) -> None:
    key_hash = issued_key(ledger)

    revoke(ledger, key_hash)

    assert ledger.authenticate(key_hash) is None


def test_a_key_revoked_by_another_process_is_refused_after_this_writers_next_group(
    backend: Backend, ledger: Ledger, world: World, writer: GroupWriter
) -> None:
    key_hash = issued_key(ledger)
    revoke(backend.ledger(clock=lambda: NOW), key_hash)

    writer.write_group([Job(world.mine, [extraction("AFTER-REVOKE")])])

    assert ledger.authenticate(key_hash) is None


def test_a_key_revoked_by_another_process_is_refused_once_its_cache_time_passed(
    backend: Backend, ledger: Ledger, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(application, "CREDENTIAL_TTL", 0.2)
    key_hash = issued_key(ledger)
    revoke(backend.ledger(clock=lambda: NOW), key_hash)

    time.sleep(0.25)

    assert ledger.authenticate(key_hash) is None


@pytest.mark.slow  # a private server, killed and restarted
@pytest.mark.postgres
def test_the_group_writer_writes_again_once_a_killed_server_is_back(
    local_postgres: Callable[[], Any],
) -> None:
    server = local_postgres()
    ledger = Ledger(postgres_env(server.url), clock=lambda: NOW)
    world = register_chain_world(ledger, ADMIN)
    rows, lock = PostgresEventRows(server.url), PostgresWriterLock(server.url)
    writer = GroupWriter(ledger, rows=rows, lock=lock)
    writer.start()
    try:
        writer.submit(world.mine, [extraction("BEFORE")])
        server.kill()
        server.start()
        outcomes: list[Outcome] = []
        for attempt in range(5):  # the writer's first statements find their sessions gone
            try:
                outcomes.append(writer.submit(world.mine, [extraction("AFTER")]))
                break
            except Exception:
                time.sleep(0.2 * attempt)
    finally:
        writer.stop()
        rows.close()
        lock.close()
        ledger.close()

    assert len(outcomes) == 1
    reader = Ledger(postgres_env(server.url), clock=lambda: NOW)
    try:
        assert reader.batch("MINECO/AFTER").lot_code == "AFTER"
    finally:
        reader.close()
