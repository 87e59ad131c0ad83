"""Ordered streams of events for projectors.

A feed yields items (source, position, event). ``source`` names an ordered stream: the
event store's notification log ("ledger"), or one Kafka topic partition. Order holds
within a source only; the projection must not care how sources interleave. Positions are
"how far a reader has come": the notification id of the last event applied, or the next
Kafka offset to read.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from eventsourcing.persistence import ApplicationRecorder, Mapper

Positions = Callable[[str], int]


@dataclass(frozen=True)
class Item:
    """``event`` None: the feed did not decode it, since the projection it feeds has no
    handler for its class; its position still counts."""

    source: str
    position: int
    event: Any


class Feed(Protocol):
    def poll(self, positions: Positions, limit: int) -> Sequence[Item]:
        """The next events after the committed ``positions``, in order per source."""
        ...

    def rewind(self, positions: Positions) -> None:
        """Forget anything read past the committed positions (after a failed commit)."""
        ...


class NotificationLogFeed:
    """Follows the event store directly. SQLite has no push subscription, so this
    polls; it keeps no state of its own, so rewinding is a no-op."""

    source = "ledger"

    def __init__(self, recorder: ApplicationRecorder, mapper: Mapper[Any]) -> None:
        self._recorder = recorder
        self._mapper = mapper

    def poll(self, positions: Positions, limit: int) -> list[Item]:
        notifications = self._recorder.select_notifications(
            start=positions(self.source), limit=limit, inclusive_of_start=False
        )
        return [Item(self.source, n.id, self._mapper.to_domain_event(n)) for n in notifications]

    def rewind(self, positions: Positions) -> None:
        return None
