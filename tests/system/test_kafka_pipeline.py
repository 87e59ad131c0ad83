"""Every recorded event reaches Kafka and every projection applies each event exactly
once, whatever is killed on the way: proofs against a real broker and real processes.

How we know: the set of (aggregate id, version) pairs on the topic equals the set in
the event store (no gap; repeats allowed), and the Kafka-fed read model ends with the
same fingerprint as the one projected straight from the event store (no event lost,
none applied twice, whatever the interleaving across partitions).
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from kafka import KafkaConsumer, TopicPartition

from lodestone.bootstrap.settings import Settings
from lodestone.demo.generator import ADMIN, generate, load
from lodestone.devtools.kafka_local import LocalKafka
from lodestone.gateway import create_app
from lodestone.infra.kafka.topics import create_topic
from lodestone.infra.sqlite.stores import SQLitePositionStore
from lodestone.ledger import Ledger
from lodestone.projector.main import rebuild
from lodestone.streaming.relay import Relay
from tests.fixtures.topics import records_to_end
from tests.system.conftest import Pipeline, kill, reference_fingerprint, wait_until

pytestmark = pytest.mark.slow


def stored_pairs(ledger: Ledger) -> set[tuple[str, int]]:
    notifications = ledger.recorder.select_notifications(start=1, limit=10_000_000)
    return {(str(n.originator_id), n.originator_version) for n in notifications}


def pairs_on_topic(records: list[Any]) -> Counter[tuple[str, int]]:
    def header(record: Any, name: str) -> str:
        return dict(record.headers)[name].decode()

    return Counter((header(r, "ce_subject"), int(header(r, "aggregate_version"))) for r in records)


def relay_position(pipeline: Pipeline) -> int:
    store = SQLitePositionStore(pipeline.settings().event_store_path)
    try:
        return store.get(Relay.name)
    finally:
        store.close()


def published_everything(
    pipeline: Pipeline, ledger: Ledger, what: str = "the relay to publish everything"
) -> int | None:
    """Waits until the relay has published every event recorded so far; answers how many."""
    total = ledger.recorder.max_notification_id()
    wait_until(lambda: relay_position(pipeline) == total, what=what)
    return total


def projected_everything(pipeline: Pipeline) -> bool:
    consumer = KafkaConsumer(bootstrap_servers=pipeline.bootstrap)
    partitions = [TopicPartition(pipeline.topic, p) for p in range(pipeline.partitions)]
    ends = consumer.end_offsets(partitions)
    consumer.close()
    with closing(pipeline.view()) as view:
        return all(view.position(f"{tp.topic}:{tp.partition}") >= end for tp, end in ends.items())


def kafka_fingerprint(pipeline: Pipeline) -> str:
    with closing(pipeline.view()) as view:
        return view.fingerprint()


def test_relay_killed_mid_burst_repeats_but_never_skips_and_projections_apply_once(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    ledger = pipeline.ledger()
    relay = pipeline.relay()
    burst = threading.Thread(
        target=load, args=(ledger,), kwargs={"seed": 11, "size": 3000, "chunk_size": 150}
    )
    burst.start()
    wait_until(lambda: relay_position(pipeline) > 0, what="the relay to publish a first batch")
    kill(relay)
    killed_at = relay_position(pipeline)
    burst.join()
    total = ledger.recorder.max_notification_id()
    assert 0 < killed_at < total  # the kill really fell in the middle of the burst

    pipeline.relay()
    published_everything(pipeline, ledger, what="the restarted relay to catch up")

    on_topic = pairs_on_topic(records_to_end(pipeline.bootstrap, pipeline.topic))
    assert set(on_topic) == stored_pairs(ledger)  # every event at least once, no stranger
    pipeline.projector()
    wait_until(lambda: projected_everything(pipeline), what="the projector to consume the topic")
    assert kafka_fingerprint(pipeline) == reference_fingerprint(ledger, tmp_path)


def test_projector_killed_mid_batch_resumes_and_applies_each_event_once(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    ledger = pipeline.ledger()
    load(ledger, seed=12, size=3000)
    pipeline.relay()
    published_everything(pipeline, ledger)
    projector = pipeline.projector()

    def some_projected() -> bool:
        with closing(pipeline.view()) as view:
            return any(
                view.position(f"{pipeline.topic}:{p}") > 0 for p in range(pipeline.partitions)
            )

    wait_until(some_projected, what="the projector to commit a first batch")
    kill(projector)
    assert not projected_everything(pipeline)

    pipeline.projector()
    wait_until(lambda: projected_everything(pipeline), what="the restarted projector to finish")
    assert kafka_fingerprint(pipeline) == reference_fingerprint(ledger, tmp_path)


def test_two_projectors_share_the_partitions_and_one_takes_over_when_the_other_dies(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    ledger = pipeline.ledger()
    first = pipeline.projector("projector-a")
    pipeline.projector("projector-b")
    pipeline.relay()
    chunks = list(generate(seed=13, size=3000, chunk_size=250))
    for chunk in chunks[: len(chunks) // 2]:
        ledger.execute(ADMIN, chunk, bulk=True)
    wait_until(lambda: "projecting" in pipeline.log("projector-a"), what="projector a to start")
    kill(first)
    for chunk in chunks[len(chunks) // 2 :]:  # after the death: only b is left to project these
        ledger.execute(ADMIN, chunk, bulk=True)

    published_everything(pipeline, ledger)
    wait_until(lambda: projected_everything(pipeline), timeout=120, what="projector b to take over")
    assert kafka_fingerprint(pipeline) == reference_fingerprint(ledger, tmp_path)


def test_an_independent_consumer_sees_every_event_with_cloudevents_headers(
    pipeline: Pipeline,
) -> None:
    ledger = pipeline.ledger()
    load(ledger, seed=15, size=300)
    pipeline.relay()
    total = published_everything(pipeline, ledger)

    records = records_to_end(pipeline.bootstrap, pipeline.topic)

    assert len(records) == total  # no crash here: exactly once on the topic
    for record in records:
        headers = dict(record.headers)
        assert {
            "ce_id",
            "ce_type",
            "ce_source",
            "ce_time",
            "ce_subject",
            "position",
            "aggregate_version",
        } <= set(headers)
        assert record.key == headers["ce_subject"]  # key = aggregate id: one batch, one partition
        assert headers["ce_type"].startswith(b"lodestone.")
    assert len({dict(r.headers)["ce_id"] for r in records}) == total
    positions = sorted(int(dict(r.headers)["position"]) for r in records)
    assert positions == sorted(
        n.id for n in ledger.recorder.select_notifications(start=1, limit=total)
    )


def test_gateway_keeps_accepting_while_the_broker_is_down_and_everything_arrives_after(
    local_kafka: LocalKafka, tmp_path: Path
) -> None:
    bootstrap = local_kafka.start(tmp_path / "broker")
    topic = f"lodestone.events.t{uuid.uuid4().hex[:8]}"
    create_topic(bootstrap, topic, 3)
    settings = Settings(
        data_dir=tmp_path / "data",
        admin_key="admin",
        kafka_bootstrap_servers=bootstrap,
        kafka_topic=topic,
        projector_interval=0.05,
    )
    admin = {"Authorization": "Bearer admin"}

    def register(n: int) -> None:
        body = {"code": f"ACT-{n}", "name": f"Actor {n}", "country": "CN", "roles": ["trader"]}
        response = client.post("/v1/actors", json=body, headers=admin)
        assert response.status_code == 201, response.text

    with TestClient(create_app(settings)) as client:
        for n in range(20):
            register(n)
        local_kafka.stop()
        for n in range(20, 60):  # the broker is down: the event store is the authority
            register(n)
        local_kafka.start()
        ledger = client.app.state.runtime.ledger  # type: ignore[attr-defined]
        total = ledger.recorder.max_notification_id()
        store = SQLitePositionStore(settings.event_store_path)
        try:
            wait_until(
                lambda: store.get(Relay.name) == total, timeout=120, what="the relay to catch up"
            )
        finally:
            store.close()
        expected = stored_pairs(ledger)

    assert set(pairs_on_topic(records_to_end(bootstrap, topic))) == expected


def test_rebuild_from_offset_zero_ends_in_exactly_the_state_it_had(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    ledger = pipeline.ledger()
    load(ledger, seed=16, size=600)
    pipeline.relay()
    projector = pipeline.projector()
    published_everything(pipeline, ledger, what="the relay")
    wait_until(lambda: projected_everything(pipeline), what="the projector")
    kill(projector)
    before = kafka_fingerprint(pipeline)

    applied, after = rebuild(pipeline.settings())

    assert applied >= ledger.recorder.max_notification_id()
    assert after == before == reference_fingerprint(ledger, tmp_path)
