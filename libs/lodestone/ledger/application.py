"""The Lodestone ledger: an eventsourcing Application with one method per use.

``execute`` runs one command, or a bulk submission of many, against a unit of work and
then saves every aggregate touched in ONE transaction: all of it is stored or none.
A concurrent writer that got there first makes the save fail on the (originator id,
version) key; we then run the command again on fresh state, so its checks see the
other writer's effects (no lost update), and answer 409 only if that keeps happening.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
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


@dataclass(frozen=True)
class Outcome:
    results: list[dict[str, Any]]
    replayed: bool = False  # True: an earlier request with this Idempotency-Key answered


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
        super().__init__(env)

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
        if not batch:
            raise InvalidInput("events", "required", "submit at least one event")
        if len(batch) > MAX_BULK:
            raise InvalidInput("events", "bulk-size", f"at most {MAX_BULK} events per request")
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
                try:
                    self.save(*uow.changed())
                except IntegrityError:
                    continue  # someone else wrote first: run again on fresh state
            return Outcome(results)
        raise Conflict(
            "", "concurrent-update", "the same batches kept changing under this request; retry"
        )

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
        return Outcome(record.results, replayed=True)

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
        try:
            credential: Any = self.repository.get(ids.credential_id(key_hash))
        except AggregateNotFoundError:
            return None
        if not isinstance(credential, Credential) or not credential.valid_at(self._clock()):
            return None
        return credential.principal()

    def _get(self, cls: type[Any], id: UUID, what: str) -> Any:
        try:
            aggregate: Any = self.repository.get(id)
        except AggregateNotFoundError:
            aggregate = None
        if not isinstance(aggregate, cls):
            raise NotFound("", "exists", f"{what} is not registered")
        return aggregate


def _replayable(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [dict(r) for r in results]
