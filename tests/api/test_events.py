"""Every event endpoint's happy path, through HTTP only: the answer, and its effect as
GET /v1/batches/{ACTOR}/{LOT} (and its upstream, downstream and provenance) shows it.

The chain: MINECO mines ore at MINE-1 (China) and beneficiates it into concentrate;
sells concentrate to Other Refining, which separates it into oxides; sells to Ningbo
Magnets; exports ore under EX-1 to Auto Motors GmbH, which receives it at AUTO-1."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from tests.api.conftest import (
    CONCENTRATE,
    ORE,
    VALID_FROM,
    VALID_UNTIL,
    World,
    beneficiation,
    concentrate_at_separation_plant,
    export,
    hold,
    ore,
    receipt,
    sale,
    separation,
)


@pytest.fixture
def world(fresh_world: World) -> World:
    """Each test gets its own copy of the registered world (own data, own runtime)."""
    return fresh_world


def shares(provenance: dict[str, Any], element: str) -> dict[tuple[str, str, str], Decimal]:
    """(mine, country, quota) -> share of the element, from a provenance answer."""
    return {
        (o["mine"], o["country"], o["quota"]): Decimal(o["share"])
        for o in provenance["elements"][element]["origins"]
    }


def node(lineage: dict[str, Any], batch: str) -> dict[str, Any]:
    return next(n for n in lineage["nodes"] if n["batch"] == batch)


# --- ore-extracted ------------------------------------------------------------------------


def test_ore_extraction_answers_the_new_batch_and_its_reo_content(world: World) -> None:
    answer = world.report("ore-extracted", ore("ORE-1", "10000"))

    # REO: Nd 300 kg * 1.1664 + Pr 100 * 1.2082 + Dy 20 * 1.1477 + Tb 5 * 1.1762
    assert {k: v for k, v in answer.items() if k != "batch_id"} == {
        "event": "OreExtracted",
        "lot_code": "ORE-1",
        "batch": "MINECO/ORE-1",
        "reo_kg": "499.575",
        "mass_kg": "10000",
    }


def test_extracted_ore_is_an_active_mined_batch_in_the_miners_custody(world: World) -> None:
    batch_id = world.report("ore-extracted", ore("ORE-1", "10000"))["batch_id"]

    state = world.get("/v1/batches/MINECO/ORE-1").json()

    assert state["id"] == batch_id
    assert (state["material"], state["status"]) == ("ore", "active")
    assert (state["initial_kg"], state["remaining_kg"]) == ("10000", "10000")
    assert {e: Decimal(s) for e, s in state["composition"].items()} == {
        e: Decimal(s) for e, s in ORE.items()
    }
    assert state["facility"]["code"] == "MINE-1"
    assert state["custodian"]["code"] == "MINECO"
    assert state["origin"] == {
        "kind": "mined",
        "facility": "MINE-1",
        "country": "CN",
        "quota": "MQ-1",
    }
    assert state["parents"] == []


def test_extraction_draws_its_reo_content_from_the_mining_quota(world: World) -> None:
    world.report("ore-extracted", ore("ORE-1", "10000"))

    quota = world.get("/v1/licences/MQ-1").json()

    assert (Decimal(quota["drawn_kg"]), Decimal(quota["remaining_kg"]), quota["draws"]) == (
        Decimal("499.575"),
        Decimal("99500.425"),
        1,
    )


def test_extraction_reported_by_an_admin_for_a_named_actor_is_that_actors_batch(
    world: World,
) -> None:
    answer = world.report("ore-extracted", ore("ORE-A", "500", actor="MINECO"), "admin")

    assert answer["batch"] == "MINECO/ORE-A"
    assert world.get("/v1/batches/MINECO/ORE-A").json()["custodian"]["code"] == "MINECO"


def test_a_batch_can_be_found_by_its_id(world: World) -> None:
    batch_id = world.report("ore-extracted", ore("ORE-1", "10000"))["batch_id"]

    found = world.get(f"/v1/batches?id={batch_id}").json()

    assert found["batch"] == "MINECO/ORE-1"


# --- scrap-collected ----------------------------------------------------------------------


def test_collected_scrap_is_a_recycled_origin_of_its_own(world: World) -> None:
    magnet_swarf = {
        "Nd": "0.22",
        "Pr": "0.07",
        "Dy": "0.03",
        "Tb": "0.01",
        "Fe": "0.64",
        "B": "0.01",
    }

    answer = world.report(
        "scrap-collected",
        {
            "facility": "SEP-1",
            "lot_code": "SCRAP-1",
            "mass_kg": "1200",
            "composition": magnet_swarf,
            "source": "end-of-life EV traction motors",
        },
    )
    state = world.get("/v1/batches/MINECO/SCRAP-1").json()

    assert (answer["event"], answer["batch"], answer["mass_kg"]) == (
        "ScrapCollected",
        "MINECO/SCRAP-1",
        "1200",
    )
    assert (state["material"], state["facility"]["code"]) == ("scrap", "SEP-1")
    assert state["origin"] == {
        "kind": "recycled",
        "facility": "SEP-1",
        "country": "CN",
        "quota": None,
    }


# --- batch-transformed --------------------------------------------------------------------


def test_beneficiation_answers_its_outputs(world: World) -> None:
    world.extract("ORE-1", "10000")

    answer = world.report("batch-transformed", beneficiation())

    assert answer["event"] == "BatchTransformed"
    assert answer["outputs"] == ["MINECO/CON-1"]
    assert answer["output_ids"] == [world.get("/v1/batches/MINECO/CON-1").json()["id"]]


def test_beneficiation_makes_a_concentrate_whose_parent_is_the_ore(world: World) -> None:
    world.extract("ORE-1", "10000")
    world.report("batch-transformed", beneficiation())

    state = world.get("/v1/batches/MINECO/CON-1").json()

    assert (state["material"], state["initial_kg"], state["status"]) == (
        "concentrate",
        "800",
        "active",
    )
    assert {e: Decimal(s) for e, s in state["composition"].items()} == {
        e: Decimal(s) for e, s in CONCENTRATE.items()
    }
    assert [(p["batch"], p["kg"]) for p in state["parents"]] == [("MINECO/ORE-1", "10000")]


def test_an_input_taken_whole_is_consumed(world: World) -> None:
    world.extract("ORE-1", "10000")
    world.report("batch-transformed", beneficiation(take="10000"))

    state = world.get("/v1/batches/MINECO/ORE-1").json()

    assert (state["status"], state["remaining_kg"]) == ("consumed", "0")


def test_an_input_taken_in_part_keeps_the_rest_active(world: World) -> None:
    world.extract("ORE-1", "10000")
    world.report("batch-transformed", beneficiation(take="4000", kg="320"))

    state = world.get("/v1/batches/MINECO/ORE-1").json()

    assert (state["status"], state["remaining_kg"]) == ("active", "6000")


def test_upstream_of_a_concentrate_reaches_its_mine(world: World) -> None:
    world.extract("ORE-1", "10000")
    world.report("batch-transformed", beneficiation())

    upstream = world.get("/v1/batches/MINECO/CON-1/upstream").json()

    assert upstream["summary"] == {"batches": 1, "edges": 1, "origins": 1}
    assert node(upstream, "MINECO/ORE-1")["origin"] == {
        "kind": "mined",
        "facility": "MINE-1",
        "quota": "MQ-1",
        "country": "CN",
    }
    [edge] = upstream["edges"]
    assert (edge["kg"], edge["operation"]) == ("10000", "beneficiation")
    assert (edge["from"], edge["to"]) == (
        node(upstream, "MINECO/ORE-1")["id"],
        node(upstream, "MINECO/CON-1")["id"],
    )


def test_separation_makes_one_oxide_per_element_group(world: World) -> None:
    concentrate_at_separation_plant(world)

    answer = world.report("batch-transformed", separation())

    assert answer["outputs"] == ["MINECO/NDPR-OX", "MINECO/DY-OX", "MINECO/TB-OX"]
    dysprosium = world.get("/v1/batches/MINECO/DY-OX").json()
    assert (dysprosium["material"], dysprosium["facility"]["code"]) == ("oxide", "SEP-1")
    assert [(p["batch"], p["kg"]) for p in dysprosium["parents"]] == [("MINECO/CON-1", "800")]


def test_separation_draws_the_reo_of_its_oxides_from_the_separation_quota(world: World) -> None:
    concentrate_at_separation_plant(world)

    world.report("batch-transformed", separation())

    # NdPr 280.5 kg Nd * 1.1664 + 93.5 kg Pr * 1.2082; Dy 18.92 * 1.1477; Tb 4.675 * 1.1762
    quota = world.get("/v1/licences/SQ-1").json()
    assert (quota["drawn_kg"], quota["draws"]) == ("467.355119", 1)


def test_oxides_trace_upstream_through_the_move_to_the_mine(world: World) -> None:
    concentrate_at_separation_plant(world)
    world.report("batch-transformed", separation())

    upstream = world.get("/v1/batches/MINECO/TB-OX/upstream").json()

    assert sorted(n["batch"] for n in upstream["nodes"]) == [
        "MINECO/CON-1",
        "MINECO/ORE-1",
        "MINECO/TB-OX",
    ]
    assert upstream["summary"]["origins"] == 1


# --- batch-split --------------------------------------------------------------------------


def test_split_answers_its_parts_and_what_stays_with_the_parent(world: World) -> None:
    world.extract("ORE-1", "10000")

    answer = world.report(
        "batch-split",
        {
            "batch": "ORE-1",
            "parts": [
                {"lot_code": "ORE-1A", "mass_kg": "3000"},
                {"lot_code": "ORE-1B", "mass_kg": "2000"},
            ],
        },
    )

    assert answer["event"] == "BatchSplit"
    assert answer["parts"] == ["MINECO/ORE-1A", "MINECO/ORE-1B"]
    assert answer["remaining_kg"] == "5000"


def test_split_off_part_is_the_same_material_with_the_parent_as_its_parent(world: World) -> None:
    world.extract("ORE-1", "10000")
    world.report(
        "batch-split", {"batch": "ORE-1", "parts": [{"lot_code": "ORE-1A", "mass_kg": "3000"}]}
    )

    part = world.get("/v1/batches/MINECO/ORE-1A").json()
    parent = world.get("/v1/batches/MINECO/ORE-1").json()

    assert (part["material"], part["initial_kg"], part["facility"]["code"]) == (
        "ore",
        "3000",
        "MINE-1",
    )
    assert part["composition"] == parent["composition"]
    assert [(p["batch"], p["kg"]) for p in part["parents"]] == [("MINECO/ORE-1", "3000")]
    assert (parent["remaining_kg"], parent["status"]) == ("7000", "active")


def test_split_off_part_keeps_the_provenance_of_its_parent(world: World) -> None:
    world.extract("ORE-1", "10000")
    world.report(
        "batch-split", {"batch": "ORE-1", "parts": [{"lot_code": "ORE-1A", "mass_kg": "3000"}]}
    )

    provenance = world.get("/v1/batches/MINECO/ORE-1A/provenance").json()

    assert shares(provenance, "Dy") == {("MINE-1", "CN", "MQ-1"): Decimal(1)}
    assert Decimal(provenance["elements"]["Dy"]["kg"]) == Decimal("6")  # 3000 kg * 0.002


# --- batches-merged -----------------------------------------------------------------------


def test_merge_answers_the_merged_batch_and_its_mass(world: World) -> None:
    world.extract("ORE-1", "10000")
    world.extract("ORE-2", "5000")

    answer = world.report(
        "batches-merged",
        {
            "lot_code": "BLEND-1",
            "inputs": [
                {"batch": "ORE-1", "mass_kg": "10000"},
                {"batch": "ORE-2", "mass_kg": "2000"},
            ],
        },
    )

    assert (answer["event"], answer["batch"], answer["mass_kg"]) == (
        "BatchesMerged",
        "MINECO/BLEND-1",
        "12000",
    )


def test_merged_batch_has_the_mass_weighted_composition_of_its_inputs(world: World) -> None:
    world.extract("ORE-1", "10000")
    world.extract("ORE-2", "10000", composition={"Nd": "0.010", "Dy": "0.004"})

    world.report(
        "batches-merged",
        {
            "lot_code": "BLEND-1",
            "inputs": [
                {"batch": "ORE-1", "mass_kg": "10000"},
                {"batch": "ORE-2", "mass_kg": "10000"},
            ],
        },
    )
    state = world.get("/v1/batches/MINECO/BLEND-1").json()

    composition = {e: Decimal(s) for e, s in state["composition"].items()}
    assert composition["Nd"] == Decimal("0.020")  # (300 + 100) kg / 20,000 kg
    assert composition["Dy"] == Decimal("0.003")  # (20 + 40) kg / 20,000 kg
    assert composition["Pr"] == Decimal("0.005")  # only ORE-1 carried Pr
    assert sorted(p["batch"] for p in state["parents"]) == ["MINECO/ORE-1", "MINECO/ORE-2"]


def test_merged_inputs_are_drawn_down(world: World) -> None:
    world.extract("ORE-1", "10000")
    world.extract("ORE-2", "5000")

    world.report(
        "batches-merged",
        {
            "lot_code": "BLEND-1",
            "inputs": [
                {"batch": "ORE-1", "mass_kg": "10000"},
                {"batch": "ORE-2", "mass_kg": "2000"},
            ],
        },
    )

    assert world.get("/v1/batches/MINECO/ORE-1").json()["status"] == "consumed"
    assert world.get("/v1/batches/MINECO/ORE-2").json()["remaining_kg"] == "3000"


def _ores_of_two_countries_merged_at_the_refinery(world: World) -> None:
    """ORE-1 from MINE-1 (China, MQ-1) and CLAY-1 from a Myanmar mine (MQ-MM), both
    sold to Other Refining at OTH-1, which merges them whole into BLEND-1."""
    world.register(
        "/v1/actors",
        {"code": "KACHINCO", "name": "Kachin Clay", "country": "MM", "roles": ["miner"]},
    )
    world.register(
        "/v1/facilities",
        {
            "code": "MINE-MM",
            "name": "Pangwa pit",
            "kind": "mine",
            "owner": "KACHINCO",
            "country": "MM",
        },
    )
    world.register(
        "/v1/licences",
        {
            "number": "MQ-MM",
            "kind": "mining_quota",
            "holder": "KACHINCO",
            "max_kg": "10000",
            "valid_from": VALID_FROM,
            "valid_until": VALID_UNTIL,
        },
    )
    world.extract("ORE-1", "10000")  # Nd 300 kg, Pr 100, Dy 20, Tb 5
    clay = {
        "Nd": "0.002",
        "Pr": "0.0025",
        "Dy": "0.0012",
        "Tb": "0.0005",
    }  # Nd 20, Pr 25, Dy 12, Tb 5
    world.report(
        "ore-extracted",
        {
            "actor": "KACHINCO",
            "facility": "MINE-MM",
            "quota": "MQ-MM",
            "lot_code": "CLAY-1",
            "mass_kg": "10000",
            "composition": clay,
        },
        "admin",
    )
    world.report("custody-transferred", sale("ORE-1", "OTHER", to_facility="OTH-1"))
    world.report(
        "custody-transferred",
        sale("KACHINCO/CLAY-1", "OTHER", to_facility="OTH-1", actor="KACHINCO"),
        "admin",
    )
    world.report(
        "batches-merged",
        {
            "lot_code": "BLEND-1",
            "inputs": [
                {"batch": "MINECO/ORE-1", "mass_kg": "10000"},
                {"batch": "KACHINCO/CLAY-1", "mass_kg": "10000"},
            ],
        },
        "other",
    )


@pytest.mark.parametrize(
    ("element", "chinese", "myanmar"),
    [
        ("Nd", "0.9375", "0.0625"),
        ("Pr", "0.8", "0.2"),
        ("Dy", "0.625", "0.375"),
        ("Tb", "0.5", "0.5"),
    ],
)
def test_provenance_of_a_merge_gives_each_mines_share_per_element(
    world: World, element: str, chinese: str, myanmar: str
) -> None:
    _ores_of_two_countries_merged_at_the_refinery(world)

    provenance = world.get("/v1/batches/OTHER/BLEND-1/provenance", "other").json()

    assert shares(provenance, element) == {
        ("MINE-1", "CN", "MQ-1"): Decimal(chinese),
        ("MINE-MM", "MM", "MQ-MM"): Decimal(myanmar),
    }


def test_provenance_of_a_merge_gives_each_mines_mass_of_the_element(world: World) -> None:
    _ores_of_two_countries_merged_at_the_refinery(world)

    provenance = world.get("/v1/batches/OTHER/BLEND-1/provenance", "other").json()

    dysprosium = provenance["elements"]["Dy"]
    assert Decimal(dysprosium["kg"]) == Decimal(32)
    assert {o["mine"]: Decimal(o["kg"]) for o in dysprosium["origins"]} == {
        "MINE-1": Decimal(20),
        "MINE-MM": Decimal(12),
    }


def test_provenance_of_a_merge_sums_shares_by_country(world: World) -> None:
    _ores_of_two_countries_merged_at_the_refinery(world)

    provenance = world.get("/v1/batches/OTHER/BLEND-1/provenance", "other").json()

    assert {c: Decimal(s) for c, s in provenance["by_country"]["Dy"].items()} == {
        "CN": Decimal("0.625"),
        "MM": Decimal("0.375"),
    }
    assert provenance["basis_kg"] == "20000"


# --- batch-moved --------------------------------------------------------------------------


def test_move_answers_the_batch_and_where_it_went(world: World) -> None:
    world.extract("ORE-1", "10000")
    world.report("batch-transformed", beneficiation())

    answer = world.report("batch-moved", {"batch": "CON-1", "to_facility": "SEP-1"})

    assert (answer["event"], answer["batch"], answer["to_facility"]) == (
        "BatchMoved",
        "MINECO/CON-1",
        "SEP-1",
    )


def test_moved_batch_is_at_the_new_facility_in_the_same_custody(world: World) -> None:
    world.extract("ORE-1", "10000")
    world.report("batch-transformed", beneficiation())

    world.report("batch-moved", {"batch": "CON-1", "to_facility": "SEP-1"})
    state = world.get("/v1/batches/MINECO/CON-1").json()

    assert (state["facility"]["code"], state["custodian"]["code"]) == ("SEP-1", "MINECO")
    assert (state["status"], state["remaining_kg"]) == ("active", "800")


def test_move_is_not_a_trade(world: World) -> None:
    world.extract("ORE-1", "10000")

    world.report("batch-moved", {"batch": "ORE-1", "to_facility": "SEP-1"})
    downstream = world.get("/v1/batches/MINECO/ORE-1/downstream").json()

    assert "trades" not in node(downstream, "MINECO/ORE-1")
    assert node(downstream, "MINECO/ORE-1")["facility"]["code"] == "SEP-1"


# --- custody-transferred ------------------------------------------------------------------


def test_sale_answers_the_buyer_and_the_volume(world: World) -> None:
    world.extract("ORE-1", "10000")

    answer = world.report("custody-transferred", sale("ORE-1", "MAGCO", to_facility="MAG-1"))

    assert (answer["event"], answer["batch"], answer["buyer"], answer["volume_kg"]) == (
        "CustodyTransferred",
        "MINECO/ORE-1",
        "MAGCO",
        "10000",
    )


def test_sale_moves_custody_and_place_to_the_buyer(world: World) -> None:
    world.extract("ORE-1", "10000")

    world.report("custody-transferred", sale("ORE-1", "MAGCO", to_facility="MAG-1"))
    state = world.get("/v1/batches/MINECO/ORE-1", "magnets").json()

    assert (state["custodian"]["code"], state["facility"]["code"]) == ("MAGCO", "MAG-1")
    assert state["status"] == "active"


def test_sale_without_a_destination_leaves_the_goods_where_they_are(world: World) -> None:
    world.extract("ORE-1", "10000")

    world.report("custody-transferred", sale("ORE-1", "MAGCO"))
    state = world.get("/v1/batches/MINECO/ORE-1", "magnets").json()

    assert (state["custodian"]["code"], state["facility"]["code"]) == ("MAGCO", "MINE-1")


def test_buyer_may_split_what_it_bought(world: World) -> None:
    world.extract("ORE-1", "10000")
    world.report("custody-transferred", sale("ORE-1", "MAGCO", to_facility="MAG-1"))

    answer = world.report(
        "batch-split",
        {"batch": "MINECO/ORE-1", "parts": [{"lot_code": "M-LOT-1", "mass_kg": "2500"}]},
        "magnets",
    )

    assert answer["parts"] == ["MAGCO/M-LOT-1"]
    assert world.get("/v1/batches/MAGCO/M-LOT-1", "magnets").json()["facility"]["code"] == "MAG-1"


def test_sale_shows_downstream_with_its_parties_contract_and_price(world: World) -> None:
    world.extract("ORE-1", "10000")
    world.report(
        "custody-transferred",
        sale("ORE-1", "MAGCO", to_facility="MAG-1", price="61500.50", currency="usd"),
    )

    downstream = world.get("/v1/batches/MINECO/ORE-1/downstream").json()

    [trade] = node(downstream, "MINECO/ORE-1")["trades"]
    assert (trade["kind"], trade["kg"]) == ("sale", "10000")
    assert (trade["from"]["code"], trade["to"]["code"]) == ("MINECO", "MAGCO")
    assert (trade["contract"], Decimal(trade["price"]), trade["currency"]) == (
        "C-2026-077",
        Decimal("61500.50"),
        "USD",
    )
    assert downstream["summary"]["end_holders"] == ["MAGCO"]


def test_downstream_of_an_ore_reaches_the_oxides_made_from_it(world: World) -> None:
    concentrate_at_separation_plant(world)
    world.report("batch-transformed", separation())

    downstream = world.get("/v1/batches/MINECO/ORE-1/downstream").json()

    assert sorted(n["batch"] for n in downstream["nodes"]) == [
        "MINECO/CON-1",
        "MINECO/DY-OX",
        "MINECO/NDPR-OX",
        "MINECO/ORE-1",
        "MINECO/TB-OX",
    ]
    assert downstream["summary"]["batches"] == 4


def test_oxide_sold_to_the_magnet_maker_arrives_at_its_plant(world: World) -> None:
    concentrate_at_separation_plant(world)
    world.report("batch-transformed", separation())

    world.report("custody-transferred", sale("NDPR-OX", "MAGCO", to_facility="MAG-1"))
    state = world.get("/v1/batches/MINECO/NDPR-OX", "magnets").json()

    assert (state["custodian"]["code"], state["facility"]["code"]) == ("MAGCO", "MAG-1")


# --- shipment-exported --------------------------------------------------------------------


def test_export_answers_the_licence_and_what_remains_of_it(world: World) -> None:
    world.extract("ORE-1", "10000")

    answer = world.report("shipment-exported", export("ORE-1"))

    assert (answer["event"], answer["batch"], answer["licence"], answer["kg"]) == (
        "ShipmentExported",
        "MINECO/ORE-1",
        "EX-1",
        "10000",
    )
    assert answer["licence_remaining_kg"] == "40000"


def test_exported_batch_is_in_transit_to_the_consignee(world: World) -> None:
    world.extract("ORE-1", "10000")

    world.report("shipment-exported", export("ORE-1"))
    state = world.get("/v1/batches/MINECO/ORE-1").json()

    assert state["status"] == "in_transit"
    assert state["export"] == {
        "licence": "EX-1",
        "destination_country": "DE",
        "consignee": "AUTOCO",
        "kg": "10000",
        "shipment": "BL-2026-0001",
        "controlled": True,
    }
    assert state["custodian"]["code"] == "MINECO"


def test_export_draws_the_licence_down(world: World) -> None:
    world.extract("ORE-1", "10000")

    world.report("shipment-exported", export("ORE-1"))
    licence = world.get("/v1/licences/EX-1").json()

    assert (licence["drawn_kg"], licence["remaining_kg"], licence["draws"]) == ("10000", "40000", 1)


def test_oxide_export_under_the_oxide_item_of_the_licence(world: World) -> None:
    concentrate_at_separation_plant(world)
    world.report("batch-transformed", separation())

    answer = world.report("shipment-exported", export("DY-OX", customs_code="2846.90"))

    assert (answer["batch"], answer["kg"]) == ("MINECO/DY-OX", "22")


# --- shipment-received --------------------------------------------------------------------


def test_receipt_answers_the_mass_received(world: World) -> None:
    world.extract("ORE-1", "10000")
    world.report("shipment-exported", export("ORE-1"))

    answer = world.report("shipment-received", receipt("MINECO/ORE-1"), "auto")

    assert (answer["event"], answer["batch"], answer["received_kg"]) == (
        "ShipmentReceived",
        "MINECO/ORE-1",
        "10000",
    )


def test_receipt_hands_custody_to_the_consignee_at_its_plant(world: World) -> None:
    world.extract("ORE-1", "10000")
    world.report("shipment-exported", export("ORE-1"))

    world.report("shipment-received", receipt("MINECO/ORE-1"), "auto")
    state = world.get("/v1/batches/MINECO/ORE-1", "auto").json()

    assert state["status"] == "active"
    assert (state["custodian"]["code"], state["facility"]["code"]) == ("AUTOCO", "AUTO-1")
    assert (state["facility"]["country"], "export" in state) == ("DE", False)


def test_receipt_with_a_shortfall_records_the_mass_measured_on_arrival(world: World) -> None:
    world.extract("ORE-1", "10000")
    world.report("shipment-exported", export("ORE-1"))

    world.report("shipment-received", receipt("MINECO/ORE-1", received_kg="9985.25"), "auto")
    state = world.get("/v1/batches/MINECO/ORE-1", "auto").json()

    assert (state["initial_kg"], state["remaining_kg"]) == ("10000", "9985.25")


def test_downstream_of_an_exported_ore_reaches_the_end_client(world: World) -> None:
    world.extract("ORE-1", "10000")
    world.report("shipment-exported", export("ORE-1"))
    world.report("shipment-received", receipt("MINECO/ORE-1"), "auto")

    downstream = world.get("/v1/batches/MINECO/ORE-1/downstream").json()

    trades = node(downstream, "MINECO/ORE-1")["trades"]
    assert [(t["kind"], t["destination_country"]) for t in trades] == [
        ("export", "DE"),
        ("receipt", None),
    ]
    assert (trades[0]["from"]["code"], trades[0]["to"]["code"]) == ("MINECO", "AUTOCO")
    assert downstream["summary"]["end_holders"] == ["AUTOCO"]


# --- batch-quarantined and batch-released -------------------------------------------------


def test_quarantine_answers_the_held_batch(world: World) -> None:
    world.extract("ORE-1", "10000")

    answer = world.report("batch-quarantined", hold("ORE-1", "radioactivity above limit"))

    assert (answer["event"], answer["batch"]) == ("BatchQuarantined", "MINECO/ORE-1")


def test_custodians_quarantine_holds_the_batch_with_its_reason(world: World) -> None:
    world.extract("ORE-1", "10000")

    world.report("batch-quarantined", hold("ORE-1", "radioactivity above limit"))
    state = world.get("/v1/batches/MINECO/ORE-1").json()

    assert state["status"] == "quarantined"
    assert state["quarantine"] == {"reason": "radioactivity above limit", "by_role": "operator"}


def test_regulators_quarantine_is_recorded_as_the_regulators(world: World) -> None:
    world.extract("ORE-1", "10000")

    world.report("batch-quarantined", hold("MINECO/ORE-1", "suspected illegal mining"), "regulator")
    state = world.get("/v1/batches/MINECO/ORE-1").json()

    assert state["quarantine"]["by_role"] == "regulator"


def test_quarantine_shows_in_the_genealogy(world: World) -> None:
    world.extract("ORE-1", "10000")
    world.report("batch-transformed", beneficiation(take="5000", kg="400"))

    world.report("batch-quarantined", hold("ORE-1"))
    downstream = world.get("/v1/batches/MINECO/ORE-1/downstream").json()

    assert node(downstream, "MINECO/ORE-1")["status"] == "quarantined"


def test_release_answers_the_released_batch(world: World) -> None:
    world.extract("ORE-1", "10000")
    world.report("batch-quarantined", hold("ORE-1"))

    answer = world.report("batch-released", hold("ORE-1", "second assay within spec"))

    assert (answer["event"], answer["batch"]) == ("BatchReleased", "MINECO/ORE-1")


def test_release_lifts_the_hold(world: World) -> None:
    world.extract("ORE-1", "10000")
    world.report("batch-quarantined", hold("ORE-1"))

    world.report("batch-released", hold("ORE-1", "second assay within spec"))
    state = world.get("/v1/batches/MINECO/ORE-1").json()

    assert (state["status"], "quarantine" in state) == ("active", False)


def test_release_restores_the_status_the_batch_had_before_the_hold(world: World) -> None:
    world.extract("ORE-1", "10000")
    world.report("shipment-exported", export("ORE-1"))
    world.report("batch-quarantined", hold("MINECO/ORE-1", "customs inspection"), "regulator")

    world.report("batch-released", hold("MINECO/ORE-1", "inspection passed"), "regulator")
    state = world.get("/v1/batches/MINECO/ORE-1").json()

    assert state["status"] == "in_transit"


def test_released_batch_may_be_processed_again(world: World) -> None:
    world.extract("ORE-1", "10000")
    world.report("batch-quarantined", hold("ORE-1"))
    world.report("batch-released", hold("ORE-1", "second assay within spec"))

    answer = world.report("batch-transformed", beneficiation())

    assert answer["outputs"] == ["MINECO/CON-1"]


# --- bulk ---------------------------------------------------------------------------------


def _bulk(*events: dict[str, Any]) -> dict[str, Any]:
    return {"events": list(events)}


ORE_7 = {"type": "OreExtracted", **ore("ORE-7", "5000")}
SPLIT_7 = {
    "type": "BatchSplit",
    "batch": "ORE-7",
    "parts": [{"lot_code": "ORE-7A", "mass_kg": "2000"}],
}
BENEFICIATE_7A = {
    "type": "BatchTransformed",
    **beneficiation("ORE-7A", "2000", "CON-7", "160", reference="WO-7"),
}


def test_bulk_answers_each_event_in_order(world: World) -> None:
    answer = world.report("bulk", _bulk(ORE_7, SPLIT_7, BENEFICIATE_7A))

    results = answer["results"]
    assert [r["event"] for r in results] == ["OreExtracted", "BatchSplit", "BatchTransformed"]
    assert (results[0]["batch"], results[1]["parts"], results[2]["outputs"]) == (
        "MINECO/ORE-7",
        ["MINECO/ORE-7A"],
        ["MINECO/CON-7"],
    )


def test_bulk_events_may_use_batches_made_earlier_in_the_same_bulk(world: World) -> None:
    world.report("bulk", _bulk(ORE_7, SPLIT_7, BENEFICIATE_7A))

    upstream = world.get("/v1/batches/MINECO/CON-7/upstream").json()

    assert sorted(n["batch"] for n in upstream["nodes"]) == [
        "MINECO/CON-7",
        "MINECO/ORE-7",
        "MINECO/ORE-7A",
    ]
    assert world.get("/v1/batches/MINECO/ORE-7").json()["remaining_kg"] == "3000"
    assert world.get("/v1/batches/MINECO/ORE-7A").json()["status"] == "consumed"


def test_bulk_refused_in_its_last_event_stores_nothing(world: World) -> None:
    before = world.recorded()
    overdrawn = {**BENEFICIATE_7A, "inputs": [{"batch": "ORE-7A", "mass_kg": "2000.5"}]}

    response = world.event("bulk", _bulk(ORE_7, SPLIT_7, overdrawn))

    assert response.status_code == 422, response.text
    assert world.recorded() == before
    assert world.get("/v1/batches/MINECO/ORE-7").status_code == 404
    assert world.get("/v1/licences/MQ-1").json()["drawn_kg"] == "0"


def test_bulk_refusal_names_the_event_and_the_field(world: World) -> None:
    overdrawn = {**BENEFICIATE_7A, "inputs": [{"batch": "ORE-7A", "mass_kg": "2000.5"}]}

    problem = world.event("bulk", _bulk(ORE_7, SPLIT_7, overdrawn)).json()

    assert (problem["field"], problem["rule"]) == ("events[2].inputs[0].mass_kg", "mass-available")


def test_refused_bulk_leaves_the_batches_it_touched_as_they_were(world: World) -> None:
    world.extract("ORE-1", "10000")
    split_1 = {
        "type": "BatchSplit",
        "batch": "ORE-1",
        "parts": [{"lot_code": "ORE-1A", "mass_kg": "4000"}],
    }
    reused_lot = {"type": "OreExtracted", **ore("ORE-1A", "100")}

    response = world.event("bulk", _bulk(split_1, reused_lot))

    assert response.status_code == 409, response.text
    assert world.get("/v1/batches/MINECO/ORE-1").json()["remaining_kg"] == "10000"
    assert world.get("/v1/batches/MINECO/ORE-1A").status_code == 404
