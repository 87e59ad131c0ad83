"""The projector loop: poll, process a batch, commit rows and positions together, stop
on a flag.

Why the order is safe: the view writes the rows of a batch of events and the positions
of its last events in ONE transaction. A crash before the commit loses the rows and the
positions together, so the next run starts from the old positions and applies the same
events again onto the old rows: each event takes effect exactly once. After a failed
commit the feed is rewound to the committed positions, never skipped forward.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

from lodestone.ledger import Ledger
from lodestone.projections.base import ModelReplaced, Projection, View
from lodestone.projections.genealogy import GenealogyProjection, GenealogyView
from lodestone.projections.tables import TableView
from lodestone.streaming.feeds import Feed, NotificationLogFeed, SharedLog

log = logging.getLogger(__name__)

#: A switch replaces a model once; more in a row than this means something is wrong.
REPLACED_RETRIES = 5


class Projector:
    """One projection onto its view from one feed."""

    def __init__(
        self, projection: Projection, view: View[Any], feed: Feed, batch_size: int = 1000
    ) -> None:
        self.projection = projection
        self.view = view
        self.feed = feed
        self.batch_size = batch_size
        self._lock = threading.Lock()  # one applier at a time: the loop or a catch-up

    def position(self, source: str = NotificationLogFeed.source) -> int:
        return self.view.position(source)

    def run_once(self) -> int:
        """Apply the next batch of events; returns how many were applied."""
        with self._lock:
            for _ in range(REPLACED_RETRIES):
                items = self.feed.poll(self.view.position, self.batch_size)
                if not items:
                    return 0
                latest = {item.source: item.position for item in items}
                # Where each event came from is for the change log; a view keeping none
                # (a rebuild's copy) is not told, a million times over.
                marks = not isinstance(self.view, TableView) or self.view.change_retention > 0
                process = self.projection.process_event
                try:
                    with self.view.transaction(latest) as writer:
                        for item in items:
                            if item.event is None:
                                continue  # left undecoded: no handler here wants it
                            if marks:
                                self.view.at(item.source, item.position)
                            process(item.event, writer)
                except ModelReplaced as replaced:
                    # A rebuilt copy was switched in (or the rows reset) since the
                    # positions were read: nothing was written; go on from its positions.
                    log.info("%s; reading its positions again", replaced)
                    self.feed.rewind(self.view.position)
                    continue
                except BaseException:
                    self.feed.rewind(self.view.position)
                    raise
                return len(items)
            raise RuntimeError(f"{self.projection.name} kept being replaced while applying")

    def catch_up(self, progress: Callable[[int], None] | None = None) -> int:
        total = 0
        while applied := self.run_once():
            total += applied
            if progress:
                progress(applied)
        return total

    def run(self, stop: threading.Event, interval: float = 0.05) -> None:
        while not stop.is_set():
            try:
                applied = self.run_once()
            except Exception:
                # Nothing was committed for this batch; log and try again later rather
                # than skip it (skipping would lose events from the read model).
                log.exception("projector %s failed; retrying", self.projection.name)
                stop.wait(1.0)
                continue
            if not applied:
                stop.wait(interval)


def log_projector(ledger: Ledger, projection: Projection, view: View[Any]) -> Projector:
    """``projection`` following the ledger's notification log."""
    return Projector(projection, view, NotificationLogFeed(ledger.recorder, ledger.mapper))


def shared_log_projectors(
    ledger: Ledger, models: Iterable[tuple[str, Projection, View[Any]]]
) -> dict[str, Projector]:
    """Projectors of one process following the notification log together: it is read
    and decoded once for all of them (each keeps its own positions and transactions)."""
    shared = SharedLog(ledger.recorder, ledger.mapper)
    return {name: Projector(projection, view, shared.feed()) for name, projection, view in models}


def genealogy_projector(ledger: Ledger, view: GenealogyView) -> Projector:
    """The genealogy projection following the ledger's notification log."""
    return log_projector(ledger, GenealogyProjection(), view)
