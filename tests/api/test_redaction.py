"""Lot references and facilities name companies: beyond the parties, auditors,
regulators and admins they are hidden, while material, masses, countries and mine
origins stay visible."""

from __future__ import annotations

from tests.api.conftest import World, beneficiation, ore, sale


def _sold_concentrate(world: World) -> None:
    world.report("ore-extracted", ore())
    world.report("batch-transformed", beneficiation())
    world.report("custody-transferred", sale("CON-1", "MAGCO", to_facility="MAG-1"))


def test_analyst_sees_neither_the_facility_nor_the_supplier_lots_of_a_batch(world: World) -> None:
    _sold_concentrate(world)

    state = world.get("/v1/batches/MINECO/CON-1", "analyst").json()

    assert state["facility"] == {"kind": "magnet_plant", "country": "CN", "redacted": True}
    assert [p["batch"] for p in state["parents"]] == [None]
    assert state["remaining_kg"] == "800"


def test_buyer_sees_the_facility_and_the_supplier_lots_of_what_it_bought(world: World) -> None:
    _sold_concentrate(world)

    state = world.get("/v1/batches/MINECO/CON-1", "magnets").json()

    assert state["facility"]["code"] == "MAG-1"
    assert [p["batch"] for p in state["parents"]] == ["MINECO/ORE-1"]


def test_upstream_hides_lot_references_of_other_companies_from_an_analyst(world: World) -> None:
    _sold_concentrate(world)

    nodes = world.get("/v1/batches/MINECO/CON-1/upstream", "analyst").json()["nodes"]

    ancestor = next(n for n in nodes if n["material"] == "ore")
    assert ancestor["batch"] is None
    assert ancestor["custodian"] == {"redacted": True}
    assert ancestor["origin"]["facility"] == "MINE-1"  # the mine is provenance, not a client


def test_upstream_shows_every_lot_reference_to_an_auditor(world: World) -> None:
    _sold_concentrate(world)

    nodes = world.get("/v1/batches/MINECO/CON-1/upstream", "auditor").json()["nodes"]

    assert sorted(n["batch"] for n in nodes) == ["MINECO/CON-1", "MINECO/ORE-1"]


def test_buyer_does_not_see_the_lot_of_its_suppliers_supplier(world: World) -> None:
    world.report("ore-extracted", ore())
    world.report("custody-transferred", sale("ORE-1", "MAGCO", to_facility="MAG-1"))
    world.report(
        "batch-split",
        {"batch": "MINECO/ORE-1", "parts": [{"lot_code": "ORE-1A", "mass_kg": "3000"}]},
        "magnets",
    )
    world.report(
        "custody-transferred", sale("MAGCO/ORE-1A", "OTHER", to_facility="OTH-1"), "magnets"
    )

    mine = world.get("/v1/batches/MAGCO/ORE-1A", "other").json()
    seller = world.get("/v1/batches/MAGCO/ORE-1A", "magnets").json()

    # OTHER bought from MAGCO; that MAGCO bought from MINECO is their business: the
    # parent's reference (which names MINECO) is hidden from OTHER, shown to MAGCO.
    assert [p["batch"] for p in mine["parents"]] == [None]
    assert [p["batch"] for p in seller["parents"]] == ["MINECO/ORE-1"]
