"""Rebuilding a read model from offset 0 of the Kafka topic, fast: the topic's
partitions spread over worker processes that write into one copy beside the live model.

Why partitions may be projected apart and together into one copy: the relay keys each
record by its aggregate id, so all events of one aggregate are in one partition, in
store order, and every projection is written so that its rows do not depend on how the
events of different aggregates interleave (each row belongs to one aggregate and is
gated by its version; a projection reads back only its own aggregate's rows). A worker
therefore owns the rows of its partitions' aggregates; the workers share the copy's
database (SQLite serialises their short write transactions, PostgreSQL takes them under
the projection's advisory lock) and each writes its own partitions' positions with its
rows, as a live projector does. The copy ends in the state the store-fed projection has
(tests/system/test_rebuild_every_model_from_kafka.py proves it for every registered read
model), and is then switched in by :func:`lodestone.streaming.rebuild.switch_in`.

What makes one worker fast (profiled: bench/rebuild.py): records are read with
librdkafka (confluent-kafka), which parses record batches in C, from partitions
assigned by hand (no consumer group to join, no rebalance); values are decoded by
:class:`~lodestone.streaming.codec.Decoder`, which skips the events no handler of the
projection wants and builds no library object but the event; rows are written in
transactions of ``batch_size`` events.

A worker reads each of its partitions up to the end offset it had when the rebuild
began, so the copy is of a known extent; what the relay adds meanwhile is applied by
the live projector after the switch (it goes on from the copy's positions).
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from lodestone.bootstrap.settings import Settings
from lodestone.projections.base import Dispatching, Projection
from lodestone.projections.registry import REGISTRY, Registered
from lodestone.projections.tables import TableView
from lodestone.streaming.codec import Decoder
from lodestone.streaming.feeds import Item, Positions
from lodestone.streaming.kafka_feed import source_name
from lodestone.streaming.projector import Projector
from lodestone.streaming.rebuild import Rebuilt, switch_in

log = logging.getLogger(__name__)

#: Events per transaction of a worker: large enough that a commit's cost is spread thin,
#: small enough that the other workers do not wait long for the write lock.
BATCH_SIZE = 5000
#: Seconds a worker waits for a record it knows is there before it gives up (the broker
#: is gone): a rebuild fails rather than hang.
STALL_TIMEOUT = 120.0
#: Seconds between the parent's looks at the workers (progress, failures).
WATCH_INTERVAL = 0.25

#: Opens the rebuild's copy of the read model and says where it is to be switched in
#: (``lodestone.bootstrap.stores.open_shadow`` for one registered projection). Each
#: worker opens the copy itself, so it must pickle: a module-level function, or a
#: ``functools.partial`` of one.
OpenCopy = Callable[[], tuple[TableView[Any], Path | str]]


def end_offsets(bootstrap_servers: str, topic: str) -> dict[int, int]:
    """Per partition of ``topic``, the offset the next record will get."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer(_config(bootstrap_servers, "lodestone-rebuild-probe"))
    try:
        metadata = consumer.list_topics(topic, timeout=30).topics.get(topic)
        if metadata is None or metadata.error is not None:
            raise RuntimeError(f"topic {topic} cannot be read: {metadata and metadata.error}")
        ends = {}
        for partition in sorted(metadata.partitions):
            _, high = consumer.get_watermark_offsets(
                TopicPartition(topic, partition), timeout=30, cached=False
            )
            ends[partition] = int(high)
        return ends
    finally:
        consumer.close()


def spread(ends: Mapping[int, int], workers: int) -> list[dict[int, int]]:
    """The partitions (with their end offsets) over at most ``workers`` groups of
    about the same number of records: the largest partition first, each to the group
    that holds the fewest so far. Empty partitions are left out: nothing to read."""
    groups: list[dict[int, int]] = [{} for _ in range(max(1, workers))]
    loads = [0] * len(groups)
    for partition, end in sorted(ends.items(), key=lambda pe: (-pe[1], pe[0])):
        if end <= 0:
            continue
        least = loads.index(min(loads))
        groups[least][partition] = end
        loads[least] += end
    return [group for group in groups if group]


class PartitionReader:
    """A feed (:class:`~lodestone.streaming.feeds.Feed`) of some partitions of a topic,
    each from the position its view holds up to an end offset, then done. Partitions
    are assigned, not subscribed: no group, no rebalance, no offsets committed (the
    positions live in the view, written with its rows)."""

    def __init__(
        self,
        bootstrap_servers: str,
        topic: str,
        ends: Mapping[int, int],
        decoder: Decoder,
        positions: Positions,
        *,
        client_id: str = "lodestone-rebuild",
        stall_timeout: float = STALL_TIMEOUT,
    ) -> None:
        from confluent_kafka import Consumer

        self.topic = topic
        self._ends = dict(ends)
        self._decoder = decoder
        self._stall_timeout = stall_timeout
        self._sources = {p: source_name(topic, p) for p in self._ends}
        self._consumer = Consumer(_config(bootstrap_servers, client_id))
        self._reading: set[int] = set()
        self._assign(positions)

    def done(self) -> bool:
        """Every partition has been read up to its end offset."""
        return not self._reading

    def poll(self, positions: Positions, limit: int) -> Sequence[Item]:
        from confluent_kafka import KafkaException

        items: list[Item] = []
        waited_since = time.monotonic()
        while self._reading and not items:
            messages = self._consumer.consume(num_messages=limit, timeout=0.2)
            for message in messages:
                error = message.error()
                if error is not None:
                    raise KafkaException(error)
                partition, offset, value = message.partition(), message.offset(), message.value()
                if partition is None or offset is None or value is None:
                    raise ValueError(f"not a Lodestone event record: {message!r}")
                if partition not in self._reading or offset >= self._ends[partition]:
                    continue  # recorded after the rebuild began: the live projector's
                _, event = self._decoder.event(value)
                items.append(Item(self._sources[partition], offset + 1, event))
                if offset + 1 >= self._ends[partition]:
                    self._finish(partition)
            if not items and time.monotonic() - waited_since > self._stall_timeout:
                missing = {p: (positions(self._sources[p]), self._ends[p]) for p in self._reading}
                raise TimeoutError(
                    f"no record of {self.topic} for {self._stall_timeout:.0f} s; "
                    f"partitions at (position, end): {missing}"
                )
        return items

    def rewind(self, positions: Positions) -> None:
        """After a failed commit: read again from the positions the view holds."""
        self._consumer.unassign()
        self._assign(positions)

    def close(self) -> None:
        self._consumer.close()

    def _assign(self, positions: Positions) -> None:
        from confluent_kafka import TopicPartition

        starts = {p: positions(self._sources[p]) for p in self._ends}
        self._reading = {p for p, start in starts.items() if start < self._ends[p]}
        self._consumer.assign(
            [TopicPartition(self.topic, p, starts[p]) for p in sorted(self._reading)]
        )

    def _finish(self, partition: int) -> None:
        from confluent_kafka import TopicPartition

        self._reading.discard(partition)
        # Stop fetching it: records after the end are not this rebuild's.
        self._consumer.pause([TopicPartition(self.topic, partition)])


def _config(bootstrap_servers: str, client_id: str) -> dict[str, Any]:
    return {
        "bootstrap.servers": bootstrap_servers,
        # librdkafka wants a group even when partitions are assigned by hand; nothing is
        # joined or committed under it.
        "group.id": f"{client_id}.{os.getpid()}",
        "client.id": client_id,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "enable.partition.eof": False,
        "isolation.level": "read_committed",
        # Prefetched records wait in librdkafka's queue: bounded, so that a worker's
        # memory stays flat however long the topic.
        "queued.max.messages.kbytes": 32768,
        "logger": logging.getLogger("lodestone.streaming.librdkafka"),
    }


def wanted_by(projection: Projection) -> Callable[[type], bool] | None:
    """Which event classes ``projection`` has a handler for (None: it cannot say, so
    every event is decoded)."""
    if isinstance(projection, Dispatching):
        return lambda cls: projection.handler(cls) is not None
    return None


def project_partitions(
    settings: Settings,
    entry: Registered,
    ends: Mapping[int, int],
    *,
    open_copy: OpenCopy | None = None,
    shadow: TableView[Any] | None = None,
    progress: Callable[[int], None] | None = None,
    batch_size: int = BATCH_SIZE,
    parent: int | None = None,
) -> int:
    """Project ``ends``' partitions, from the positions the rebuild's copy holds up to
    their end offsets, into that copy (``shadow``, or opened by ``open_copy`` here and
    closed after); returns how many records were read. ``parent``: the pid of the
    process that started this one; if it dies, so does this (its copy is given up)."""
    assert settings.kafka_bootstrap_servers
    own = shadow is None
    if shadow is None:
        if open_copy is None:
            raise ValueError("project_partitions needs the copy or how to open it")
        shadow = open_copy()[0]
    shadow.change_retention = 0
    projection = entry.projection()
    reader = None
    try:
        reader = PartitionReader(
            settings.kafka_bootstrap_servers,
            settings.kafka_topic,
            ends,
            Decoder(wanted_by(projection)),
            shadow.position,
        )
        projector = Projector(projection, shadow, reader, batch_size)
        read = 0
        while not reader.done():
            if parent is not None and os.getppid() != parent:
                raise SystemExit("the rebuild that started this worker is gone")
            done = projector.run_once()
            read += done
            if done and progress:
                progress(done)
        return read
    finally:
        if reader is not None:
            reader.close()
        if own:
            shadow.close()


def _work(
    settings: Settings,
    name: str,
    open_copy: OpenCopy,
    ends: dict[int, int],
    parent: int,
    reply: Connection,
) -> None:
    """A worker process: :func:`project_partitions`, its outcome sent on ``reply``."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    try:
        read = project_partitions(
            settings, REGISTRY[name], ends, open_copy=open_copy, parent=parent
        )
    except BaseException as error:
        reply.send(("failed", f"{error!r}\n{traceback.format_exc()}"))
        raise
    reply.send(("read", read))


@dataclass
class _Worker:
    ends: dict[int, int]
    process: multiprocessing.process.BaseProcess
    reply: Connection
    outcome: tuple[str, Any] | None = None


def rebuild_from_kafka(
    settings: Settings,
    entry: Registered,
    open_copy: OpenCopy,
    *,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Rebuilt:
    """Read the topic from offset 0 into a copy of ``entry``'s read model beside the live
    one (``open_copy``), with ``workers`` processes (default: ``settings.rebuild_workers``;
    0: one per core; never more than the partitions that hold records), then switch it
    in. ``progress(read, total)``: records read so far of those the topic held."""
    if not settings.kafka_bootstrap_servers:
        raise SystemExit("LODESTONE_KAFKA_BOOTSTRAP_SERVERS is not set: nothing to rebuild from")
    ends = end_offsets(settings.kafka_bootstrap_servers, settings.kafka_topic)
    total = sum(ends.values())
    count = workers if workers is not None else settings.rebuild_workers
    groups = spread(ends, count or os.cpu_count() or 1)
    shadow, target = open_copy()
    shadow.change_retention = 0
    shadow.reset()  # a copy left by an interrupted rebuild starts again from 0
    log.info(
        "rebuilding %s from %s: %d records in %d partitions, %d worker(s)",
        entry.name,
        settings.kafka_topic,
        total,
        len(ends),
        len(groups),
    )
    try:
        if len(groups) <= 1:
            read = 0

            def counted(done: int) -> None:
                nonlocal read
                read += done
                if progress:
                    progress(read, total)

            read = project_partitions(
                settings, entry, groups[0] if groups else {}, shadow=shadow, progress=counted
            )
        else:
            read = _in_parallel(settings, entry, open_copy, groups, shadow, total, progress)
    except BaseException:
        shadow.discard()
        raise
    return switch_in(entry.projection(), shadow, target, read)


def _in_parallel(
    settings: Settings,
    entry: Registered,
    open_copy: OpenCopy,
    groups: list[dict[int, int]],
    shadow: TableView[Any],
    total: int,
    progress: Callable[[int, int], None] | None,
) -> int:
    # Spawned, not forked: the parent may hold database connections and threads (a
    # progress bar, a gateway) that a forked child must not inherit.
    context = multiprocessing.get_context("spawn")
    workers: list[_Worker] = []
    try:
        for ends in groups:
            receive, send = context.Pipe(duplex=False)
            process = context.Process(
                target=_work,
                args=(settings, entry.name, open_copy, ends, os.getpid(), send),
                name=f"lodestone-rebuild-{entry.name}-{'-'.join(map(str, ends))}",
                daemon=True,
            )
            process.start()
            send.close()
            workers.append(_Worker(ends, process, receive))
        while any(w.outcome is None for w in workers):
            for worker in workers:
                if worker.outcome is None:
                    _look_at(worker)
            if progress:
                progress(_read_so_far(shadow, settings.kafka_topic, groups), total)
            time.sleep(WATCH_INTERVAL)
        for worker in workers:
            worker.process.join()
        return sum(int(w.outcome[1]) for w in workers if w.outcome)
    finally:
        for worker in workers:
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()
            worker.reply.close()


def _look_at(worker: _Worker) -> None:
    """Note the worker's outcome if it has one; raise if it failed or died."""
    # Whether it was alive is asked first: a worker that had exited by then had sent
    # whatever it was going to send.
    alive = worker.process.is_alive()
    if worker.reply.poll():
        with contextlib.suppress(EOFError):  # closed without a word: died
            worker.outcome = worker.reply.recv()
    if worker.outcome is None and not alive:
        worker.process.join()
        raise RuntimeError(
            f"rebuild worker for partitions {sorted(worker.ends)} died "
            f"(exit code {worker.process.exitcode})"
        )
    if worker.outcome is not None and worker.outcome[0] == "failed":
        raise RuntimeError(
            f"rebuild worker for partitions {sorted(worker.ends)} failed: {worker.outcome[1]}"
        )


def _read_so_far(shadow: TableView[Any], topic: str, groups: list[dict[int, int]]) -> int:
    return sum(shadow.position(source_name(topic, p)) for group in groups for p in group)
