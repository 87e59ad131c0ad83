"""The first answer to an Idempotency-Key, saved in the same transaction as the
command's events: a retry finds it and gets that answer; two racing requests with one
key collide on its id, so only one of them is ever stored."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate

from lodestone.domain.recording import LedgerAggregate


class IdempotencyRecord(LedgerAggregate):
    class Recorded(Aggregate.Created):
        principal_id: str
        key: str
        fingerprint: str
        results: list[dict[str, Any]]

        def apply(self, record: IdempotencyRecord) -> None:
            record.fingerprint = self.fingerprint
            record.results = self.results

    fingerprint: str
    results: list[dict[str, Any]]

    def __init__(self) -> None:
        pass

    @classmethod
    def record(
        cls, id: UUID, principal_id: str, key: str, fingerprint: str, results: list[dict[str, Any]]
    ) -> IdempotencyRecord:
        return cls._create(
            cls.Recorded,
            id=id,
            principal_id=principal_id,
            key=key,
            fingerprint=fingerprint,
            results=results,
        )
