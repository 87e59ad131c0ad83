"""``lodestone project`` / ``python -m lodestone.projector.main [--projection NAME]...``:
keep read models up to date from Kafka, every registered projection unless some are
named, and publish each one's changes to its change topic
(``lodestone.streaming.change_topics``; LODESTONE_PUBLISH_CHANGES=false: not). Each projection consumes in a consumer group of its own
(``lodestone.<name>.v<version>``, e.g. ``lodestone.genealogy.v1``), so each reads every
partition; several processes share the partitions of each group. Stops on SIGTERM or
SIGINT."""

from __future__ import annotations

import argparse
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from lodestone.bootstrap.settings import Settings
from lodestone.bootstrap.stores import open_shadow, open_view
from lodestone.infra.kafka.topics import create_topic
from lodestone.projections.base import View
from lodestone.projections.registry import REGISTRY, Registered
from lodestone.projections.tables import TableView
from lodestone.streaming import change_topics, codec
from lodestone.streaming import rebuild as streaming_rebuild
from lodestone.streaming.kafka_feed import KafkaFeed, source_name
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
                    lane.feed.committed(lane.view.position)
    finally:
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
) -> tuple[int, str]:
    """:func:`rebuild_beside`; returns (events applied, fingerprint of the result)."""
    rebuilt = rebuild_beside(settings, progress, projection)
    return rebuilt.events, rebuilt.fingerprint


def rebuild_beside(
    settings: Settings,
    progress: Callable[[int, int], None] | None = None,
    projection: str = "genealogy",
) -> Rebuilt:
    """Read the topic again from offset 0, in a consumer group of its own, into a copy
    of one projection's read model beside the live one (no other projection is
    touched), until every partition's end offset (as it was when the rebuild started) is
    applied; then switch the copy in (``lodestone.streaming.rebuild``). The live model
    serves, and its projectors may go on running, meanwhile."""
    if not settings.kafka_bootstrap_servers:
        raise SystemExit("LODESTONE_KAFKA_BOOTSTRAP_SERVERS is not set: nothing to rebuild from")
    from kafka import KafkaConsumer, TopicPartition

    entry = REGISTRY[projection]
    probe = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers)
    partitions = probe.partitions_for_topic(settings.kafka_topic) or set()
    ends = probe.end_offsets([TopicPartition(settings.kafka_topic, p) for p in partitions])
    probe.close()
    total = sum(ends.values())
    shadow, target = open_shadow(settings, entry)
    shadow.reset()  # before the feed seeks to its positions: from offset 0
    group = f"{consumer_group(settings, entry)}.rebuild.{int(time.time())}"
    try:
        feed = KafkaFeed(
            settings.kafka_bootstrap_servers,
            group,
            codec.mapper(),
            shadow.position,
            topic=settings.kafka_topic,
            client_id="lodestone-projector",
        )
    except BaseException:
        shadow.discard()
        raise
    applied = 0

    def counted(done: int) -> None:
        nonlocal applied
        applied += done
        if progress:
            progress(applied, total)

    try:
        return streaming_rebuild.rebuild_beside(
            entry.projection(),
            shadow,
            target,
            feed,
            caught_up=lambda: all(
                shadow.position(source_name(tp.topic, tp.partition)) >= end
                for tp, end in ends.items()
            ),
            progress=counted,
        )
    finally:
        feed.close()


if __name__ == "__main__":
    main()
