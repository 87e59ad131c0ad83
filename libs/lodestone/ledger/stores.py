"""What the project keeps and reads in the event store's database besides the library's
own use: the interfaces only, so that audit and streaming can type against them without
importing a database driver. The adapters, one package per database, are in
``lodestone.infra``; the composition root (``lodestone.bootstrap``) picks one.

- ``EventRows``: the stored rows with their store positions, read only. The library's
  recorder reads an aggregate's events without their notification ids (positions);
  history and audit bundles need them.
- ``PositionStore``: durable "how far have I come" markers for loops that are not
  projections (the relay, the checkpoint publisher), so a backup of the store carries
  them.
- ``WriterLock``: taken by a group writer (``lodestone.ledger.group``) from reading the
  store's last position before a group to that group's commit, so that the writers of
  several gateway processes sharing one database take turns instead of validating
  against state another is about to change (and losing their commits to it).
- ``CheckpointStore``: checkpoints (Merkle roots over ranges of store positions), one row
  per checkpoint, ``seq`` its key: two checkpointers racing for the same ``seq`` cannot
  both win. The rows carry no authority of their own: ``lodestone verify`` recomputes
  each root from the events, and the copies published on Kafka let a third party notice
  if these rows were rewritten or dropped together with the events they cover.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from uuid import UUID


@dataclass(frozen=True)
class Row:
    position: int
    aggregate_id: UUID
    version: int
    topic: str
    state: bytes


#: (position, aggregate id as 36-character text, version, topic, state): what a full
#: scan yields, without building UUID objects.
ScanRow = tuple[int, str, int, str, bytes]


class EventRows(Protocol):
    def for_aggregates(self, ids: Iterable[UUID]) -> list[Row]: ...
    def max_position(self) -> int: ...
    def scan(self, start: int, limit: int, stop: int) -> list[ScanRow]: ...
    def close(self) -> None: ...


class PositionStore(Protocol):
    def get(self, name: str) -> int: ...
    def set(self, name: str, position: int) -> None: ...
    def close(self) -> None: ...


class WriterLock(Protocol):
    def acquire(self) -> None: ...
    def release(self) -> None: ...
    def close(self) -> None: ...


#: The columns of a checkpoint, in the order they are stored.
FIELDS = ("seq", "first_position", "last_position", "count", "root", "prev", "created_at", "hash")

Checkpoint = dict[str, Any]


class CheckpointConflict(Exception):
    """Another checkpointer stored a checkpoint with the same seq first."""


class CheckpointStore(Protocol):
    def latest(self) -> Checkpoint | None: ...
    def add(self, checkpoints: Sequence[Checkpoint]) -> None: ...
    def list(self, after_seq: int = 0, limit: int | None = None) -> list[Checkpoint]: ...
    def covering(self, position: int) -> Checkpoint | None: ...
    def close(self) -> None: ...
