"""Every registered read model, rebuilt from offset 0 of a real Kafka topic by parallel
worker processes, ends in exactly the state the same projection reaches fed straight from
the event store, on SQLite and on PostgreSQL.

The topic has three partitions and two workers split them, so each worker sees its
aggregates' events in order and nothing about the others': what a projection must not
depend on (Kafka keeps order per aggregate only). The store is the demo chain plus what
the demo lacks: an ore lot re-weighed (a batch correction and a quota draw corrected), a
lot declared never mined, and an anomaly review. A read model added to the registry is
covered by being there. A worker killed (SIGKILL) fails the rebuild and changes nothing.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from lodestone.bootstrap.settings import Settings
from lodestone.bootstrap.stores import open_view
from lodestone.demo.generator import ADMIN, DemoSummary, ancestors, load
from lodestone.infra.kafka.topics import create_topic
from lodestone.ledger import Ledger, commands
from lodestone.projections.registry import REGISTRY
from lodestone.projector.main import rebuild
from lodestone.streaming.kafka_rebuild import end_offsets
from lodestone.streaming.projector import log_projector
from tests.system.conftest import Pipeline, wait_until
from tests.system.test_kafka_pipeline import relay_position

pytestmark = pytest.mark.slow


@dataclass
class Relayed:
    """A store relayed whole to its topic, and the store-fed fingerprints by name."""

    pipeline: Pipeline
    ledger: Ledger
    home: Path
    references: dict[str, str] = field(default_factory=dict)

    def reference(self, name: str) -> str:
        if name not in self.references:
            view = open_view(Settings(data_dir=self.home / f"reference-{name}"), REGISTRY[name])
            try:
                log_projector(self.ledger, REGISTRY[name].projection(), view).catch_up()
                self.references[name] = view.fingerprint()
            finally:
                view.close()
        return self.references[name]


def _what_the_demo_lacks(ledger: Ledger, demo: DemoSummary) -> None:
    ore = next(
        batch
        for batch in (ledger.batch(str(id)) for id in sorted(ancestors(ledger, demo.magnet)))
        if batch.material.value == "ore"
    )
    ledger.execute(
        ADMIN,
        [
            commands.CorrectEvent(
                ore.reference, 1, "incorrect-data", {"mass_kg": ore.initial_kg + 1}, "re-weighed"
            ),
            commands.CorrectEvent(demo.quarantined, 1, "did-not-occur", {}, "reported twice"),
            commands.ReviewAnomaly(
                str(uuid.uuid5(uuid.NAMESPACE_URL, "urn:test:anomaly")),
                "round-trip",
                "acknowledged",
                "asked for the papers",
            ),
        ],
    )


@pytest.fixture(scope="module")
def relayed(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Relayed]:
    home = tmp_path_factory.mktemp("every-model")
    name = f"t{uuid.uuid4().hex[:10]}"
    pipeline = Pipeline(
        kafka_bootstrap, home / "data", f"lodestone.events.{name}", f"genealogy.{name}"
    )
    pipeline.data_dir.mkdir()
    create_topic(kafka_bootstrap, pipeline.topic, pipeline.partitions)
    ledger = pipeline.ledger()
    try:
        _what_the_demo_lacks(ledger, load(ledger, seed=21, size=700))
        pipeline.relay()
        total = ledger.recorder.max_notification_id()
        wait_until(lambda: relay_position(pipeline) == total, what="the relay")
        pipeline.close()  # the relay is done: the topic holds the whole store
        yield Relayed(pipeline, ledger, home)
    finally:
        pipeline.close()
        ledger.close()


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
@pytest.mark.parametrize("name", REGISTRY.names())
def test_a_read_model_rebuilt_from_kafka_by_parallel_workers_equals_the_store_fed_one(
    relayed: Relayed,
    name: str,
    backend: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    postgres_url = None
    if backend == "postgres":
        make_database: Callable[[], str] = request.getfixturevalue("make_postgres_database")
        postgres_url = make_database()
    pipeline = relayed.pipeline
    settings = Settings(
        data_dir=tmp_path / "rebuilt",
        postgres_url=postgres_url,
        kafka_bootstrap_servers=pipeline.bootstrap,
        kafka_topic=pipeline.topic,
    )
    on_topic = sum(end_offsets(pipeline.bootstrap, pipeline.topic).values())

    read, fingerprint = rebuild(settings, projection=name, workers=2)

    assert read == on_topic == relayed.ledger.recorder.max_notification_id()
    assert fingerprint == relayed.reference(name)


def test_a_worker_killed_fails_the_rebuild_and_leaves_the_live_model_as_it_was(
    relayed: Relayed, tmp_path: Path
) -> None:
    pipeline = relayed.pipeline
    settings = Settings(
        data_dir=tmp_path / "live",
        kafka_bootstrap_servers=pipeline.bootstrap,
        kafka_topic=pipeline.topic,
    )
    _, live = rebuild(settings, projection="licences", workers=2)
    failures: list[BaseException] = []

    def again() -> None:
        try:
            rebuild(settings, projection="licences", workers=2)
        except RuntimeError as error:
            failures.append(error)

    rebuilding = threading.Thread(target=again)
    rebuilding.start()
    wait_until(lambda: bool(multiprocessing.active_children()), what="a rebuild worker")
    os.kill(multiprocessing.active_children()[0].pid or 0, signal.SIGKILL)
    rebuilding.join(timeout=120)

    assert not rebuilding.is_alive()
    assert len(failures) == 1 and "died" in str(failures[0])
    assert not multiprocessing.active_children()  # the other worker was stopped too
    assert not list(settings.data_dir.glob("rebuild-*"))  # the copy was given up
    view = open_view(settings, REGISTRY["licences"])
    try:
        assert view.fingerprint() == live == relayed.reference("licences")
    finally:
        view.close()
