"""``lodestone project`` / ``python -m lodestone.projector.main``: keep the genealogy read
model up to date from Kafka in consumer group ``lodestone.genealogy.v1``; several
processes share the partitions. Stops on SIGTERM or SIGINT."""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable

from lodestone.bootstrap.settings import Settings
from lodestone.bootstrap.stores import build_genealogy_view
from lodestone.projections.genealogy import GenealogyProjection
from lodestone.streaming import codec
from lodestone.streaming.kafka_feed import KafkaFeed
from lodestone.streaming.projector import Projector

log = logging.getLogger("lodestone.projector")


def run(
    settings: Settings,
    stop: threading.Event,
    client_id: str = "lodestone-projector",
) -> None:
    if not settings.kafka_bootstrap_servers:
        raise SystemExit("LODESTONE_KAFKA_BOOTSTRAP_SERVERS is not set: nothing to consume")
    view = build_genealogy_view(settings)
    feed = KafkaFeed(
        settings.kafka_bootstrap_servers,
        settings.projector_group,
        codec.mapper(),
        view.position,
        topic=settings.kafka_topic,
        client_id=client_id,
    )
    projector = Projector(GenealogyProjection(), view, feed, batch_size=2000)
    log.info(
        "projecting %s from %s in group %s",
        settings.kafka_topic,
        settings.kafka_bootstrap_servers,
        settings.projector_group,
    )
    try:
        while not stop.is_set():
            try:
                applied = projector.run_once()
            except Exception:
                # Nothing of this batch was committed and the feed was rewound to the
                # committed offsets: retry, never skip.
                log.exception("projection failed; retrying")
                stop.wait(1.0)
                continue
            if applied:
                feed.committed(view.position)
    finally:
        feed.close()
        view.close()


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("kafka").setLevel(logging.WARNING)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    run(Settings(), stop)


if __name__ == "__main__":
    main()


def rebuild(
    settings: Settings, progress: Callable[[int, int], None] | None = None
) -> tuple[int, str]:
    """Empty the genealogy read model and read the topic again from offset 0, in a
    consumer group of its own, until every partition's end offset (as it was when the
    rebuild started) is applied. Returns (events applied, fingerprint of the result).
    Stop the projectors of the live group first: they would write into the same view."""
    if not settings.kafka_bootstrap_servers:
        raise SystemExit("LODESTONE_KAFKA_BOOTSTRAP_SERVERS is not set: nothing to rebuild from")
    from kafka import KafkaConsumer, TopicPartition

    probe = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers)
    partitions = probe.partitions_for_topic(settings.kafka_topic) or set()
    ends = probe.end_offsets([TopicPartition(settings.kafka_topic, p) for p in partitions])
    probe.close()
    total = sum(ends.values())
    view = build_genealogy_view(settings)
    view.reset()
    group = f"{settings.projector_group}.rebuild.{int(time.time())}"
    feed = KafkaFeed(
        settings.kafka_bootstrap_servers,
        group,
        codec.mapper(),
        view.position,
        topic=settings.kafka_topic,
    )
    projector = Projector(GenealogyProjection(), view, feed, batch_size=5000)
    applied = 0
    try:
        while any(view.position(f"{tp.topic}:{tp.partition}") < end for tp, end in ends.items()):
            applied += projector.run_once()
            if progress:
                progress(applied, total)
        return applied, view.fingerprint()
    finally:
        feed.close()
        view.close()
