"""``lodestone.audit.consistency.check`` on a chain with corrections, on both backends:
the genealogy view projected from the event store agrees with the state folded from it;
a row edited behind the projector's back is named (batch and field); a rebuild from
position 0 ends in the same rows."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from decimal import Decimal as D
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest
from psycopg import sql

from lodestone.audit.consistency import ConsistencyReport, check
from lodestone.domain import ids
from lodestone.domain.access import Principal, Role
from lodestone.ledger import Ledger
from lodestone.ledger import commands as c
from lodestone.projections.genealogy import GenealogyView
from lodestone.streaming.projector import genealogy_projector
from tests.fixtures.backends import Backend, PostgresBackend
from tests.integration.conftest import at, operator

REGULATOR = Principal("reg", Role.REGULATOR)
VIEW = "rm"


def record_corrections(ledger: Ledger) -> None:
    """Every kind of correction the chain allows: an origin's mass and time (ORE-N, 4,000
    kg left after its split), a sale's time and the mass of the lot it sold (ORE-S, wholly
    consumed since), a hold's reason (OX-A, by a regulator), an ore lot that did not
    occur (ORE-X, void) and a move that did not occur (ORE-M)."""
    north, south = operator("NORTH"), operator("SOUTH")
    ledger.execute(
        north,
        [
            c.ExtractOre(
                facility="N-MINE",
                quota="N-Q",
                lot_code=lot,
                mass_kg=D("2000"),
                composition={"Nd": D("0.03"), "Pr": D("0.01")},
                occurred_at=at(12),
            )
            for lot in ("ORE-X", "ORE-M")
        ],
    )
    ledger.execute(north, [c.MoveBatch(batch="ORE-M", to_facility="N-SEP", occurred_at=at(13))])
    ledger.execute(
        north,
        [
            c.CorrectEvent("ORE-N", 1, "incorrect-data", {"mass_kg": "11000"}, "weighbridge"),
            c.CorrectEvent("ORE-N", 1, "incorrect-data", {"occurred_at": at(0)}, "shift log"),
            c.CorrectEvent("ORE-X", 1, "did-not-occur", note="reported twice"),
            c.CorrectEvent("ORE-M", 2, "did-not-occur", note="never left the pit"),
        ],
    )
    ledger.execute(
        south,
        [
            c.CorrectEvent(
                "ORE-S", 2, "incorrect-data", {"occurred_at": at(1).isoformat()}, "contract date"
            ),
            # Wholly consumed by the separation: the 500 kg found are left, active again.
            c.CorrectEvent("ORE-S", 1, "incorrect-data", {"mass_kg": "100500"}, "re-weighed"),
        ],
    )
    ledger.execute(
        REGULATOR,
        [c.CorrectEvent("NORTH/OX-A", 3, "incorrect-data", {"reason": "customs document check"})],
    )


@pytest.fixture
def corrected_ledger(chain_ledger: Ledger) -> Ledger:
    record_corrections(chain_ledger)
    return chain_ledger


def projected(ledger: Ledger, backend: Backend) -> GenealogyView:
    view = backend.genealogy_view(VIEW)
    genealogy_projector(ledger, view).catch_up()
    return view


def edit_row(backend: Backend, tmp_path: Path, batch_id: UUID, column: str, value: Any) -> None:
    """An UPDATE straight in the view's database, as a tamperer or a buggy tool would."""
    if isinstance(backend, PostgresBackend):
        with psycopg.connect(backend.url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("UPDATE {}.batches SET {} = %s WHERE id = %s").format(
                    sql.Identifier(f"view_{VIEW}"), sql.Identifier(column)
                ),
                (value, batch_id),
            )
        return
    with sqlite3.connect(tmp_path / f"view-{VIEW}.sqlite") as db:
        changed = db.execute(
            f"UPDATE batches SET {column} = ? WHERE id = ?",
            (value, str(batch_id)),
        ).rowcount
    assert changed == 1


def batch_id(actor: str, lot: str) -> UUID:
    return ids.batch_id(ids.actor_id(actor), lot)


EditedCheck = Callable[[UUID, str, Any], ConsistencyReport]


@pytest.fixture
def check_after_edit(corrected_ledger: Ledger, backend: Backend, tmp_path: Path) -> EditedCheck:
    """``check_after_edit(batch, column, value)``: the check of a view projected from the
    corrected chain after that column of the batch's row was edited."""

    def edited(batch: UUID, column: str, value: Any) -> ConsistencyReport:
        view = projected(corrected_ledger, backend)
        edit_row(backend, tmp_path, batch, column, value)
        return check(corrected_ledger, view)

    return edited


def test_the_view_agrees_with_the_event_store_after_corrections(
    corrected_ledger: Ledger, backend: Backend
) -> None:
    view = projected(corrected_ledger, backend)

    report = check(corrected_ledger, view)

    assert report.differences == []
    assert report.ok
    assert report.events == corrected_ledger.recorder.max_notification_id()
    # The chain's 2 ores, split-off part, concentrate, 2 oxides, merge and 2 split parts;
    # ORE-X and ORE-M.
    assert report.batches_compared == 11


def test_the_view_holds_the_corrected_facts(corrected_ledger: Ledger, backend: Backend) -> None:
    view = projected(corrected_ledger, backend)
    ore_n, ore_x, ore_m = (batch_id("NORTH", lot) for lot in ("ORE-N", "ORE-X", "ORE-M"))
    ore_s = batch_id("SOUTH", "ORE-S")

    rows = view.batches([ore_n, ore_x, ore_m, ore_s])

    assert (rows[ore_n].initial_kg, rows[ore_n].remaining_kg, rows[ore_n].corrections) == (
        D("11000"),
        D("5000"),
        2,
    )
    assert rows[ore_n].created_at == at(0)
    assert (rows[ore_s].status, rows[ore_s].remaining_kg) == ("active", D("500"))
    assert (rows[ore_x].status, rows[ore_x].remaining_kg) == ("void", D("0"))
    assert rows[ore_m].facility_id == ids.facility_id("N-MINE")


def test_an_edited_remaining_mass_is_named_with_its_batch(check_after_edit: EditedCheck) -> None:
    ore_n = batch_id("NORTH", "ORE-N")

    report = check_after_edit(ore_n, "remaining_kg", "4000")

    assert [(d.read_model, d.aggregate_id, d.field) for d in report.differences] == [
        ("genealogy", str(ore_n), "remaining_kg")
    ]
    (difference,) = report.differences
    assert D(difference.from_events.split("'")[1]) == D("5000")
    assert not report.ok


def test_an_edited_corrections_count_is_named_with_its_batch(check_after_edit: EditedCheck) -> None:
    ore_n = batch_id("NORTH", "ORE-N")

    report = check_after_edit(ore_n, "corrections", None)

    assert [(d.aggregate_id, d.field) for d in report.differences] == [(str(ore_n), "corrections")]


def test_an_undone_void_status_is_named_with_its_batch(check_after_edit: EditedCheck) -> None:
    ore_x = batch_id("NORTH", "ORE-X")

    report = check_after_edit(ore_x, "status", "active")

    assert [(d.aggregate_id, d.field, d.in_read_model) for d in report.differences] == [
        (str(ore_x), "status", "'active'")
    ]


def test_a_rebuild_from_position_zero_after_corrections_gives_the_same_rows(
    corrected_ledger: Ledger, backend: Backend
) -> None:
    view = backend.genealogy_view(VIEW)
    projector = genealogy_projector(corrected_ledger, view)
    projector.catch_up()
    before = view.fingerprint()

    view.reset()
    assert projector.position() == 0
    projector.catch_up()

    assert view.fingerprint() == before
    assert check(corrected_ledger, view).ok


def test_a_fresh_view_of_a_corrected_chain_has_the_same_rows_as_a_followed_one(
    chain_ledger: Ledger, backend: Backend
) -> None:
    followed = backend.genealogy_view("followed")
    projector = genealogy_projector(chain_ledger, followed)
    projector.catch_up()  # the chain before its corrections...
    record_corrections(chain_ledger)
    projector.catch_up()  # ...then the corrections, as a running projector sees them

    fresh = projected(chain_ledger, backend)

    assert fresh.fingerprint() == followed.fingerprint()
