"""Feeding projectors from Kafka through a consumer group.

Auto-commit is off: the consumed offsets live in the read-model database, written in the
same transaction as the rows (see Projector). When the group hands this consumer a
partition, it seeks to the offset the view recorded for it, so a rebalance or a restart
neither skips nor doubles an event's effect. Offsets are also committed to the group
after each applied batch, for monitoring only; they are never where we resume from.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import Mapper

from lodestone.streaming import codec
from lodestone.streaming.feeds import Item, Positions

log = logging.getLogger(__name__)

#: Seconds a new feed waits for its topic to appear before it joins its group.
TOPIC_WAIT = 30.0

#: The longest pause between attempts to reach a broker that went away. kafka-python
#: doubles the pause up to 30 s by default, so a broker restarted after a few seconds
#: was found again only tens of seconds later; attempts to a local broker are cheap.
RECONNECT_BACKOFF_MAX_MS = 2000

#: Seconds of polls returning nothing after which the feed checks that it is not
#: stuck behind the end offsets (see KafkaFeed._check_stalled).
STALL_CHECK = 10.0


def source_name(topic: str, partition: int) -> str:
    return f"{topic}:{partition}"


class KafkaFeed:
    def __init__(
        self,
        bootstrap_servers: str,
        group_id: str,
        mapper: Mapper[Any],
        positions: Positions,
        topic: str = codec.TOPIC,
        client_id: str = "lodestone-projector",
        poll_timeout_ms: int = 200,
    ) -> None:
        self.topic = topic
        self._mapper = mapper
        self._positions = positions
        self._poll_timeout_ms = poll_timeout_ms
        self._bootstrap_servers = bootstrap_servers
        self._group_id = group_id
        self._client_id = client_id
        self._idle_since: float | None = None  # start of the current run of empty polls
        self._consumer = self._connect()

    def _connect(self) -> Any:
        from kafka import ConsumerRebalanceListener, KafkaConsumer

        consumer = KafkaConsumer(
            bootstrap_servers=self._bootstrap_servers,
            group_id=self._group_id,
            client_id=self._client_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=2000,
            isolation_level="read_committed",
            reconnect_backoff_max_ms=RECONNECT_BACKOFF_MAX_MS,
        )
        # Join the group only once the topic is in this consumer's metadata: a member
        # that joins before sees no partition of it, is assigned none, and stays so until
        # its metadata ages out (metadata.max.age.ms, 5 minutes) although the topic was
        # made a moment later (the fault-injection run found read models 3 minutes
        # behind). A topic still missing after the wait is subscribed to as before.
        deadline = time.monotonic() + TOPIC_WAIT
        while not consumer.partitions_for_topic(self.topic) and time.monotonic() < deadline:
            time.sleep(0.2)
        feed = self

        class Seek(ConsumerRebalanceListener):  # type: ignore[misc]
            def on_partitions_revoked(self, revoked: Any) -> None:
                log.info("partitions revoked: %s", sorted(tp.partition for tp in revoked))

            def on_partitions_assigned(self, assigned: Any) -> None:
                for tp in assigned:
                    consumer.seek(tp, feed._positions(source_name(tp.topic, tp.partition)))

        consumer.subscribe([self.topic], listener=Seek())
        return consumer

    def _seek(self, partitions: Any, positions: Positions) -> None:
        for tp in partitions:
            self._consumer.seek(tp, positions(source_name(tp.topic, tp.partition)))

    def poll(self, positions: Positions, limit: int) -> Sequence[Item]:
        self._positions = positions
        batches = self._consumer.poll(timeout_ms=self._poll_timeout_ms, max_records=limit)
        if not batches:
            self._check_stalled(positions)
            return []
        self._idle_since = None
        items = []
        for tp, records in batches.items():
            source = source_name(tp.topic, tp.partition)
            for record in records:
                _, event = codec.decode(record.value, self._mapper)
                # The position stored is the NEXT offset to read.
                items.append(Item(source, record.offset + 1, event))
        return items

    def _check_stalled(self, positions: Positions) -> None:
        """After STALL_CHECK seconds of empty polls, compare the read model's positions
        with the end offsets; if it is behind, make a new consumer.

        kafka-python 3.0.12 can leave a member that rejoined its group holding its
        partitions, all still marked as being revoked (``_pending_revocation``), so it
        fetches none of them and polls return nothing for ever while the group shows
        the partitions assigned (the fault-injection run found a read model at offset 0
        of every partition after 180 s). A new consumer joins afresh and the listener
        seeks to the view's positions, so nothing is skipped or applied twice."""
        now = time.monotonic()
        if self._idle_since is None:
            self._idle_since = now
            return
        if now - self._idle_since < STALL_CHECK:
            return
        self._idle_since = now  # at most one check per STALL_CHECK of empty polls
        from kafka.errors import KafkaError

        assigned = list(self._consumer.assignment())
        try:
            ends = self._consumer.end_offsets(assigned) if assigned else {}
        except KafkaError as error:  # the broker away: nothing to compare with yet
            log.info("stall check skipped: %s", error)
            return
        behind = {
            tp.partition: (positions(source_name(tp.topic, tp.partition)), end)
            for tp, end in ends.items()
            if positions(source_name(tp.topic, tp.partition)) < end
        }
        if not behind:
            return
        log.warning(
            "no records for %.0f s although behind the end offsets (partition: (position, "
            "end) %s): consuming through a new consumer",
            STALL_CHECK,
            behind,
        )
        self._consumer.close()
        self._consumer = self._connect()

    def rewind(self, positions: Positions) -> None:
        self._seek(self._consumer.assignment(), positions)

    def committed(self, positions: Positions) -> None:
        """Tell the group how far we are (monitoring only; never resumed from)."""
        from kafka.structs import OffsetAndMetadata

        offsets = {
            tp: OffsetAndMetadata(positions(source_name(tp.topic, tp.partition)), "", -1)
            for tp in self._consumer.assignment()
        }
        if offsets:
            try:
                self._consumer.commit(offsets)
            except Exception as error:  # a rebalance in progress: harmless, we resume from the view
                log.info("offset commit skipped: %s", error)

    def close(self) -> None:
        self._consumer.close()
