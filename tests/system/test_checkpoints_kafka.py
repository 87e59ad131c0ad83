"""The gateway publishes its checkpoints to Kafka, and that copy is what catches a past
rewritten locally: proofs against a real broker.

A gateway (create_app, its runtime threads started by the TestClient) records the demo
chain in three transactions and checkpoints every 0.2 s; a plain kafka-python consumer
reads the checkpoint topic back without any project code.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from lodestone import integrity
from lodestone.audit.verify import verify
from lodestone.bootstrap.settings import Settings
from lodestone.bootstrap.stores import build_ledger
from lodestone.demo.generator import ADMIN, DemoChain
from lodestone.gateway import create_app
from lodestone.infra.sqlite.stores import SQLiteCheckpointStore
from lodestone.streaming.checkpoints import read_published
from tests.fixtures.topics import records_to_end
from tests.system.conftest import wait_until

pytestmark = pytest.mark.slow

ADMIN_KEY = "checkpoint-test-admin-key"


def topic_records(bootstrap: str, topic: str) -> list[Any]:
    """Every record on the checkpoint ``topic`` (one partition: in the order published),
    none before the first checkpoint creates it."""
    return records_to_end(bootstrap, topic, timeout=30.0, missing_ok=True)


@dataclass
class Published:
    """A gateway's data directory once it has stopped, and the checkpoint topic it
    published to."""

    settings: Settings
    bootstrap: str
    topic: str
    served: list[dict[str, Any]]  # GET /v1/audit/checkpoints before the gateway stopped

    def records(self) -> list[Any]:
        return topic_records(self.bootstrap, self.topic)


@pytest.fixture
def published(kafka_bootstrap: str, tmp_path: Path) -> Iterator[Published]:
    name = f"t{uuid.uuid4().hex[:10]}"
    settings = Settings(
        data_dir=tmp_path / "data",
        admin_key=ADMIN_KEY,
        kafka_bootstrap_servers=kafka_bootstrap,
        kafka_topic=f"lodestone.events.{name}",
        kafka_partitions=1,
        checkpoint_topic=f"lodestone.checkpoints.{name}",
        checkpoint_interval=0.2,
    )
    with TestClient(create_app(settings)) as client:
        ledger = client.app.state.runtime.ledger  # type: ignore[attr-defined]

        def published_up_to(position: int) -> bool:
            records = topic_records(kafka_bootstrap, settings.checkpoint_topic)
            return bool(records) and json.loads(records[-1].value)["last_position"] == position

        # One transaction per chunk, each waited for: at least one checkpoint each.
        for chunk in DemoChain(seed=5, size=150).chunks(60):
            ledger.execute(ADMIN, chunk, bulk=True)
            top = ledger.recorder.max_notification_id()
            wait_until(partial(published_up_to, top), what=f"a checkpoint up to {top} on Kafka")
        response = client.get(
            "/v1/audit/checkpoints", headers={"Authorization": f"Bearer {ADMIN_KEY}"}
        )
        assert response.status_code == 200, response.text
    yield Published(
        settings, kafka_bootstrap, settings.checkpoint_topic, response.json()["checkpoints"]
    )


def test_published_checkpoints_are_canonical_records_whose_hashes_recompute_and_chain(
    published: Published,
) -> None:
    records = published.records()
    checkpoints = [json.loads(r.value) for r in records]

    assert len(checkpoints) >= 3
    for record, cp in zip(records, checkpoints, strict=True):
        assert record.value == integrity.canonical(cp)  # byte for byte RFC 8785
        assert record.key == str(cp["seq"]).encode()
        assert integrity.checkpoint_hash(cp) == cp["hash"]
    assert [cp["seq"] for cp in checkpoints] == list(range(1, len(checkpoints) + 1))
    assert [cp["prev"] for cp in checkpoints] == [None] + [cp["hash"] for cp in checkpoints[:-1]]
    assert [cp["first_position"] for cp in checkpoints] == [1] + [
        cp["last_position"] + 1 for cp in checkpoints[:-1]
    ]


def test_read_published_gives_the_checkpoints_the_gateway_stored(published: Published) -> None:
    store = SQLiteCheckpointStore(published.settings.event_store_path)
    try:
        stored = store.list()
    finally:
        store.close()

    from_kafka = read_published(published.bootstrap, published.topic)

    assert from_kafka == stored == published.served


def test_verify_against_kafka_catches_the_newest_events_dropped_with_their_checkpoint(
    published: Published,
) -> None:
    path = published.settings.event_store_path
    db = sqlite3.connect(path, isolation_level=None)
    try:
        seq, first = db.execute(
            "SELECT seq, first_position FROM lodestone_checkpoints ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        db.execute("DELETE FROM stored_events WHERE rowid >= ?", (first,))
        db.execute("DELETE FROM lodestone_checkpoints WHERE seq = ?", (seq,))
    finally:
        db.close()
    ledger = build_ledger(published.settings)
    store = SQLiteCheckpointStore(path)
    try:
        alone = verify(ledger.recorder, store)
        against_kafka = verify(
            ledger.recorder, store, published=read_published(published.bootstrap, published.topic)
        )
    finally:
        store.close()
        ledger.close()

    assert alone.ok  # a consistent, shorter past: invisible without the published copy
    assert not against_kafka.ok
    assert against_kafka.first is not None
    assert (
        against_kafka.first.kind,
        against_kafka.first.checkpoint,
        against_kafka.first.position,
    ) == ("checkpoint-missing", seq, first)
