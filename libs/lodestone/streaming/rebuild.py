"""Rebuilding a read model beside the live one, so that its readers never see it empty
or half-built.

The projection is applied from position 0 into a copy (``open_shadow``: a SQLite file
of its own, a PostgreSQL schema of its own) while the live model goes on serving and
being kept up to date. When the copy has caught up (with the notification log, or with
the end offsets the Kafka topic had when the rebuild began), it is switched in, in one
transaction (``TableView.switch_into``): rows, positions and version together, so a
reader sees the whole old model until the commit and the whole new one after it. The
copy writes no change log (nobody follows it); the switch leaves a reset marker in the
live one, so that streams tell their readers to re-read the model.

Why a live projector may go on running: it reads its positions, then writes in a
transaction that first checks the model's generation. A switch makes a new generation,
so a batch begun on the old rows is refused whole (``ModelReplaced``) and applied again
from the copy's positions: nothing lost, nothing applied twice. An upgrade (a new
version) is the same rebuild; processes of the old release then refuse to write
(``ModelUpgraded``) until they are restarted on the new one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lodestone.projections.base import Projection
from lodestone.projections.tables import Switched, TableView
from lodestone.streaming.feeds import Feed
from lodestone.streaming.projector import Projector

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Rebuilt:
    events: int  # applied to the copy
    fingerprint: str  # of the copy, now the live model
    switched: Switched

    @property
    def same_as_before(self) -> bool | None:
        """Whether the live model held exactly these rows before (None: it was of
        another version, or empty, or at other positions: not comparable)."""
        s = self.switched
        if s.before is None or s.positions_before != s.positions:
            return None
        return s.before == self.fingerprint


def rebuild_beside(
    projection: Projection,
    shadow: TableView[Any],
    target: Path | str,
    feed: Feed,
    *,
    caught_up: Callable[[], bool] | None = None,
    progress: Callable[[int], None] | None = None,
    batch_size: int = 5000,
) -> Rebuilt:
    """Apply ``feed`` from position 0 onto ``shadow`` until it is caught up (the feed
    has nothing more, or ``caught_up()`` says so), switch it in at ``target`` and
    discard it. On any failure the live model is left as it was and the copy given up."""
    shadow.change_retention = 0
    shadow.reset()  # a copy left by an interrupted rebuild starts again from 0
    projector = Projector(projection, shadow, feed, batch_size)
    applied = 0
    try:
        while True:
            done = projector.run_once()
            applied += done
            if done and progress:
                progress(done)
            if caught_up is not None:
                if caught_up():
                    break
            elif not done:
                break
    except BaseException:
        shadow.discard()
        raise
    return switch_in(projection, shadow, target, applied)


def switch_in(
    projection: Projection, shadow: TableView[Any], target: Path | str, applied: int
) -> Rebuilt:
    """Switch the caught-up copy ``shadow`` in at ``target`` and discard it (also if the
    switch fails: the live model is then left as it was)."""
    try:
        fingerprint = shadow.fingerprint()
        switched = shadow.switch_into(target)
    finally:
        shadow.discard()
    log.info(
        "%s rebuilt beside the live model from %d events and switched in (was version %s)",
        projection.name,
        applied,
        switched.previous_version,
    )
    return Rebuilt(applied, fingerprint, switched)


def upgrade_beside(
    projection: Projection,
    stored: int | None,
    open_shadow: Callable[[], tuple[TableView[Any], Path | str]],
    feed: Feed,
    *,
    progress: Callable[[int], None] | None = None,
) -> Rebuilt | None:
    """If the live rows are of another version than ``projection``'s (``stored``),
    build this version beside them and switch it in; else nothing (None). What a process
    of a new release does before it opens the view, instead of emptying it."""
    if stored is None or stored == projection.version:
        return None
    log.warning(
        "read model %s holds rows of version %s: building version %s beside it",
        projection.name,
        stored,
        projection.version,
    )
    shadow, target = open_shadow()
    return rebuild_beside(projection, shadow, target, feed, progress=progress)
