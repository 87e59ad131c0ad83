"""Makes checkpoints: Merkle roots over the events stored since the last checkpoint.

Each checkpoint covers the next range of store positions (at most ``max_leaves``
events), its root built from ``"<position>:<event hash>"`` leaves in position order, and
is chained to the previous checkpoint by hash (``lodestone.integrity``). Before an event
is covered its recorded hash is recomputed: a checkpoint never vouches for an event
that was already altered.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from eventsourcing.persistence import ApplicationRecorder, Notification

from lodestone import integrity
from lodestone.audit.pages import pages
from lodestone.ledger.stores import Checkpoint, CheckpointConflict, CheckpointStore

MAX_LEAVES = 1_000
PAGE = 5_000


class TamperDetected(Exception):
    def __init__(self, position: int, detail: str) -> None:
        super().__init__(f"position {position}: {detail}")
        self.position = position
        self.detail = detail


def checked_hash(notification: Notification) -> str:
    """The event's recorded hash, after recomputing it from the stored row."""
    digest, _, intact = integrity.check_stored(
        str(notification.originator_id),
        notification.originator_version,
        notification.topic,
        notification.state,
    )
    if digest is None:
        raise TamperDetected(notification.id, "the event carries no readable hash")
    if not intact:
        raise TamperDetected(notification.id, "the event does not match its hash")
    return digest


class Checkpointer:
    def __init__(
        self,
        recorder: ApplicationRecorder,
        store: CheckpointStore,
        clock: Callable[[], datetime] | None = None,
        max_leaves: int = MAX_LEAVES,
    ) -> None:
        self._recorder = recorder
        self._store = store
        self._clock = clock or (lambda: datetime.now(UTC))
        self._max_leaves = max_leaves

    def make(self) -> list[Checkpoint]:
        """Checkpoints for every event stored since the last one; [] if there are none
        or another checkpointer got there first."""
        latest = self._store.latest()
        start = latest["last_position"] + 1 if latest else 1
        seq = latest["seq"] + 1 if latest else 1
        prev = latest["hash"] if latest else None
        top = self._recorder.max_notification_id() or 0
        made: list[Checkpoint] = []
        leaves: list[bytes] = []
        first = start
        last = start - 1
        for page in pages(self._recorder, start, top, PAGE):
            for notification in page:
                leaves.append(integrity.leaf_hash(notification.id, checked_hash(notification)))
                last = notification.id
                if len(leaves) == self._max_leaves:
                    made.append(self._record(seq, first, last, leaves, prev))
                    seq, prev, first, leaves = seq + 1, made[-1]["hash"], last + 1, []
        if leaves:
            made.append(self._record(seq, first, last, leaves, prev))
        if not made:
            return []
        try:
            self._store.add(made)
        except CheckpointConflict:
            return []
        return made

    def _record(
        self, seq: int, first: int, last: int, leaves: list[bytes], prev: str | None
    ) -> Checkpoint:
        record: dict[str, Any] = {
            "seq": seq,
            "first_position": first,
            "last_position": last,
            "count": len(leaves),
            "root": integrity.merkle_root(leaves).hex(),
            "prev": prev,
            "created_at": self._clock().isoformat(),
        }
        record["hash"] = integrity.checkpoint_hash(record)
        return record
