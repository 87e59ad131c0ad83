"""A small but complete chain recorded through the real ledger on SQLite."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest

from lodestone.domain import ids
from lodestone.domain.access import Principal, Role
from lodestone.domain.chain import OutputSpec, UntracedInput
from lodestone.infra.postgres.stores import PostgresCheckpointStore, PostgresEventRows
from lodestone.infra.sqlite.stores import SQLiteCheckpointStore, SQLiteEventRows
from lodestone.ledger import Ledger
from lodestone.ledger import commands as c
from lodestone.ledger.stores import CheckpointStore, EventRows
from tests.fixtures.backends import Backend, PostgresBackend

NOW = datetime(2026, 6, 1, tzinfo=UTC)
ADMIN = Principal("admin", Role.ADMIN)


def operator(code: str) -> Principal:
    return Principal(f"key:{code}", Role.OPERATOR, ids.actor_id(code))


def at(day: int) -> datetime:
    return datetime(2026, 3, 1, tzinfo=UTC) + timedelta(days=day)


def record_chain(ledger: Ledger) -> None:
    """Two mines in two countries -> concentrates -> NdPr and Dy oxides -> a merged oxide
    lot -> split -> one part sold, one exported and received in Germany."""
    year = (datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))
    ledger.execute(
        ADMIN,
        [
            c.RegisterActor("NORTH", "North Mining", "CN", ["miner", "separator"]),
            c.RegisterActor("SOUTH", "South Clay", "MM", ["miner"]),
            c.RegisterActor("TRADER", "Trader Ltd", "CN", ["trader"]),
            c.RegisterActor("AUTO", "Auto GmbH", "DE", ["end_client"]),
            c.RegisterFacility("N-MINE", "Bayan pit", "mine", "NORTH", "CN"),
            c.RegisterFacility("N-SEP", "Baotou separation", "separation_plant", "NORTH", "CN"),
            c.RegisterFacility("S-MINE", "Kachin clay", "mine", "SOUTH", "MM"),
            c.RegisterFacility("T-WH", "Trader warehouse", "warehouse", "TRADER", "CN"),
            c.RegisterFacility("A-PLANT", "Auto plant", "magnet_plant", "AUTO", "DE"),
            c.IssueLicence("N-Q", "mining_quota", "NORTH", D("1000000"), *year),
            c.IssueLicence("S-Q", "mining_quota", "SOUTH", D("1000000"), *year),
            c.IssueLicence("N-SQ", "separation_quota", "NORTH", D("1000000"), *year),
            c.IssueLicence(
                "N-EX",
                "export_licence",
                "NORTH",
                D("100000"),
                *year,
                items=[{"material": "oxide", "customs_code": "2846"}],
                consignee="AUTO",
                end_user="Auto GmbH",
                destination_country="DE",
            ),
        ],
    )
    north, south, trader, auto = (operator(code) for code in ("NORTH", "SOUTH", "TRADER", "AUTO"))
    regulator = Principal("reg", Role.REGULATOR)
    steps: list[tuple[Principal, c.Command]] = [
        (
            north,
            c.ExtractOre(
                facility="N-MINE",
                quota="N-Q",
                lot_code="ORE-N",
                mass_kg=D("10000"),
                composition={"Nd": D("0.04"), "Pr": D("0.01"), "Dy": D("0.0005"), "Fe": D("0.2")},
                occurred_at=at(1),
            ),
        ),
        (
            south,
            c.ExtractOre(
                facility="S-MINE",
                quota="S-Q",
                lot_code="ORE-S",
                mass_kg=D("100000"),
                composition={"Nd": D("0.0004"), "Dy": D("0.0003"), "Y": D("0.0008")},
                occurred_at=at(1),
            ),
        ),
        (
            south,
            c.TransferCustody(
                batch="ORE-S",
                buyer="NORTH",
                contract="K-1",
                to_facility="N-SEP",
                price=D("12000"),
                currency="USD",
                occurred_at=at(2),
            ),
        ),
        (north, c.Split(batch="ORE-N", parts=[("ORE-N-A", D("6000"))], occurred_at=at(3))),
        (
            north,
            c.Transform(
                facility="N-MINE",
                process="beneficiation",
                reference="BEN-1",
                occurred_at=at(4),
                inputs=[("ORE-N-A", D("6000"))],
                outputs=[
                    OutputSpec(
                        "CON-N",
                        "concentrate",
                        D("500"),
                        {"Nd": D("0.47"), "Pr": D("0.11"), "Dy": D("0.005")},
                    )
                ],
            ),
        ),
        (
            north,
            c.TransferCustody(
                batch="CON-N", buyer="TRADER", contract="K-2", to_facility="T-WH", occurred_at=at(5)
            ),
        ),
        (
            trader,
            c.TransferCustody(
                batch="NORTH/CON-N",
                buyer="NORTH",
                contract="K-3",
                to_facility="N-SEP",
                occurred_at=at(6),
            ),
        ),
        (
            north,
            c.Transform(
                facility="N-SEP",
                process="separation",
                reference="SEP-1",
                quota="N-SQ",
                occurred_at=at(7),
                inputs=[("NORTH/CON-N", D("500")), ("SOUTH/ORE-S", D("100000"))],
                outputs=[
                    OutputSpec("NDPR-1", "oxide", D("320"), {"Nd": D("0.67"), "Pr": D("0.17")}),
                    OutputSpec("DY-1", "oxide", D("30"), {"Dy": D("0.87")}),
                ],
                untraced_inputs=[UntracedInput("hydrochloric acid", D("200"), {"Cl": D("0.97")})],
            ),
        ),
        (
            north,
            c.Merge(
                lot_code="OX-MIX",
                inputs=[("NDPR-1", D("300")), ("DY-1", D("20"))],
                occurred_at=at(8),
            ),
        ),
        (
            north,
            c.Split(
                batch="OX-MIX", parts=[("OX-A", D("100")), ("OX-B", D("200"))], occurred_at=at(9)
            ),
        ),
        (
            north,
            c.TransferCustody(
                batch="OX-A",
                buyer="TRADER",
                contract="K-4",
                to_facility="T-WH",
                price=D("8500.50"),
                currency="USD",
                occurred_at=at(10),
            ),
        ),
        (
            north,
            c.ExportShipment(
                batch="OX-B",
                shipment="BL-N-0001",
                licence="N-EX",
                consignee="AUTO",
                destination_country="DE",
                end_user="Auto GmbH",
                customs_code="2846.90",
                occurred_at=at(11),
            ),
        ),
        (
            auto,
            c.ReceiveShipment(
                batch="NORTH/OX-B", facility="A-PLANT", received_kg=D("199.5"), occurred_at=at(20)
            ),
        ),
        (regulator, c.Quarantine(batch="NORTH/OX-A", reason="document check", occurred_at=at(21))),
        (regulator, c.Release(batch="NORTH/OX-A", reason="documents in order", occurred_at=at(22))),
    ]
    for reporter, step in steps:
        ledger.execute(reporter, [step])  # one transaction per step, as its reporter sends it


@pytest.fixture
def chain_ledger(backend: Backend) -> Ledger:
    """The chain on the backend under test (SQLite file or PostgreSQL schema)."""
    ledger = backend.ledger(clock=lambda: NOW)
    record_chain(ledger)
    return ledger


def open_audit_stores(backend: Backend) -> tuple[EventRows, CheckpointStore]:
    """Positioned rows and checkpoints on the backend's "events" store, the one its
    ledgers use by default; open them once that ledger exists, close them after."""
    env = backend.ledger_env("events")
    if isinstance(backend, PostgresBackend):
        table = f"{env['POSTGRES_SCHEMA']}.lodestone_events"
        return PostgresEventRows(backend.url, table=table), PostgresCheckpointStore(backend.url)
    path = env["SQLITE_DBNAME"]
    return SQLiteEventRows(path), SQLiteCheckpointStore(path)
