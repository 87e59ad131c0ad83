"""The whole JSON audit report of a few demo batches, compared with snapshots: any change
to a section, a sentence, an anomaly or their order shows up as a diff.

The demo is loaded with every clock fixed (the event store's record time, the ledger's
"now", the checkpointer's and the report's), so every hash, lag and checkpoint is the
same on every run. The snapshots in ``snapshots/`` were written by the report code
before it was split into a package; after a deliberate change to the report, write them
again with ``python -m tests.api.test_report_snapshot`` and review the diff."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from lodestone.audit import report as reports
from lodestone.audit.checkpointer import Checkpointer
from lodestone.bootstrap.settings import Settings
from lodestone.bootstrap.stores import (
    build_checkpoint_store,
    build_event_rows,
    build_genealogy_view,
)
from lodestone.demo import generator
from lodestone.infra.sqlite.database import sqlite_env
from lodestone.ledger import Ledger
from lodestone.ledger import commands as c
from lodestone.streaming.projector import genealogy_projector

SNAPSHOTS = Path(__file__).parent / "snapshots"
#: The demo's steps are dated up to 2026-10-02: every event is recorded the day after.
RECORDED_AT = datetime(2026, 10, 3, tzinfo=UTC)
GENERATED_AT = datetime(2026, 10, 4, 9, 30, tzinfo=UTC)
SEED, SIZE = 7, 300


def _correct(ledger: Ledger, demo: generator.DemoSummary) -> None:
    """Two corrections, so the report's correction sections and sentences are covered:
    an ore lot of the magnet's genealogy re-weighed, and the demo's quarantined ore lot
    declared as never having been mined."""
    ore = next(
        batch
        for batch in map(ledger.batch, _genealogy_refs(ledger, demo.magnet))
        if batch.material.value == "ore"
    )
    ledger.execute(
        generator.ADMIN,
        [
            c.CorrectEvent(
                ore.reference, 1, "incorrect-data", {"mass_kg": ore.initial_kg + 1}, "re-weighed"
            ),
            c.CorrectEvent(demo.quarantined, 1, "did-not-occur", {}, "reported twice"),
        ],
    )


def _genealogy_refs(ledger: Ledger, magnet: str) -> list[str]:
    return sorted(ledger.batch(str(id)).reference for id in generator.ancestors(ledger, magnet))


def _reports(data_dir: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """Loads the demo into ``data_dir`` and builds the reports the snapshots hold. Call it
    with ``eventsourcing.domain.datetime_now_with_tzinfo`` fixed to ``RECORDED_AT``."""
    settings = Settings(data_dir=data_dir, postgres_url=None)  # SQLite whatever the env says
    data_dir.mkdir(parents=True, exist_ok=True)
    ledger = Ledger(sqlite_env(settings.event_store_path), clock=lambda: RECORDED_AT)
    view = build_genealogy_view(settings)
    rows = build_event_rows(settings)
    checkpoints = build_checkpoint_store(settings)
    try:
        demo = generator.load(ledger, seed=SEED, size=SIZE)
        _correct(ledger, demo)
        genealogy_projector(ledger, view).catch_up()
        checkpointer = Checkpointer(ledger.recorder, checkpoints, clock=lambda: RECORDED_AT)
        # The magnet's genealogy holds every kind of step and origin the demo makes, its
        # timeline a sale, an export and its receipt; the quarantined lot is held still.
        for name, ref in (("magnet", demo.magnet), ("quarantined", demo.quarantined)):
            batch_id = ledger.batch(ref).id
            found = reports.build(
                ledger, rows, view, checkpoints, checkpointer, batch_id, now=GENERATED_AT
            )
            yield name, found
    finally:
        checkpoints.close()
        rows.close()
        view.close()
        ledger.close()


def _text(report: dict[str, Any]) -> str:
    """As ``lodestone report --format json`` writes it."""
    return json.dumps(report, indent=2, ensure_ascii=False) + "\n"


@pytest.fixture(scope="module")
def demo_reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("eventsourcing.domain.datetime_now_with_tzinfo", lambda: RECORDED_AT)
        return dict(_reports(tmp_path_factory.mktemp("report-snapshot") / "data"))


@pytest.mark.parametrize("name", ["magnet", "quarantined"])
def test_json_report_of_a_demo_batch_matches_its_snapshot(
    demo_reports: dict[str, dict[str, Any]], name: str
) -> None:
    expected = (SNAPSHOTS / f"report-{name}.json").read_text(encoding="utf-8")

    assert _text(demo_reports[name]) == expected


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as scratch, pytest.MonkeyPatch.context() as patch:
        patch.setattr("eventsourcing.domain.datetime_now_with_tzinfo", lambda: RECORDED_AT)
        SNAPSHOTS.mkdir(exist_ok=True)
        for name, report in _reports(Path(scratch) / "data"):
            (SNAPSHOTS / f"report-{name}.json").write_text(_text(report), encoding="utf-8")
