"""The notification log read and decoded once for all projectors of a process
(:class:`~lodestone.streaming.feeds.SharedLog`), on both backends: the same items as
each projector reading it alone, every read model ending in the same rows and the same
change log, each event decoded once while the projectors keep together, and a bounded
cache whatever a projector far behind does."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lodestone.ledger import Ledger
from lodestone.projections.registry import REGISTRY
from lodestone.streaming.feeds import NotificationLogFeed, SharedLog
from lodestone.streaming.projector import Projector
from tests.fixtures.backends import Backend, PostgresBackend


def open_views(backend: Backend, tmp_path: Path, name: str) -> dict[str, Any]:
    if isinstance(backend, PostgresBackend):
        return {
            e.name: e.open(
                postgres_url=backend.url, sqlite_path=tmp_path, schema=f"{name}_{e.name}"
            )
            for e in REGISTRY
        }
    return {
        e.name: e.open(postgres_url=None, sqlite_path=tmp_path / f"{name}.sqlite") for e in REGISTRY
    }


def change_log(view: Any) -> list[tuple[Any, ...]]:
    # Everything of each change but when it was recorded.
    return [
        (c.seq, c.table, c.key, c.row_json, c.source, c.position)
        for c in view.changes(0, 1_000_000).changes
    ]


def at(position: int) -> Callable[[str], int]:
    """Committed positions: ``position`` in the notification log."""
    return lambda _: position


positions_at_zero = at(0)


def test_shared_pages_hold_the_items_each_projector_would_decode(
    chain_ledger: Ledger,
) -> None:
    alone = NotificationLogFeed(chain_ledger.recorder, chain_ledger.mapper)
    shared = SharedLog(chain_ledger.recorder, chain_ledger.mapper, max_items=7)
    feed = shared.feed()
    position = 0
    while True:
        expected = alone.poll(at(position), 4)
        got = feed.poll(at(position), 4)
        assert got == expected
        # A second reader at the same position gets the same answer from the cache.
        assert feed.poll(at(position), 4) == expected
        if not expected:
            break
        position = expected[-1].position
    assert position == chain_ledger.recorder.max_notification_id()


def test_every_read_model_ends_the_same_projected_together_from_one_shared_log(
    backend: Backend, chain_ledger: Ledger, tmp_path: Path
) -> None:
    alone = open_views(backend, tmp_path, "alone")
    together = open_views(backend, tmp_path, "together")
    try:
        # The same batches alone (a change log lists each batch's rows table by table).
        for entry in REGISTRY:
            feed = NotificationLogFeed(chain_ledger.recorder, chain_ledger.mapper)
            Projector(entry.projection(), alone[entry.name], feed, batch_size=3).catch_up()
        # Small pages and a cache smaller than the log: pages are shared, dropped and
        # read again while the projector threads run side by side, as in the gateway.
        shared = SharedLog(chain_ledger.recorder, chain_ledger.mapper, max_items=9)
        projectors = [
            Projector(e.projection(), together[e.name], shared.feed(), batch_size=3)
            for e in REGISTRY
        ]
        threads = [threading.Thread(target=p.catch_up) for p in projectors]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        for entry in REGISTRY:
            assert together[entry.name].fingerprint() == alone[entry.name].fingerprint(), entry
            assert change_log(together[entry.name]) == change_log(alone[entry.name]), entry
            assert change_log(alone[entry.name]), entry
    finally:
        for view in [*alone.values(), *together.values()]:
            view.close()


class CountingMapper:
    """The ledger's own mapper, counting what it decodes."""

    def __init__(self, mapper: Any) -> None:
        self._mapper = mapper
        self.decoded: list[int] = []

    def to_domain_event(self, stored: Any) -> Any:
        self.decoded.append(stored.originator_version)
        return self._mapper.to_domain_event(stored)


def test_projectors_keeping_together_decode_each_event_once(
    chain_ledger: Ledger, backend: Backend, tmp_path: Path
) -> None:
    mapper = CountingMapper(chain_ledger.mapper)
    shared = SharedLog(chain_ledger.recorder, mapper, max_items=100)  # type: ignore[arg-type]
    views = open_views(backend, tmp_path, "counted")
    try:
        projectors = [Projector(e.projection(), views[e.name], shared.feed(), 5) for e in REGISTRY]
        # Round by round, each projector one batch: they stay within the cache.
        while sum([p.run_once() for p in projectors]):
            pass
    finally:
        for view in views.values():
            view.close()
    assert len(mapper.decoded) == chain_ledger.recorder.max_notification_id()


def test_a_projector_far_behind_never_grows_the_cache_past_its_bound(
    chain_ledger: Ledger,
) -> None:
    shared = SharedLog(chain_ledger.recorder, chain_ledger.mapper, max_items=6)
    ahead, behind = shared.feed(), shared.feed()
    position = 0
    while items := ahead.poll(at(position), 3):
        position = items[-1].position
        assert shared.kept() <= 6
    # The one behind reads from 0 again, past what is kept: the bound still holds.
    assert behind.poll(positions_at_zero, 3) == NotificationLogFeed(
        chain_ledger.recorder, chain_ledger.mapper
    ).poll(positions_at_zero, 3)
    assert shared.kept() <= 6
