"""A ledger written before shipments had numbers (ShipmentExported and ShipmentReceived
v1, made by the code of the commit before) keeps loading, verifying and projecting:
the upcasters say v1 exports named no shipment and were all controlled.

``tests/fixtures/stores/v1-shipments.sqlite`` was written by that code (a demo chain,
seed 5, size 150, with eight exports and their receipts) and is never rewritten."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from lodestone.audit.verify import verify
from lodestone.bootstrap.settings import Settings
from lodestone.bootstrap.stores import build_ledger, build_ledger_tables, open_view
from lodestone.domain.batches import Batch
from lodestone.projections.registry import REGISTRY
from lodestone.streaming.projector import log_projector

STORE = Path(__file__).parent.parent / "fixtures" / "stores" / "v1-shipments.sqlite"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    shutil.copy(STORE, data_dir / "events.sqlite")
    return Settings(data_dir=data_dir)


def _exports(ledger: Any) -> list[Any]:
    found = []
    for n in ledger.recorder.select_notifications(start=1, limit=100_000):
        if n.topic.endswith("Batch.ShipmentExported"):
            found.append(ledger.mapper.to_domain_event(n))
    return found


def test_the_store_holds_version_1_shipments(settings: Settings) -> None:
    ledger = build_ledger(settings)
    try:
        states = [
            n.state
            for n in ledger.recorder.select_notifications(start=1, limit=100_000)
            if n.topic.endswith("Batch.ShipmentExported")
        ]
    finally:
        ledger.close()

    assert len(states) == 8 and not any(b'"class_version"' in s for s in states)


def test_a_version_1_export_loads_with_no_shipment_number_and_controlled(
    settings: Settings,
) -> None:
    ledger = build_ledger(settings)
    try:
        events = _exports(ledger)
    finally:
        ledger.close()

    assert {(e.shipment, e.controlled) for e in events} == {(None, True)}
    assert all(e.licence_id is not None for e in events)


def test_a_batch_received_from_a_version_1_shipment_loads(settings: Settings) -> None:
    ledger = build_ledger(settings)
    try:
        received = [
            ledger.mapper.to_domain_event(n)
            for n in ledger.recorder.select_notifications(start=1, limit=100_000)
            if n.topic.endswith("Batch.ShipmentReceived")
        ]
        batch: Any = ledger.repository.get(received[0].originator_id)
    finally:
        ledger.close()

    assert {r.shipment for r in received} == {None}
    assert isinstance(batch, Batch) and batch.export is None


def test_the_version_1_store_still_verifies(settings: Settings) -> None:
    ledger = build_ledger(settings)
    tables = build_ledger_tables(settings)
    try:
        report = verify(ledger.recorder, tables.checkpoints, rows=tables.rows)
    finally:
        tables.close()
        ledger.close()

    assert report.ok, report.first


@pytest.mark.parametrize("name", [entry.name for entry in REGISTRY])
def test_every_read_model_projects_the_version_1_store(settings: Settings, name: str) -> None:
    ledger = build_ledger(settings)
    view = open_view(settings, REGISTRY[name])
    try:
        stored = ledger.recorder.max_notification_id()
        applied = log_projector(ledger, REGISTRY[name].projection(), view).catch_up()
        position = view.position("ledger")
    finally:
        view.close()
        ledger.close()

    assert applied == stored and position == stored
