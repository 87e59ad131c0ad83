"""``lodestone project`` / ``python -m lodestone.projector.main [--projection NAME]...``:
keep read models up to date from Kafka, every registered projection unless some are
named, and publish each one's changes to its change topic
(``lodestone.streaming.change_topics``; LODESTONE_PUBLISH_CHANGES=false: not). Each projection consumes in a consumer group of its own
(``lodestone.<name>.v<version>``, e.g. ``lodestone.genealogy.v1``), so each reads every
partition; several processes share the partitions of each group. Stops on SIGTERM or
SIGINT."""

from __future__ import annotations

import argparse
import functools
import logging
import signal
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lodestone import metrics
from lodestone.bootstrap.settings import Settings
from lodestone.bootstrap.stores import open_shadow, open_view
from lodestone.infra.kafka.topics import create_topic
from lodestone.projections.base import View
from lodestone.projections.registry import REGISTRY, Registered
from lodestone.projections.tables import TableView
from lodestone.streaming import change_topics, codec
from lodestone.streaming.kafka_feed import KafkaFeed
from lodestone.streaming.kafka_rebuild import rebuild_from_kafka
from lodestone.streaming.metrics import KafkaProjectionCollector, serve
from lodestone.streaming.projector import Projector
from lodestone.streaming.rebuild import Rebuilt

log = logging.getLogger("lodestone.projector")


def consumer_group(settings: Settings, entry: Registered) -> str:
    """``lodestone.<name>.v<version>``. LODESTONE_PROJECTOR_GROUP, when set, still names
    the genealogy's group (it did so when the genealogy was the only projection)."""
    if entry.name == "genealogy" and "projector_group" in settings.model_fields_set:
        return settings.projector_group
    return f"lodestone.{entry.name}.v{entry.version}"


@dataclass
class _Lane:
    """One projection's view, feed and projector in this process."""

    name: str
    view: View[Any]
    feed: KafkaFeed
    projector: Projector

    def close(self) -> None:
        self.feed.close()
        self.view.close()


def _lane(
    settings: Settings,
    entry: Registered,
    view: View[Any],
    group: str,
    client_id: str,
    batch_size: int,
) -> _Lane:
    """Closes ``view`` if the feed cannot be made."""
    assert settings.kafka_bootstrap_servers
    try:
        feed = KafkaFeed(
            settings.kafka_bootstrap_servers,
            group,
            codec.mapper(),
            view.position,
            topic=settings.kafka_topic,
            client_id=client_id,
        )
    except BaseException:
        view.close()
        raise
    return _Lane(entry.name, view, feed, Projector(entry.projection(), view, feed, batch_size))


def run(
    settings: Settings,
    stop: threading.Event,
    client_id: str = "lodestone-projector",
    projections: Iterable[str] | None = None,
) -> None:
    """Project the named projections (default: all) until ``stop`` is set."""
    if not settings.kafka_bootstrap_servers:
        raise SystemExit("LODESTONE_KAFKA_BOOTSTRAP_SERVERS is not set: nothing to consume")
    # A consumer that joins its group before the topic exists may be assigned no
    # partition until its metadata ages out (5 minutes): make the topic first, as the
    # relay does (the same partitions and retention; nothing changes if it exists).
    create_topic(
        settings.kafka_bootstrap_servers,
        settings.kafka_topic,
        settings.kafka_partitions,
        settings.kafka_retention_ms,
    )
    lanes: list[_Lane] = []
    # Publishers stop with the lanes, whatever ends them, before their views close.
    publishing = threading.Event()
    publishers: list[threading.Thread] = []
    closing: list[Callable[[], None]] = []
    try:
        for entry in REGISTRY.select(projections):
            group = consumer_group(settings, entry)
            view = open_view(settings, entry)
            lanes.append(_lane(settings, entry, view, group, client_id, batch_size=2000))
            log.info(
                "projecting %s from %s in group %s",
                settings.kafka_topic,
                settings.kafka_bootstrap_servers,
                group,
            )
        # LODESTONE_PROJECTOR_METRICS_PORT: each read model's lag per partition, read
        # when scraped, and the events this process applied.
        lag = KafkaProjectionCollector(
            settings.kafka_bootstrap_servers,
            settings.kafka_topic,
            {lane.name: lane.view for lane in lanes},
        )
        closing.append(lag.close)
        closing.append(serve(settings.projector_metrics_port, settings.metrics_host, [lag]))
        if settings.publish_changes:
            for lane in lanes:
                if isinstance(lane.view, TableView):
                    publishers.append(
                        change_topics.start_publisher(settings, lane.view, publishing)
                    )
        while not stop.is_set():
            for lane in lanes:
                try:
                    applied = lane.projector.run_once()
                except Exception:
                    # Nothing of this batch was committed and the feed was rewound to the
                    # committed offsets: retry, never skip.
                    log.exception("projection %s failed; retrying", lane.name)
                    stop.wait(1.0)
                    continue
                if applied:
                    metrics.applied(lane.name, applied)
                    lane.feed.committed(lane.view.position)
    finally:
        for close in reversed(closing):
            close()  # the metrics server first: it reads the views closed below
        publishing.set()
        for thread in publishers:
            thread.join(timeout=35)
        for lane in lanes:
            lane.close()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="lodestone project", description=__doc__)
    parser.add_argument(
        "--projection",
        action="append",
        choices=REGISTRY.names(),
        help="a projection to run (repeatable; default: all)",
    )
    chosen = parser.parse_args(argv).projection
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("kafka").setLevel(logging.WARNING)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    run(Settings(), stop, projections=chosen)


def rebuild(
    settings: Settings,
    progress: Callable[[int, int], None] | None = None,
    projection: str = "genealogy",
    workers: int | None = None,
) -> tuple[int, str]:
    """:func:`rebuild_beside`; returns (events read, fingerprint of the result)."""
    rebuilt = rebuild_beside(settings, progress, projection, workers)
    return rebuilt.events, rebuilt.fingerprint


def rebuild_beside(
    settings: Settings,
    progress: Callable[[int, int], None] | None = None,
    projection: str = "genealogy",
    workers: int | None = None,
) -> Rebuilt:
    """Read the topic again from offset 0 into a copy of one projection's read model
    beside the live one (no other projection is touched), its partitions spread over
    ``workers`` processes (default: LODESTONE_REBUILD_WORKERS, 0 = one per core), until
    every partition's end offset as it was when the rebuild started is applied; then
    switch the copy in (``lodestone.streaming.kafka_rebuild``). The live model serves,
    and its projectors may go on running, meanwhile."""
    return rebuild_from_kafka(
        settings,
        REGISTRY[projection],
        functools.partial(open_copy, settings, projection),
        workers=workers,
        progress=progress,
    )


def open_copy(settings: Settings, projection: str) -> tuple[TableView[Any], Path | str]:
    """The rebuild's copy of a registered read model and where it is switched in
    (module-level, so that each rebuild worker process can open the copy too)."""
    return open_shadow(settings, REGISTRY[projection])


if __name__ == "__main__":
    main()
