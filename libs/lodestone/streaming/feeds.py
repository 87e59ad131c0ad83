"""Ordered streams of (position, event) for projectors.

The embedded default follows the event store's notification log directly (SQLite has no
push subscription, so the projector polls). A Kafka feed yields the same shape.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from eventsourcing.persistence import ApplicationRecorder, Mapper


class Feed(Protocol):
    source: str

    def read(self, after: int, limit: int) -> Sequence[tuple[int, Any]]:
        """Up to ``limit`` events with positions greater than ``after``, in order."""
        ...


class NotificationLogFeed:
    source = "ledger"

    def __init__(self, recorder: ApplicationRecorder, mapper: Mapper[Any]) -> None:
        self._recorder = recorder
        self._mapper = mapper

    def read(self, after: int, limit: int) -> list[tuple[int, Any]]:
        notifications = self._recorder.select_notifications(
            start=after, limit=limit, inclusive_of_start=False
        )
        return [(n.id, self._mapper.to_domain_event(n)) for n in notifications]

    def head(self) -> int:
        return self._recorder.max_notification_id() or 0
