"""The write path's tamper evidence: every stored event carries its hash, chained.

``ChainedEventStore.put`` is where the ledger turns domain events into stored rows. For
each event it takes the state the library's transcoder produced, computes the SHA-256
of its canonical form (RFC 8785) together with the aggregate id, version, topic and the
hash of the aggregate's previous event (``lodestone.integrity.event_hash``), and stores
the state canonically with ``{"hash", "prev"}`` inside, under ``__chain__``. The hash is
thus in the very row it protects, written in the same INSERT, in the same transaction:
nothing can be stored without it.

The previous hash comes from the same save (several events of one aggregate), from the
heads this process last wrote, or from the stored row of version - 1. A concurrent
writer of the same aggregate makes the insert fail on (id, version), and the ledger
runs the command again on fresh state, so a chain never forks.

Snapshots are not chained: they are derived, and ``lodestone verify`` rebuilds state
from the events, never from a snapshot.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import (
    EventStore,
    JSONTranscoder,
    Notification,
    Recording,
    StoredEvent,
)

from lodestone import integrity

HEADS_CACHE = 100_000


class ChainTranscoder(JSONTranscoder):
    """The library's JSON transcoder, leaving the chain link out of domain events."""

    def decode(self, data: bytes) -> Any:
        obj = super().decode(data)
        if isinstance(obj, dict):
            obj.pop(integrity.CHAIN_KEY, None)
        return obj


def recorded_link(state: bytes) -> tuple[str | None, str | None]:
    """(hash, prev) as recorded in a stored state; (None, None) if it has none."""
    _, digest, prev = integrity.split_state(json.loads(state))
    return digest, prev


class ChainedEventStore(EventStore[UUID]):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._heads: dict[UUID, tuple[int, str]] = {}
        self._lock = threading.Lock()

    def put(
        self, domain_events: Sequence[DomainEventProtocol[UUID]], **kwargs: Any
    ) -> list[Recording[UUID]]:
        assert self.mapper.cipher is None and self.mapper.compressor is None
        heads: dict[UUID, tuple[int, str]] = {}
        stored_events = []
        for domain_event in domain_events:
            raw = self.mapper.to_stored_event(domain_event)
            id, version = raw.originator_id, raw.originator_version
            assert isinstance(id, UUID)
            prev = self._prev(heads, id, version)
            state, digest = integrity.chained_state(
                str(id), version, raw.topic, json.loads(raw.state), prev
            )
            heads[id] = (version, digest)
            stored_events.append(StoredEvent(id, version, raw.topic, state))
        notification_ids = self.recorder.insert_events(stored_events, **kwargs)
        with self._lock:
            if len(self._heads) + len(heads) > HEADS_CACHE:
                self._heads.clear()
            self._heads.update(heads)
        recordings = []
        if notification_ids:
            for d, s, n_id in zip(domain_events, stored_events, notification_ids, strict=True):
                notification = Notification(
                    originator_id=s.originator_id,
                    originator_version=s.originator_version,
                    topic=s.topic,
                    state=s.state,
                    id=n_id,
                )
                recordings.append(Recording(d, notification))
        return recordings

    def _prev(self, heads: dict[UUID, tuple[int, str]], id: UUID, version: int) -> str | None:
        if version == 1:
            return None
        head = heads.get(id) or self._heads.get(id)
        if head is not None and head[0] == version - 1:
            return head[1]
        rows = self.recorder.select_events(id, gt=version - 2, lte=version - 1)
        if not rows:
            # The predecessor is missing: let the insert fail as a concurrent write would.
            return None
        digest, _ = recorded_link(rows[0].state)
        return digest
