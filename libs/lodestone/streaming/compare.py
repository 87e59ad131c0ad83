"""Comparing a live read model with a copy projected afresh from the event store.

What ``lodestone check`` does for every registered read model: the projection is applied
from position 0 into a scratch copy, up to the notification the live model has reached
(never further: a live model a little behind the store is not wrong), and the two
fingerprints (a hash over every row of every table) are compared. The copy is deleted
afterwards; the live model is only read.

A live model fed from Kafka has positions per partition, not per notification: it cannot
be compared at the same point here (``lodestone rebuild --from-kafka`` says whether a
rebuild from offset 0 gives the same state).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from lodestone.projections.base import Projection, View
from lodestone.projections.tables import TableView
from lodestone.streaming.feeds import Item, NotificationLogFeed, Positions
from lodestone.streaming.projector import Projector


@dataclass(frozen=True)
class Compared:
    """One read model compared: ``position`` the notification both were compared at
    (0: the live model has applied nothing from the event store), ``events`` applied to
    the copy, and the two fingerprints (``rebuilt`` None: not compared)."""

    name: str
    position: int
    events: int
    live: str
    rebuilt: str | None

    @property
    def compared(self) -> bool:
        return self.rebuilt is not None

    @property
    def same(self) -> bool:
        return self.rebuilt == self.live


class UpTo:
    """A notification-log feed that ends at ``last``."""

    def __init__(self, feed: NotificationLogFeed, last: int) -> None:
        self._feed = feed
        self._last = last

    def poll(self, positions: Positions, limit: int) -> Sequence[Item]:
        if positions(self._feed.source) >= self._last:
            return []
        items = self._feed.poll(positions, min(limit, self._last - positions(self._feed.source)))
        return [item for item in items if item.position <= self._last]

    def rewind(self, positions: Positions) -> None:
        self._feed.rewind(positions)


def compare_with_store(
    projection: Projection,
    live: View[Any],
    scratch: TableView[Any],
    feed: NotificationLogFeed,
    *,
    progress: Callable[[int], None] | None = None,
    batch_size: int = 5000,
) -> Compared:
    """Project ``feed`` from 0 into ``scratch`` up to where ``live`` is, compare their
    fingerprints, and delete ``scratch``."""
    try:
        position = live.position(feed.source)
        fingerprint = live.fingerprint()
        if position == 0:
            return Compared(projection.name, 0, 0, fingerprint, None)
        scratch.change_retention = 0  # nobody follows the copy
        scratch.reset()
        applied = Projector(projection, scratch, UpTo(feed, position), batch_size).catch_up(
            progress
        )
        return Compared(projection.name, position, applied, fingerprint, scratch.fingerprint())
    finally:
        scratch.discard()
