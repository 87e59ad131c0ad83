"""Ordered streams of events for projectors.

A feed yields items (source, position, event). ``source`` names an ordered stream: the
event store's notification log ("ledger"), or one Kafka topic partition. Order holds
within a source only; the projection must not care how sources interleave. Positions are
"how far a reader has come": the notification id of the last event applied, or the next
Kafka offset to read.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
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


class SharedLog:
    """The notification log read and decoded once for every projector of a process.

    Pages of decoded items are kept by the position they follow; a page is the complete
    run of notifications after that position, so a projector whose position is the
    start of a page or any id within one continues from it without reading the log.
    Each projector keeps its own positions and transaction: the log only saves the
    reading and decoding. At most ``max_items`` items are kept (oldest page first out),
    so a projector far behind the others never holds their memory: it reads its pages
    again itself."""

    def __init__(
        self, recorder: ApplicationRecorder, mapper: Mapper[Any], max_items: int = 20_000
    ) -> None:
        self._recorder = recorder
        self._mapper = mapper
        self._max_items = max_items
        self._pages: OrderedDict[int, list[Item]] = OrderedDict()
        self._within: dict[int, tuple[int, int]] = {}  # id -> (page start, index)
        self._items = 0
        self._lock = threading.Lock()
        self._reading: dict[tuple[int, int], threading.Event] = {}

    def kept(self) -> int:
        """How many decoded items the cache holds now."""
        with self._lock:
            return self._items

    def feed(self) -> SharedLogFeed:
        return SharedLogFeed(self)

    def page(self, start: int, limit: int) -> list[Item]:
        while True:
            with self._lock:
                cached = self._cached(start, limit)
                if cached is not None:
                    return cached
                pending = self._reading.get((start, limit))
                if pending is None:
                    pending = self._reading[(start, limit)] = threading.Event()
                    break
            # Another projector is reading this very page: wait for it, not read twice.
            pending.wait()
        try:
            notifications = self._recorder.select_notifications(
                start=start, limit=limit, inclusive_of_start=False
            )
            items = [
                Item(NotificationLogFeed.source, n.id, self._mapper.to_domain_event(n))
                for n in notifications
            ]
            with self._lock:
                # A short page (the log's end now) is kept too: whatever follows it
                # later is read from its last id, which the page never answers for.
                if items:
                    self._keep(start, items)
            return items
        finally:
            with self._lock:
                del self._reading[(start, limit)]
            pending.set()

    def _cached(self, start: int, limit: int) -> list[Item] | None:
        page = self._pages.get(start)
        if page is not None:
            return page[:limit]
        found = self._within.get(start)
        if found is None:
            return None
        first, index = found
        rest = self._pages[first][index + 1 : index + 1 + limit]
        # The end of a page: the next page starts at this id, if it is kept.
        return rest or None

    def _keep(self, start: int, items: list[Item]) -> None:
        if start in self._pages:
            return
        self._pages[start] = items
        for index, item in enumerate(items):
            self._within[item.position] = (start, index)
        self._items += len(items)
        while self._items > self._max_items and len(self._pages) > 1:
            first, dropped = self._pages.popitem(last=False)
            for item in dropped:
                if self._within.get(item.position, (None, 0))[0] == first:
                    del self._within[item.position]
            self._items -= len(dropped)


class SharedLogFeed:
    """One projector's feed over a :class:`SharedLog`: stateless like
    :class:`NotificationLogFeed`, so rewinding is a no-op."""

    source = NotificationLogFeed.source

    def __init__(self, log: SharedLog) -> None:
        self._log = log

    def poll(self, positions: Positions, limit: int) -> list[Item]:
        return self._log.page(positions(self.source), limit)

    def rewind(self, positions: Positions) -> None:
        return None
