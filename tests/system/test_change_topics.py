"""A projection's change topic against a real broker and real processes: the projector
process (Kafka-fed) publishes the genealogy's change log to its topic, is SIGKILLed while
it publishes, twice, and restarted; every sequence number is on the topic exactly once,
in order, with the very row the change log holds.

How we know: one partition, so the topic's order is the publishing order; read back to
its end offset by a plain kafka-python consumer, its ``seq`` headers are exactly
1..last (a lost change is a gap, a doubled one a repeat), and each value's row equals the
change log's row of that number, read from the read-model database itself.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
from kafka import KafkaConsumer, TopicPartition

from lodestone.demo.generator import load
from tests.fixtures.topics import records_to_end
from tests.system.conftest import Pipeline, kill, wait_until

pytestmark = pytest.mark.slow


def change_topic(pipeline: Pipeline) -> str:
    return pipeline.change_topics.format(name="genealogy")


def projector(pipeline: Pipeline, name: str) -> subprocess.Popen[bytes]:
    """``lodestone project --projection genealogy`` publishing in small batches."""
    log = open(pipeline.data_dir / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
    child = subprocess.Popen(
        [sys.executable, "-m", "lodestone.projector.main", "--projection", "genealogy"],
        env=pipeline.env(LODESTONE_CHANGE_PUBLISH_BATCH="20"),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    pipeline.children.append(child)
    return child


def on_topic(bootstrap: str, topic: str) -> int:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        partition = TopicPartition(topic, 0)
        if not consumer.partitions_for_topic(topic):
            return 0
        return int(consumer.end_offsets([partition])[partition])
    finally:
        consumer.close()


def last_change(pipeline: Pipeline) -> int:
    view: Any = pipeline.view()
    try:
        return int(view.changes(0, 0).last)
    finally:
        view.close()


def test_a_projector_killed_while_publishing_puts_each_change_on_the_topic_once(
    pipeline: Pipeline,
) -> None:
    ledger = pipeline.ledger()
    load(ledger, seed=21, size=2_000)
    pipeline.relay()
    topic = change_topic(pipeline)
    killed_at = []

    for round, reached in enumerate((300, 1_500)):
        child = projector(pipeline, f"projector-{round}")
        wait_until(
            lambda reached=reached: on_topic(pipeline.bootstrap, topic) >= reached,
            timeout=120,
            what=f"{reached} changes on the topic ({pipeline.log(f'projector-{round}')})",
        )
        kill(child)
        killed_at.append(on_topic(pipeline.bootstrap, topic))
    projector(pipeline, "projector-last")
    wait_until(
        # Projected first: only then does the change log stop growing, so a topic as
        # long as the log is then the whole log (the other order races the last batch).
        lambda: (
            _projected(pipeline, ledger.recorder.max_notification_id())
            and last_change(pipeline) > 0
            and on_topic(pipeline.bootstrap, topic) >= last_change(pipeline)
        ),
        timeout=180,
        what=f"the topic to hold every change ({pipeline.log('projector-last')})",
    )

    records = records_to_end(pipeline.bootstrap, topic)
    seqs = [int(dict(r.headers)["seq"]) for r in records]
    last = last_change(pipeline)
    assert max(killed_at) < last  # both kills came while changes were still to publish
    assert seqs == list(range(1, last + 1))
    view: Any = pipeline.view()
    try:
        logged = {c.seq: c.row for c in view.changes(0, 1_000_000).changes}
    finally:
        view.close()
    assert [json.loads(r.value)["row"] for r in records] == [logged[s] for s in seqs]


def _projected(pipeline: Pipeline, total: int) -> bool:
    """The projector has applied every event the relay put on the topic."""
    consumer = KafkaConsumer(bootstrap_servers=pipeline.bootstrap)
    partitions = [TopicPartition(pipeline.topic, p) for p in range(pipeline.partitions)]
    ends = consumer.end_offsets(partitions)
    consumer.close()
    if sum(ends.values()) < total:
        return False
    view: Any = pipeline.view()
    try:
        return all(view.position(f"{tp.topic}:{tp.partition}") >= end for tp, end in ends.items())
    finally:
        view.close()
