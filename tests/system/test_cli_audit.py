"""The auditors' commands of ``lodestone`` on a demo data directory, through Typer's
CliRunner: their exit codes and what they print, on an intact directory and on copies
edited behind Lodestone's back with sqlite3, as someone with access to the files would.

The demo (``lodestone demo --no-serve --size 300``) is loaded once per module; each test
works on its own copy of the directory."""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from lodestone.bootstrap.settings import Settings
from lodestone.bootstrap.stores import build_ledger
from lodestone.cli.main import app
from lodestone.demo.generator import ADMIN
from lodestone.ledger import commands as c
from lodestone.projections.registry import REGISTRY

ADMIN_KEY = "cli-audit-admin-key"
DEMO_LINE = re.compile(r"magnet (\S+/\S+) has \d+ ancestors")


@dataclass(frozen=True)
class Demo:
    data_dir: Path
    magnet: str  # ACTOR/LOT of the demo's traced magnet lot


def _clean_environment(patch: pytest.MonkeyPatch) -> None:
    """The commands read LODESTONE_* settings; a test's data dir and store are its own
    (no PostgreSQL or Kafka a CI job may name). ``demo`` sets LODESTONE_ADMIN_KEY: the
    patch undoes that too."""
    for name in list(os.environ):
        if name.startswith("LODESTONE_"):
            patch.delenv(name)
    patch.setenv("LODESTONE_ADMIN_KEY", ADMIN_KEY)


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    data_dir = tmp_path_factory.mktemp("cli-audit") / "demo"
    with pytest.MonkeyPatch.context() as patch:
        _clean_environment(patch)
        result = run("demo", "--no-serve", "--size", "300", "--data-dir", data_dir)
    assert result.exit_code == 0, result.output
    found = DEMO_LINE.search(result.output)
    assert found, result.output
    yield Demo(data_dir, found.group(1))


@pytest.fixture
def data_dir(demo: Demo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This test's own copy of the demo directory."""
    _clean_environment(monkeypatch)
    copy = tmp_path / "data"
    shutil.copytree(demo.data_dir, copy)
    return copy


def table_rows(output: str) -> list[list[str]]:
    """The body rows of the table a command printed, each cell's wrapped lines joined
    without spaces (so an id or value wrapped across lines comes back whole)."""
    rows: list[list[str]] = []
    for line in output.splitlines():
        if not line.startswith("│"):
            continue
        cells = [cell.strip() for cell in line.strip("│").split("│")]
        if cells[0] or not rows:
            rows.append(cells)
        else:
            rows[-1] = [a + b for a, b in zip(rows[-1], cells, strict=True)]
    return rows


def first_event(data_dir: Path, topic_part: str) -> tuple[int, bytes]:
    """The position and stored state of the first event whose topic contains ``topic_part``."""
    with sqlite3.connect(data_dir / "events.sqlite") as db:
        row = db.execute(
            "SELECT rowid, state FROM stored_events WHERE topic LIKE ? ORDER BY rowid LIMIT 1",
            (f"%{topic_part}%",),
        ).fetchone()
    assert row is not None, topic_part
    return int(row[0]), bytes(row[1])


def ore_lot(data_dir: Path) -> str:
    """ACTOR/LOT of the demo's first ore lot."""
    _, state = first_event(data_dir, "OreExtracted")
    facts: dict[str, Any] = json.loads(state)
    return f"{facts['actor_code']}/{facts['lot_code']}"


# --- verify -------------------------------------------------------------------------------


def test_verify_of_an_intact_store_exits_0_and_says_ok(data_dir: Path) -> None:
    result = run("verify", "--data-dir", data_dir)

    assert result.exit_code == 0, result.output
    assert "OK: every hash, chain and checkpoint holds." in result.output


def test_verify_after_one_byte_of_an_event_is_edited_exits_1_naming_its_position(
    data_dir: Path,
) -> None:
    position, state = first_event(data_dir, "Produced")
    at = state.index(b'"mass_kg"')
    digit = state.index(b"_data_", at) + len(b'_data_":"')
    edited = (
        state[:digit] + (b"8" if state[digit : digit + 1] != b"8" else b"7") + state[digit + 1 :]
    )
    assert len(edited) == len(state) and edited != state
    with sqlite3.connect(data_dir / "events.sqlite") as db:
        db.execute("UPDATE stored_events SET state = ? WHERE rowid = ?", (edited, position))

    result = run("verify", "--data-dir", data_dir)

    assert result.exit_code == 1, result.output
    assert "BROKEN: 1 problem(s). First: edited" in result.output
    # kind, position, aggregate, version, checkpoint, detail
    assert [row[:2] for row in table_rows(result.output)] == [["edited", str(position)]]


# --- replay -------------------------------------------------------------------------------


def test_replay_prints_one_line_per_version_with_the_state_changes(
    demo: Demo, data_dir: Path
) -> None:
    result = run("replay", demo.magnet, "--data-dir", data_dir)

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    heads = [line for line in lines if re.match(r"v\d+ ", line)]
    assert [h.split()[0] for h in heads] == [f"v{n}" for n in range(1, len(heads) + 1)]
    assert heads[0].split()[1] == "Batch.Produced"
    # Under each version, the summary fields that event changed.
    changes = [lines[lines.index(h) + 1].strip() for h in heads]
    assert changes[0].startswith("status: active, remaining_kg: ")
    assert all(re.match(r"(\w+: \S+)(, \w+: \S+)*$", c) for c in changes), changes


def test_replay_shows_a_correction_and_what_it_changed(data_dir: Path) -> None:
    lot = ore_lot(data_dir)  # wholly consumed by the demo's beneficiation
    ledger = build_ledger(Settings(data_dir=data_dir))
    try:
        batch = ledger.batch(lot)
        assert (batch.status.value, batch.remaining_kg) == ("consumed", 0)
        ledger.execute(
            ADMIN,
            [
                c.CorrectEvent(
                    lot, 1, "incorrect-data", {"mass_kg": batch.initial_kg + 1}, "re-weighed"
                )
            ],
        )
    finally:
        ledger.close()

    result = run("replay", lot, "--data-dir", data_dir)

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    (head,) = [line for line in lines if " Batch.Corrected " in line]
    assert lines[-2] == head
    # The kilogram found by the correction is left over: the lot is active again.
    assert re.fullmatch(
        r"status: active, remaining_kg: 1(\.0*)?, corrections: 1", lines[-1].strip()
    ), lines[-1]


# --- check --------------------------------------------------------------------------------


def test_check_of_a_consistent_directory_exits_0(data_dir: Path) -> None:
    result = run("check", "--data-dir", data_dir)

    assert result.exit_code == 0, result.output
    assert "OK: every read model agrees with the event store." in result.output


def differences(output: str) -> list[list[str]]:
    """The rows of check's table of differences (its five columns: read model,
    aggregate, field, from the events, in the read model)."""
    return [row for row in table_rows(output) if len(row) == 5]


def read_models(output: str) -> dict[str, str]:
    """Check's table of read models compared as a whole: name -> result."""
    return {row[0]: row[3] for row in table_rows(output) if len(row) == 4}


def test_check_compares_every_registered_read_model_with_a_fresh_projection(
    data_dir: Path,
) -> None:
    assert run("rebuild", "--data-dir", data_dir).exit_code == 0

    result = run("check", "--data-dir", data_dir)

    assert result.exit_code == 0, result.output
    assert read_models(result.output) == dict.fromkeys(REGISTRY.names(), "same"), result.output


def test_check_after_a_view_row_is_edited_exits_1_naming_the_batch_and_field(
    data_dir: Path,
) -> None:
    with sqlite3.connect(data_dir / "read-models.sqlite") as db:
        (batch_id,) = db.execute(
            "SELECT id FROM batches WHERE CAST(remaining_kg AS REAL) > 0 ORDER BY id LIMIT 1"
        ).fetchone()
        db.execute("UPDATE batches SET remaining_kg = '1' WHERE id = ?", (batch_id,))

    result = run("check", "--data-dir", data_dir)

    assert result.exit_code == 1, result.output
    # read model, aggregate, field, from the events, in the read model
    assert [row[:3] + row[4:] for row in differences(result.output)] == [
        ["genealogy", batch_id, "remaining_kg", "Decimal('1')"]
    ], result.output
    assert read_models(result.output)["genealogy"] == "DIFFERS", result.output


def test_check_after_a_trade_line_is_edited_exits_1_naming_the_trade_ledger(
    data_dir: Path,
) -> None:
    assert run("rebuild", "--data-dir", data_dir, "--projection", "trades").exit_code == 0
    with sqlite3.connect(data_dir / "read-models.sqlite") as db:
        assert db.execute("UPDATE trade_lines SET kg = '1' WHERE rowid = 1").rowcount == 1

    result = run("check", "--data-dir", data_dir)

    assert result.exit_code == 1, result.output
    assert read_models(result.output)["trades"] == "DIFFERS", result.output
    assert "lodestone rebuild --projection trades" in result.output
    assert not (data_dir / "check-trades.sqlite").exists()  # the scratch copy is gone


# --- bundle and verify-bundle ------------------------------------------------------------


def test_a_written_bundle_verifies(demo: Demo, data_dir: Path, tmp_path: Path) -> None:
    bundle = tmp_path / "bundle.json"

    written = run("bundle", demo.magnet, "--output", bundle, "--data-dir", data_dir)
    checked = run("verify-bundle", bundle)

    assert written.exit_code == 0, written.output
    assert (checked.exit_code, checked.output.startswith("OK: ")) == (0, True), checked.output


def test_an_altered_copy_of_a_bundle_fails_verification(
    demo: Demo, data_dir: Path, tmp_path: Path
) -> None:
    bundle, altered = tmp_path / "bundle.json", tmp_path / "altered.json"
    assert run("bundle", demo.magnet, "-o", bundle, "--data-dir", data_dir).exit_code == 0
    data = json.loads(bundle.read_bytes())
    mass = data["events"][0]["event"]["mass_kg"]
    mass["_data_"] = str(Decimal(mass["_data_"]) + 1)
    altered.write_text(json.dumps(data))

    checked = run("verify-bundle", altered)

    assert checked.exit_code == 1, checked.output
    assert checked.output.startswith("FAILED: "), checked.output
    assert run("verify-bundle", bundle).exit_code == 0
