"""The Lodestone ledger: an eventsourcing Application with one method per use.

``execute`` runs one command, or a bulk submission of many, against a unit of work and
then saves every aggregate touched in ONE transaction: all of it is stored or none.
A concurrent writer that got there first makes the save fail on the (originator id,
version) key; we then run the command again on fresh state, so its checks see the
other writer's effects (no lost update), and answer 409 only if that keeps happening.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application, ProcessingEvent
from eventsourcing.persistence import EventStore, IntegrityError, Transcoder
from eventsourcing.utils import Environment

from lodestone.domain import ids
from lodestone.domain.access import Credential, Principal
from lodestone.domain.actors import Actor, Facility
from lodestone.domain.batches import Batch
from lodestone.domain.licences import Licence
from lodestone.domain.recording import recording_at
from lodestone.domain.refusals import Conflict, InvalidInput, NotFound, Refusal
from lodestone.domain.values import ExportControls
from lodestone.ledger import commands, handlers
from lodestone.ledger.chained import ChainedEventStore, ChainTranscoder
from lodestone.ledger.idempotency import IdempotencyRecord
from lodestone.ledger.unit_of_work import UnitOfWork

ATTEMPTS = 5
MAX_BULK = 10_000
#: How long a credential read from the store is trusted without reading it again. A
#: revocation or rotation through this ledger takes effect at once (its commit evicts the
#: credential); one made by another process sharing the store within this many seconds.
CREDENTIAL_TTL = 1.0
CREDENTIALS_CACHED = 10_000


@dataclass(frozen=True)
class Outcome:
    results: list[dict[str, Any]]
    replayed: bool = False  # True: an earlier request with this Idempotency-Key answered
    #: The store position (notification id) a read model must have reached to show this
    #: write: the last position of the transaction that stored it (of a replay: the
    #: store's last position when it was answered, which covers the first answer).
    position: int | None = None


class Ledger(Application[UUID]):
    name = "Lodestone"
    # Licences are drawn by every extraction or export and can collect thousands of
    # events; snapshots keep loading them flat.
    snapshotting_intervals = {Licence: 200, Batch: 200}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # The library names tables after the application (lodestone_events on
        # PostgreSQL): a subclass must read and write the same store.
        super().__init_subclass__(**kwargs)
        cls.name = "Lodestone"

    def __init__(
        self,
        env: Mapping[str, str],
        clock: Callable[[], datetime] | None = None,
        controls: ExportControls | None = None,
    ) -> None:
        self._clock = clock or (lambda: datetime.now(UTC))
        self._controls = controls or ExportControls()
        #: key hash -> (credential, monotonic time it was read); see CREDENTIAL_TTL.
        self._credentials: dict[str, tuple[Credential | None, float]] = {}
        self._credentials_lock = threading.Lock()
        super().__init__(env)

    @property
    def controls(self) -> ExportControls:
        return self._controls

    def clock(self) -> datetime:
        """The ledger's "now"."""
        return self._clock()

    def construct_env(self, name: str, env: Mapping[str, str] | None = None) -> Environment:
        # Only the settings we were given: the library would otherwise let any process
        # environment variable (e.g. PERSISTENCE_MODULE) silently redirect the store.
        _env = dict(type(self).env)
        _env["IS_SNAPSHOTTING_ENABLED"] = "y"
        _env.update(env or {})
        return Environment(name, _env)

    def construct_transcoder(self) -> Transcoder:
        transcoder = ChainTranscoder()
        self.register_transcodings(transcoder)
        return transcoder

    def construct_event_store(self) -> EventStore[UUID]:
        # Every event is stored with its hash, chained to its aggregate's previous one.
        return ChainedEventStore(mapper=self.mapper, recorder=self.recorder)

    # --- writes ------------------------------------------------------------------------

    def execute(
        self,
        principal: Principal,
        batch: Sequence[commands.Command],
        *,
        idempotency_key: str | None = None,
        fingerprint: str = "",
        bulk: bool = False,
        now: datetime | None = None,
    ) -> Outcome:
        """Runs ``batch`` and saves what it changed in one transaction. Every event is
        recorded at the ledger's "now": the clock's, or ``now`` when given (the demo
        loader replays its chain at the times the steps were reported)."""
        self.check_batch(batch)
        record_id = ids.idempotency_id(principal.id, idempotency_key) if idempotency_key else None
        for _ in range(ATTEMPTS):
            if record_id is not None:
                earlier = self._idempotent_answer(record_id, fingerprint)
                if earlier is not None:
                    return earlier
            uow = UnitOfWork(self.repository, self._controls)
            at = self._clock() if now is None else now
            # Every event made here, and any snapshot the save takes, is stamped with
            # ``at``: one command, one record time.
            with recording_at(at):
                results = self.run(
                    uow, principal, batch, record_id, idempotency_key, fingerprint, bulk, at
                )
                changed = uow.changed()
                try:
                    recordings = self.save(*changed)
                except IntegrityError:
                    continue  # someone else wrote first: run again on fresh state
            self.committed([a.id for a in changed])
            return Outcome(results, position=last_position(recordings))
        raise Conflict(
            "", "concurrent-update", "the same batches kept changing under this request; retry"
        )

    def run(
        self,
        uow: UnitOfWork,
        principal: Principal,
        batch: Sequence[commands.Command],
        record_id: UUID | None,
        idempotency_key: str | None,
        fingerprint: str,
        bulk: bool,
        at: datetime,
    ) -> list[dict[str, Any]]:
        """Validates ``batch`` against ``uow`` and stages what it changes there (and its
        idempotency record): one command's, or one bulk submission's, unit of validation.
        Saving is the caller's: ``execute`` saves each run alone, the group writer saves
        the runs of a group together."""
        results = []
        for n, command in enumerate(batch):
            try:
                results.append(handlers.handle(command, uow, principal, at))
            except Refusal as refusal:
                if bulk:  # name the event in the submission that was refused
                    raise refusal.at(f"events[{n}]") from None
                raise
        if record_id is not None:
            uow.add(
                IdempotencyRecord.record(
                    record_id,
                    principal.id,
                    idempotency_key or "",
                    fingerprint,
                    _replayable(results),
                )
            )
        return results

    def check_batch(self, batch: Sequence[commands.Command]) -> None:
        if not batch:
            raise InvalidInput("events", "required", "submit at least one event")
        if len(batch) > MAX_BULK:
            raise InvalidInput("events", "bulk-size", f"at most {MAX_BULK} events per request")

    def save_events(
        self,
        aggregates: Sequence[Any],
        order: Mapping[tuple[UUID, int], int],
    ) -> list[Any]:
        """Saves the pending events of ``aggregates`` in ONE transaction, in the order
        ``order`` ranks them ((aggregate id, version) -> rank): the group writer's save,
        which keeps the order its commands were validated in, so the store positions
        (and every chain's ``prev``) follow it."""
        processing_event: ProcessingEvent[UUID] = ProcessingEvent()
        processing_event.collect_events(*aggregates)
        processing_event.events.sort(key=lambda e: order[(e.originator_id, e.originator_version)])
        recordings = self._record(processing_event)
        self._take_snapshots(processing_event)
        self._notify(recordings)
        return recordings

    def _take_snapshots(self, processing_event: ProcessingEvent[UUID]) -> None:
        """Snapshots from the aggregates in memory: the library would load each one
        again from the store, version by version, to take the snapshot of a state this
        save has in hand. An aggregate whose snapshot falls on an event before its last
        one in this save is left to the library (rare: the interval is 200 events)."""
        if not (self.snapshots and self.snapshotting_intervals):
            return
        rest = ProcessingEvent[UUID]()
        for event in processing_event.events:
            aggregate: Any = processing_event.aggregates.get(event.originator_id)
            if aggregate is None:
                continue
            interval = self.snapshotting_intervals.get(type(aggregate))
            if interval is None or event.originator_version % interval:
                continue
            snapshot_class = getattr(type(aggregate), "Snapshot", None)
            if (
                aggregate.version == event.originator_version
                and snapshot_class is not None
                and type(aggregate) not in self.snapshotting_projectors
            ):
                self.snapshots.put([snapshot_class.take(aggregate)])
            else:
                rest.events.append(event)
                rest.aggregates[aggregate.id] = aggregate
        if rest.events:
            super()._take_snapshots(rest)

    def committed(self, changed: Sequence[UUID]) -> None:
        """What this process just stored: cached credentials among them are read again."""
        with self._credentials_lock:
            if self._credentials:
                for id in changed:
                    self._credentials.pop(str(id), None)

    def _idempotent_answer(self, record_id: UUID, fingerprint: str) -> Outcome | None:
        try:
            record: Any = self.repository.get(record_id)
        except AggregateNotFoundError:
            return None
        assert isinstance(record, IdempotencyRecord)
        if record.fingerprint != fingerprint:
            raise Conflict(
                "Idempotency-Key",
                "idempotency-key-reuse",
                "this key was already used for a different request",
            )
        return Outcome(record.results, replayed=True, position=self.recorder.max_notification_id())

    # --- reads -------------------------------------------------------------------------

    def batch(self, ref: str, own_actor: UUID | None = None) -> Batch:
        id = handlers.batch_ref(ref, own_actor, "batch")
        return self._get(Batch, id, f"batch {ref}")

    def actor(self, id: UUID) -> Actor:
        return self._get(Actor, id, "actor")

    def actor_by_code(self, code: str) -> Actor:
        return self._get(Actor, ids.actor_id(handlers.code(code, "code")), f"actor {code}")

    def facility(self, id: UUID) -> Facility:
        return self._get(Facility, id, "facility")

    def facility_by_code(self, code: str) -> Facility:
        return self._get(Facility, ids.facility_id(handlers.code(code, "code")), f"facility {code}")

    def licence(self, id: UUID) -> Licence:
        return self._get(Licence, id, "licence")

    def licence_by_number(self, number: str) -> Licence:
        return self._get(
            Licence, ids.licence_id(handlers.code(number, "number")), f"licence {number}"
        )

    def authenticate(self, key_hash: str) -> Principal | None:
        credential = self._credential(key_hash)
        if credential is None or not credential.valid_at(self._clock()):
            return None
        return credential.principal()

    def _credential(self, key_hash: str) -> Credential | None:
        # Every request presents a key: reading its credential from the store each time
        # was a fifth of a single-event write. Cached by the credential's id, so that
        # ``committed`` finds it; never handed out for a command to change.
        id = ids.credential_id(key_hash)
        with self._credentials_lock:
            cached = self._credentials.get(str(id))
        if cached is not None and time.monotonic() - cached[1] < CREDENTIAL_TTL:
            return cached[0]
        read = time.monotonic()
        try:
            found: Any = self.repository.get(id, deepcopy_from_cache=False)
        except AggregateNotFoundError:
            found = None
        credential = found if isinstance(found, Credential) else None
        with self._credentials_lock:
            if len(self._credentials) >= CREDENTIALS_CACHED:
                self._credentials.clear()
            self._credentials[str(id)] = (credential, read)
        return credential

    def _get(self, cls: type[Any], id: UUID, what: str) -> Any:
        try:
            aggregate: Any = self.repository.get(id)
        except AggregateNotFoundError:
            aggregate = None
        if not isinstance(aggregate, cls):
            raise NotFound("", "exists", f"{what} is not registered")
        return aggregate


def last_position(recordings: Sequence[Any]) -> int | None:
    return max((r.notification.id for r in recordings), default=None)


def _replayable(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [dict(r) for r in results]
