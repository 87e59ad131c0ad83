"""The inventory and licences read models fed from Kafka (three partitions, so events
of different aggregates interleave) end in exactly the state projected straight from
the event store: their read-back of a batch's or a licence's state holds on a
partitioned feed too."""

from __future__ import annotations

from pathlib import Path

import pytest

from lodestone.bootstrap.settings import Settings
from lodestone.bootstrap.stores import open_view
from lodestone.demo.generator import load
from lodestone.ledger import Ledger
from lodestone.projections.registry import REGISTRY
from lodestone.projector.main import rebuild
from lodestone.streaming.projector import log_projector
from tests.system.conftest import Pipeline, wait_until
from tests.system.test_kafka_pipeline import relay_position

pytestmark = pytest.mark.slow


def from_the_log(ledger: Ledger, name: str, tmp_path: Path) -> str:
    view = open_view(Settings(data_dir=tmp_path / "reference"), REGISTRY[name])
    try:
        log_projector(ledger, REGISTRY[name].projection(), view).catch_up()
        return view.fingerprint()
    finally:
        view.close()


def test_inventory_and_licences_from_kafka_end_as_projected_from_the_event_store(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    ledger = pipeline.ledger()
    load(ledger, seed=16, size=400)
    pipeline.relay()
    wait_until(
        lambda: relay_position(pipeline) == ledger.recorder.max_notification_id(), what="the relay"
    )

    for name in ("inventory", "licences"):
        applied, fingerprint = rebuild(pipeline.settings(), projection=name)

        assert applied >= ledger.recorder.max_notification_id()
        assert fingerprint == from_the_log(ledger, name, tmp_path)
    ledger.close()
