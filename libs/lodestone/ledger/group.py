"""Group commit: one writer thread validates the commands that queued while its last
commit ran, one after another, and saves them together in ONE transaction.

Why: a single-event write spent most of its time on reading state back from the store
(each aggregate's new events, the key's credential, whether a lot exists) and on the
commit itself, and concurrent requests only queued on the store's one write lock. The
writer keeps what it saved in memory and commits whatever has gathered meanwhile, so
eight clients cost about one commit, not eight.

How it keeps the ledger's rules:
- One command (or one bulk submission), one unit of validation, as in
  ``Ledger.execute``: each request's commands run in their own unit of work over the
  state the group has staged so far, on copies, so a refused request leaves that state
  untouched and stores nothing; an accepted one's changes become the state the next
  request of the group is validated against (no lost update, no doubled event: a second
  extraction of the same lot in the same group is refused as if the first were stored).
- The group's events are saved in the order its requests were validated: positions, and
  each aggregate's chain (``__chain__.prev`` from the version before), follow that order.
- Every request is answered only after the commit; if the commit fails on a concurrent
  writer (another process sharing the store), each request of the group runs again alone
  on fresh state through ``Ledger.execute`` (its own retries, 409 at worst), refused ones
  included, since their refusal may have come from an earlier request of the group.
- Idempotency: a request repeating a key accepted earlier in the same group is answered
  as that first one (replayed), a different body under that key is refused; records
  stored before are found as ``Ledger.execute`` finds them.

The writer's cache: what it loaded or saved, as of its last commit. Before each group it
reads the store's last position; if anything but its own commits came in since (another
process, or ``Ledger.execute`` in this one), it reads those positions' aggregate ids and
drops them from the cache (and from the ledger's credential cache), so the cache never
validates against state older than the store's.
"""

from __future__ import annotations

import copy
import logging
import queue
import threading
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError

from lodestone.domain import ids
from lodestone.domain.access import Principal
from lodestone.domain.recording import recording_at
from lodestone.domain.refusals import Conflict, Refusal
from lodestone.ledger.application import MAX_BULK, Ledger, Outcome, last_position
from lodestone.ledger.commands import Command
from lodestone.ledger.idempotency import IdempotencyRecord
from lodestone.ledger.stores import EventRows, WriterLock
from lodestone.ledger.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)

#: Aggregates the writer keeps in memory; past it the cache starts again empty.
CACHE_SIZE = 20_000


@dataclass
class Job:
    """One request: its commands and where its answer goes."""

    principal: Principal
    batch: Sequence[Command]
    idempotency_key: str | None = None
    fingerprint: str = ""
    bulk: bool = False
    answer: Future[Outcome] = field(default_factory=Future)


class GroupWriter:
    def __init__(
        self,
        ledger: Ledger,
        *,
        rows: EventRows | None = None,
        lock: WriterLock | None = None,
        max_commands: int = MAX_BULK,
        on_group: Callable[[int], None] | None = None,
    ) -> None:
        self.ledger = ledger
        # Told how many commands each commit carried (the gateway's metrics).
        self._on_group = on_group
        # Writers of other processes on the same database wait while this one validates
        # and commits a group (PostgreSQL: an advisory lock); without one they race and
        # the loser runs its group again request by request.
        self._lock = lock
        # The store's rows on a connection of their own (the gateway's): the last
        # position and a group's existence checks in one query each, without waiting
        # for a connection of the library's pool, which the projector threads share.
        self._rows = rows
        self.max_commands = max_commands
        self._queue: queue.Queue[Job] = queue.Queue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._cache: dict[UUID, Aggregate] = {}
        self._seen = ledger.recorder.max_notification_id() or 0
        self._own: set[int] = set()  # positions this writer stored above ``_seen``
        #: How many requests the latest commits carried (bounded: the writer runs for
        #: the life of the process), how many groups it committed, and how many lost
        #: their commit to another writer and ran again request by request.
        self.group_sizes: deque[int] = deque(maxlen=10_000)
        self.groups = 0
        self.retried = 0

    # --- the requests' side -----------------------------------------------------------

    def submit(
        self,
        principal: Principal,
        batch: Sequence[Command],
        *,
        idempotency_key: str | None = None,
        fingerprint: str = "",
        bulk: bool = False,
    ) -> Outcome:
        """Queues the request and waits for its commit: the answer, or its refusal."""
        self.ledger.check_batch(batch)
        if self._thread is None or self._stop.is_set():
            raise RuntimeError("the group writer is not running")
        job = Job(principal, batch, idempotency_key, fingerprint, bulk)
        self._queue.put(job)
        return job.answer.result()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="group-writer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        while True:  # a request that queued as the writer stopped gets an answer too
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            job.answer.set_exception(RuntimeError("the ledger is stopping"))

    # --- the writer -------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                first = self._queue.get(timeout=0.1)
            except queue.Empty:
                continue
            jobs, commands = [first], len(first.batch)
            # Whatever queued while the last commit ran, up to one bulk submission's size.
            while commands < self.max_commands:
                try:
                    job = self._queue.get_nowait()
                except queue.Empty:
                    break
                jobs.append(job)
                commands += len(job.batch)
            try:
                self.write_group(jobs)
            except BaseException as error:
                # Not hidden: every request of the group that has no answer yet gets this
                # error as its answer (a 500), and the writer goes on with the next group.
                log.exception("group commit failed")
                for job in jobs:
                    if not job.answer.done():
                        job.answer.set_exception(error)
                self._cache.clear()

    def write_group(self, jobs: Sequence[Job]) -> None:
        """Validates ``jobs`` in order, saves the accepted ones in one transaction, then
        answers every one of them. Run by the writer thread only (tests call it
        directly to make a group of their choosing)."""
        if self._lock is None:
            self._write_group(jobs)
            return
        self._lock.acquire()
        try:
            self._write_group(jobs)
        finally:
            self._lock.release()

    def _write_group(self, jobs: Sequence[Job]) -> None:
        self._forget_others_writes()
        checked, present = self._existing(jobs)

        def exists(id: UUID) -> bool:
            if id in staged or id in self._cache:
                return True
            return id in present if id in checked else self._stored(id)

        staged: dict[UUID, Aggregate] = {}
        order: dict[tuple[UUID, int], int] = {}
        answers: list[tuple[Job, list[dict[str, Any]] | BaseException, bool]] = []
        last_at = None
        for job in jobs:
            record_id = (
                ids.idempotency_id(job.principal.id, job.idempotency_key)
                if job.idempotency_key
                else None
            )
            try:
                if record_id is not None:
                    earlier = (
                        self._earlier_answer(staged, record_id, job.fingerprint)
                        if record_id not in checked or record_id in present or record_id in staged
                        else None
                    )
                    if earlier is not None:
                        answers.append((job, earlier, True))
                        continue
                uow = UnitOfWork(
                    self.ledger.repository,
                    self.ledger.controls,
                    load=lambda id: self._copy(staged, id),
                    exists=exists,
                )
                last_at = at = self.ledger.clock()
                with recording_at(at):
                    results = self.ledger.run(
                        uow,
                        job.principal,
                        job.batch,
                        record_id,
                        job.idempotency_key,
                        job.fingerprint,
                        job.bulk,
                        at,
                    )
            except Refusal as refused:
                # This request's copies are dropped: the group's state is as before it.
                answers.append((job, refused, False))
                continue
            except Exception as error:
                # A fault in one request's handling: dropped as a refusal is, and passed
                # on as that request's answer (a 500), not hidden.
                log.exception("a command of the group failed")
                answers.append((job, error, False))
                continue
            for id, aggregate in uow.loaded().items():
                base = staged.get(id)
                already = len(base.pending_events) if base is not None else 0
                for event in aggregate.pending_events[already:]:
                    order[(id, event.originator_version)] = len(order)
                staged[id] = aggregate
            answers.append((job, results, False))

        changed = [a for a in staged.values() if a.pending_events]
        position: int | None = None
        if changed:
            changed_ids = [a.id for a in changed]
            try:
                with recording_at(last_at or self.ledger.clock()):
                    recordings = self.ledger.save_events(changed, order)
            except IntegrityError:
                # Another writer stored first: each request again, alone, on fresh state.
                for id in staged:
                    self._cache.pop(id, None)
                self._alone(jobs)
                return
            except BaseException:
                # Nothing was stored, but the staged aggregates gave up their pending
                # events to the failed save: they are not the stored state.
                for id in staged:
                    self._cache.pop(id, None)
                raise
            position = last_position(recordings)
            self._stored_own([r.notification.id for r in recordings])
            self.ledger.committed(changed_ids)
        if len(self._cache) + len(staged) > CACHE_SIZE:
            self._cache.clear()
        self._cache.update(staged)
        self._committed_group(jobs)
        self.groups += 1
        replay_position: int | None = None
        for job, answer, replayed in answers:
            if isinstance(answer, BaseException):
                job.answer.set_exception(answer)
                continue
            if replayed:
                if replay_position is None:  # covers the first answer, wherever it was
                    replay_position = self.ledger.recorder.max_notification_id()
                job.answer.set_result(Outcome(answer, replayed=True, position=replay_position))
            else:
                job.answer.set_result(Outcome(answer, position=position))

    def _committed_group(self, jobs: Sequence[Job]) -> None:
        self.group_sizes.append(len(jobs))
        if self._on_group is not None:
            self._on_group(sum(len(job.batch) for job in jobs))

    def _alone(self, jobs: Sequence[Job]) -> None:
        self.retried += 1
        for job in jobs:
            try:
                outcome = self.ledger.execute(
                    job.principal,
                    job.batch,
                    idempotency_key=job.idempotency_key,
                    fingerprint=job.fingerprint,
                    bulk=job.bulk,
                )
            except Exception as error:  # the request's answer: a problem, or a 500
                job.answer.set_exception(error)
            else:
                job.answer.set_result(outcome)
        self._committed_group(jobs)

    # --- state ------------------------------------------------------------------------

    def _copy(self, staged: dict[UUID, Aggregate], id: UUID) -> Aggregate | None:
        """A request's own copy of an aggregate: as the group left it, else as this
        writer last saved or loaded it, else from the store."""
        found = staged.get(id) or self._cache.get(id)
        if found is not None:
            return copy.deepcopy(found)
        try:
            loaded: Aggregate = self.ledger.repository.get(id)
        except AggregateNotFoundError:
            return None
        return loaded

    def _existing(self, jobs: Sequence[Job]) -> tuple[set[UUID], set[UUID]]:
        """(ids asked about, those of them stored): every id the group's commands will
        require to be new, and its idempotency records, in one query."""
        if self._rows is None:
            return set(), set()
        asked: set[UUID] = set()
        for job in jobs:
            if job.idempotency_key:
                asked.add(ids.idempotency_id(job.principal.id, job.idempotency_key))
            for command in job.batch:
                try:
                    asked.update(command.new_ids(job.principal))
                except (Refusal, TypeError, ValueError, AttributeError):
                    continue  # a malformed command: its handler names the fault
        asked.difference_update(self._cache)
        if not asked:
            return asked, set()
        return asked, {row.aggregate_id for row in self._rows.for_aggregates(asked)}

    def _stored(self, id: UUID) -> bool:
        return bool(self.ledger.recorder.select_events(id, limit=1))

    def _earlier_answer(
        self, staged: dict[UUID, Aggregate], record_id: UUID, fingerprint: str
    ) -> list[dict[str, Any]] | None:
        record = staged.get(record_id) or self._cache.get(record_id)
        if record is None:
            try:
                record = self.ledger.repository.get(record_id)
            except AggregateNotFoundError:
                return None
        if not isinstance(record, IdempotencyRecord):
            return None
        if record.fingerprint != fingerprint:
            raise Conflict(
                "Idempotency-Key",
                "idempotency-key-reuse",
                "this key was already used for a different request",
            )
        return record.results

    def _stored_own(self, positions: list[int]) -> None:
        if not positions:
            return
        low, high = min(positions), max(positions)
        if low == self._seen + 1 and high - low + 1 == len(positions):
            self._seen = high  # nobody wrote between: nothing to read back
        else:
            self._own.update(positions)

    def _forget_others_writes(self) -> None:
        """Drops from the cache every aggregate another writer stored since the last
        group (one query when nobody did)."""
        top = (
            self._rows.max_position()
            if self._rows is not None
            else self.ledger.recorder.max_notification_id() or 0
        )
        if top <= self._seen:
            return
        if top - self._seen - len(self._own) > CACHE_SIZE:
            self._cache.clear()
        else:
            others = [
                n.originator_id
                for n in self.ledger.recorder.select_notifications(
                    start=self._seen + 1, limit=top - self._seen, stop=top
                )
                if n.id not in self._own
            ]
            for id in others:
                self._cache.pop(id, None)  # type: ignore[arg-type]
            self.ledger.committed(others)  # type: ignore[arg-type]
        self._own = {p for p in self._own if p > top}
        self._seen = top
