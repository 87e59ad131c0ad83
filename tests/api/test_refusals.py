"""Refusals through HTTP: for every event type, the status, the problem's ``field`` and
``rule``, an ``application/problem+json`` answer, and nothing stored.

422: an invalid value, a broken business rule, or a body naming something that does not
exist. 403: custody, ownership or role. 409: a conflict (reused code; a consumed,
in-transit or quarantined batch). 404: an unknown batch in a GET path."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.conftest import (
    PROBLEM,
    VALID_FROM,
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


def refusal(
    world: World, kind: str, body: dict[str, Any], who: str = "mine", **headers: str
) -> tuple[int, str | None, str]:
    """Report an event that must be refused (problem+json, nothing stored): its status,
    and the field and rule its problem names."""
    response = world.refused(f"/v1/events/{kind}", body, who, **headers)
    problem = response.json()
    assert problem["status"] == response.status_code
    assert problem["type"] == f"urn:lodestone:problem:{problem['rule']}"
    return response.status_code, problem.get("field"), problem["rule"]


def register_actor(world: World, code: str, country: str) -> None:
    world.register(
        "/v1/actors",
        {"code": code, "name": f"{code} GmbH", "country": country, "roles": ["end_client"]},
    )


# --- ore-extracted ------------------------------------------------------------------------


def test_extraction_beyond_the_mining_quota_is_refused(world: World) -> None:
    # 2,100 t of 5 % REO ore is about 104.9 t REO; MQ-1 allows 100 t.
    assert refusal(world, "ore-extracted", ore(kg="2100000")) == (422, "quota", "licence-remaining")


def test_extraction_at_a_plant_that_is_not_a_mine_is_refused(world: World) -> None:
    assert refusal(world, "ore-extracted", ore(facility="SEP-1")) == (
        422,
        "facility",
        "facility-kind",
    )


def test_extraction_at_another_actors_mine_is_refused(world: World) -> None:
    assert refusal(world, "ore-extracted", ore(), "magnets") == (403, "facility", "facility-owner")


def test_extraction_under_a_reused_lot_code_is_refused(world: World) -> None:
    world.extract("ORE-1")

    assert refusal(world, "ore-extracted", ore("ORE-1")) == (409, "lot_code", "unique")


def test_extraction_under_an_unknown_quota_is_refused(world: World) -> None:
    assert refusal(world, "ore-extracted", ore(quota="MQ-404")) == (422, "quota", "exists")


def test_extraction_under_an_export_licence_is_refused(world: World) -> None:
    assert refusal(world, "ore-extracted", ore(quota="EX-1")) == (422, "quota", "licence-kind")


def test_extraction_dated_outside_the_quotas_validity_is_refused(world: World) -> None:
    body = ore(occurred_at="2025-06-01T08:00:00Z")

    assert refusal(world, "ore-extracted", body) == (422, "quota", "licence-validity")


def test_extraction_dated_in_the_future_is_refused(world: World) -> None:
    body = ore(occurred_at="2099-01-01T00:00:00Z")

    assert refusal(world, "ore-extracted", body) == (422, "occurred_at", "not-in-future")


def test_ore_declaring_no_rare_earths_is_refused(world: World) -> None:
    body = ore(composition={"Fe": "0.30", "Si": "0.20"})

    assert refusal(world, "ore-extracted", body) == (422, "composition", "rare-earth-content")


def test_composition_naming_an_unknown_element_is_refused(world: World) -> None:
    body = ore(composition={"Nd": "0.03", "Xx": "0.01"})

    assert refusal(world, "ore-extracted", body) == (422, "composition.Xx", "element-symbol")


def test_composition_summing_to_more_than_one_is_refused_with_a_422_problem(world: World) -> None:
    body = ore(composition={"Nd": "0.6", "Fe": "0.5"})

    assert refusal(world, "ore-extracted", body) == (422, "composition", "composition-sum")


def test_zero_mass_is_refused_with_a_422_problem(world: World) -> None:
    assert refusal(world, "ore-extracted", ore(kg="0")) == (422, "mass_kg", "mass-positive")


# --- scrap-collected ----------------------------------------------------------------------


def _scrap(**extra: Any) -> dict[str, Any]:
    body = {
        "facility": "SEP-1",
        "lot_code": "SCRAP-1",
        "mass_kg": "1200",
        "composition": {"Nd": "0.22", "Dy": "0.03", "Fe": "0.65"},
        "source": "magnet swarf from MAG-1",
    }
    return body | extra


def test_scrap_without_a_source_is_refused(world: World) -> None:
    assert refusal(world, "scrap-collected", _scrap(source="   ")) == (422, "source", "required")


def test_scrap_collected_at_a_mine_is_refused(world: World) -> None:
    body = _scrap(facility="MINE-1")

    assert refusal(world, "scrap-collected", body) == (422, "facility", "facility-kind")


def test_scrap_collected_at_another_actors_plant_is_refused(world: World) -> None:
    body = _scrap(facility="OTH-1")

    assert refusal(world, "scrap-collected", body) == (403, "facility", "facility-owner")


# --- batch-transformed --------------------------------------------------------------------


def test_outputs_carrying_more_of_an_element_than_the_inputs_are_refused(world: World) -> None:
    world.extract("ORE-1", "10000")  # 300 kg Nd
    body = beneficiation()
    body["outputs"][0]["composition"] = {"Nd": "0.40"}  # 320 kg Nd out of 300

    assert refusal(world, "batch-transformed", body) == (
        422,
        "outputs.composition.Nd",
        "mass-balance",
    )


def test_outputs_heavier_than_the_inputs_are_refused(world: World) -> None:
    world.extract("ORE-1", "10000")
    body = beneficiation(kg="10100")
    body["outputs"][0]["composition"] = {"Nd": "0.02"}

    assert refusal(world, "batch-transformed", body) == (422, "outputs", "mass-balance")


def test_taking_more_than_a_batch_holds_is_refused(world: World) -> None:
    world.extract("ORE-1", "10000")

    body = beneficiation(take="10000.000001")

    assert refusal(world, "batch-transformed", body) == (
        422,
        "inputs[0].mass_kg",
        "mass-available",
    )


def test_processing_another_actors_batch_is_refused(world: World) -> None:
    world.extract("ORE-1", "10000")
    body = beneficiation("MINECO/ORE-1", facility="OTH-1")

    assert refusal(world, "batch-transformed", body, "other") == (403, "inputs[0].batch", "custody")


def test_processing_a_consumed_batch_is_refused(world: World) -> None:
    world.extract("ORE-1", "10000")
    world.report("batch-transformed", beneficiation(take="10000"))
    body = beneficiation(take="1", lot="CON-2", kg="0.08", reference="WO-2")

    assert refusal(world, "batch-transformed", body) == (409, "inputs[0].batch", "batch-consumed")


def test_reusing_a_work_order_reference_is_refused(world: World) -> None:
    world.extract("ORE-1", "10000")
    world.report("batch-transformed", beneficiation(take="5000", kg="400"))
    body = beneficiation(take="5000", lot="CON-2", kg="400", reference="WO-1")

    assert refusal(world, "batch-transformed", body) == (409, "reference", "unique")


def test_output_under_a_lot_code_already_used_is_refused(world: World) -> None:
    world.extract("ORE-1", "10000")
    world.extract("ORE-2", "100")
    body = beneficiation(take="5000", lot="ORE-2", kg="400")

    assert refusal(world, "batch-transformed", body) == (409, "outputs[0].lot_code", "unique")


def test_transforming_an_unknown_batch_is_refused(world: World) -> None:
    assert refusal(world, "batch-transformed", beneficiation("ORE-404")) == (
        422,
        "inputs[0].batch",
        "exists",
    )


def test_input_at_another_facility_than_the_step_is_refused(world: World) -> None:
    world.extract("ORE-1", "10000")
    body = beneficiation(facility="SEP-1")

    assert refusal(world, "batch-transformed", body) == (422, "inputs[0].batch", "co-located")


def test_unknown_process_is_refused_with_a_422_problem(world: World) -> None:
    world.extract("ORE-1", "10000")

    body = beneficiation(process="smelting")

    assert refusal(world, "batch-transformed", body) == (422, "process", "process")


def test_process_that_does_not_take_the_input_material_is_refused(world: World) -> None:
    world.report(
        "scrap-collected",
        {
            "facility": "SEP-1",
            "lot_code": "SCRAP-1",
            "mass_kg": "1000",
            "composition": {"Nd": "0.2"},
            "source": "swarf",
        },
    )
    body = beneficiation("SCRAP-1", take="1000", kg="100", facility="SEP-1")

    assert refusal(world, "batch-transformed", body) == (422, "inputs[0].batch", "process-input")


def test_separation_without_a_separation_quota_is_refused(world: World) -> None:
    concentrate_at_separation_plant(world)
    body = separation()
    del body["quota"]

    assert refusal(world, "batch-transformed", body) == (422, "quota", "required")


def test_beneficiation_naming_a_quota_is_refused(world: World) -> None:
    world.extract("ORE-1", "10000")

    body = beneficiation(quota="SQ-1")

    assert refusal(world, "batch-transformed", body) == (422, "quota", "quota-not-drawn")


def test_rare_earths_declared_as_untraced_input_are_refused(world: World) -> None:
    world.extract("ORE-1", "10000")
    top_up = {"name": "dysprosium top-up", "mass_kg": "5", "composition": {"Dy": "1"}}
    body = beneficiation(untraced_inputs=[top_up])

    assert refusal(world, "batch-transformed", body) == (
        422,
        "untraced_inputs[0].composition",
        "rare-earths-traced",
    )


def test_tolerance_above_two_percent_is_refused(world: World) -> None:
    world.extract("ORE-1", "10000")

    body = beneficiation(tolerance="0.05")

    assert refusal(world, "batch-transformed", body) == (422, "tolerance", "tolerance-bounded")


# --- batch-split --------------------------------------------------------------------------


def _split(batch: str = "ORE-1", *parts: tuple[str, str]) -> dict[str, Any]:
    return {"batch": batch, "parts": [{"lot_code": c, "mass_kg": kg} for c, kg in parts]}


def test_splitting_off_more_than_the_batch_holds_is_refused(world: World) -> None:
    world.extract("ORE-1", "10000")
    body = _split("ORE-1", ("ORE-1A", "6000"), ("ORE-1B", "4000.5"))

    assert refusal(world, "batch-split", body) == (422, "parts", "mass-available")


def test_split_by_an_actor_without_custody_is_refused(world: World) -> None:
    world.extract("ORE-1", "10000")
    body = _split("MINECO/ORE-1", ("M-1", "100"))

    assert refusal(world, "batch-split", body, "magnets") == (403, "batch", "custody")


def test_split_of_a_quarantined_batch_is_refused(world: World) -> None:
    world.extract("ORE-1", "10000")
    world.report("batch-quarantined", hold("ORE-1"))

    body = _split("ORE-1", ("ORE-1A", "100"))

    assert refusal(world, "batch-split", body) == (409, "batch", "batch-quarantined")


def test_split_naming_a_part_twice_is_refused(world: World) -> None:
    world.extract("ORE-1", "10000")
    body = _split("ORE-1", ("ORE-1A", "100"), ("ORE-1A", "200"))

    assert refusal(world, "batch-split", body) == (422, "parts[1].lot_code", "distinct-outputs")


def test_split_into_a_lot_code_already_used_is_refused(world: World) -> None:
    world.extract("ORE-1", "10000")
    world.extract("ORE-2", "100")

    body = _split("ORE-1", ("ORE-2", "100"))

    assert refusal(world, "batch-split", body) == (409, "parts[0].lot_code", "unique")


def test_split_without_parts_is_refused(world: World) -> None:
    world.extract("ORE-1", "10000")

    assert refusal(world, "batch-split", _split("ORE-1")) == (422, "parts", "required")


# --- batches-merged -----------------------------------------------------------------------


def _merge(lot: str, *inputs: tuple[str, str]) -> dict[str, Any]:
    return {"lot_code": lot, "inputs": [{"batch": b, "mass_kg": kg} for b, kg in inputs]}


def test_merge_of_a_single_batch_is_refused(world: World) -> None:
    world.extract("ORE-1", "10000")
    body = _merge("BLEND-1", ("ORE-1", "10000"))

    assert refusal(world, "batches-merged", body) == (422, "inputs", "merge-arity")


def test_merge_of_different_materials_is_refused_with_a_422_problem(world: World) -> None:
    world.extract("ORE-1", "10000")
    world.report("batch-transformed", beneficiation(take="5000", kg="400"))
    body = _merge("BLEND-1", ("ORE-1", "5000"), ("CON-1", "400"))

    assert refusal(world, "batches-merged", body) == (422, "inputs[1].batch", "same-material")


def test_merge_including_a_batch_in_transit_is_refused(world: World) -> None:
    world.extract("ORE-1", "10000")
    world.extract("ORE-2", "2000")
    world.report("shipment-exported", export("ORE-2"))
    body = _merge("BLEND-1", ("ORE-1", "10000"), ("ORE-2", "2000"))

    assert refusal(world, "batches-merged", body) == (409, "inputs[1].batch", "batch-in-transit")


def test_merge_including_another_actors_batch_is_refused(world: World) -> None:
    world.extract("ORE-1", "10000")
    world.extract("ORE-2", "2000")
    world.report("custody-transferred", sale("ORE-2", "MAGCO"))
    body = _merge("BLEND-1", ("ORE-1", "10000"), ("ORE-2", "2000"))

    assert refusal(world, "batches-merged", body) == (403, "inputs[1].batch", "custody")


def test_merge_of_batches_at_two_facilities_is_refused(world: World) -> None:
    world.extract("ORE-1", "10000")
    world.extract("ORE-2", "2000")
    world.report("batch-moved", {"batch": "ORE-2", "to_facility": "SEP-1"})
    body = _merge("BLEND-1", ("ORE-1", "10000"), ("ORE-2", "2000"))

    assert refusal(world, "batches-merged", body) == (422, "inputs[1].batch", "co-located")


def test_merge_under_a_lot_code_already_used_is_refused(world: World) -> None:
    world.extract("ORE-1", "10000")
    world.extract("ORE-2", "2000")
    world.extract("ORE-3", "2000")
    body = _merge("ORE-3", ("ORE-1", "10000"), ("ORE-2", "2000"))

    assert refusal(world, "batches-merged", body) == (409, "lot_code", "unique")


# --- batch-moved --------------------------------------------------------------------------


def test_move_to_another_actors_plant_is_refused_with_a_403_problem(world: World) -> None:
    world.extract("ORE-1", "10000")
    body = {"batch": "ORE-1", "to_facility": "OTH-1"}

    assert refusal(world, "batch-moved", body) == (403, "to_facility", "facility-owner")


def test_move_to_where_the_batch_already_is_is_refused(world: World) -> None:
    world.extract("ORE-1", "10000")
    body = {"batch": "ORE-1", "to_facility": "MINE-1"}

    assert refusal(world, "batch-moved", body) == (422, "to_facility", "different-facility")


def test_move_by_an_actor_without_custody_is_refused(world: World) -> None:
    world.extract("ORE-1", "10000")
    body = {"batch": "MINECO/ORE-1", "to_facility": "MAG-1"}

    assert refusal(world, "batch-moved", body, "magnets") == (403, "batch", "custody")


def test_move_of_a_batch_in_transit_is_refused_with_a_409_problem(world: World) -> None:
    world.extract("ORE-1", "10000")
    world.report("shipment-exported", export("ORE-1"))
    body = {"batch": "ORE-1", "to_facility": "SEP-1"}

    assert refusal(world, "batch-moved", body) == (409, "batch", "batch-in-transit")


def test_move_to_an_unregistered_facility_is_refused(world: World) -> None:
    world.extract("ORE-1", "10000")
    body = {"batch": "ORE-1", "to_facility": "NOWHERE"}

    assert refusal(world, "batch-moved", body) == (422, "to_facility", "exists")


# --- custody-transferred ------------------------------------------------------------------


def test_sale_by_an_actor_without_custody_is_refused(world: World) -> None:
    world.extract("ORE-1", "10000")
    body = sale("MINECO/ORE-1", "OTHER")

    assert refusal(world, "custody-transferred", body, "magnets") == (403, "batch", "custody")


def test_sale_to_the_holder_itself_is_refused_with_a_422_problem(world: World) -> None:
    world.extract("ORE-1", "10000")

    body = sale("ORE-1", "MINECO", to_facility="SEP-1")

    assert refusal(world, "custody-transferred", body) == (422, "buyer", "distinct-parties")


def test_sale_to_an_unregistered_buyer_is_refused(world: World) -> None:
    world.extract("ORE-1", "10000")

    assert refusal(world, "custody-transferred", sale("ORE-1", "NOBODY")) == (
        422,
        "buyer",
        "exists",
    )


def test_sale_delivered_to_a_third_partys_plant_is_refused(world: World) -> None:
    world.extract("ORE-1", "10000")
    body = sale("ORE-1", "MAGCO", to_facility="OTH-1")

    assert refusal(world, "custody-transferred", body) == (422, "to_facility", "facility-owner")


def test_priced_sale_without_a_currency_is_refused(world: World) -> None:
    world.extract("ORE-1", "10000")
    body = sale("ORE-1", "MAGCO", price="61500")

    assert refusal(world, "custody-transferred", body) == (422, "currency", "iso-4217")


def test_sale_of_a_consumed_batch_is_refused(world: World) -> None:
    world.extract("ORE-1", "10000")
    world.report("batch-transformed", beneficiation(take="10000"))

    assert refusal(world, "custody-transferred", sale("ORE-1")) == (409, "batch", "batch-consumed")


def test_sale_of_a_batch_in_transit_is_refused(world: World) -> None:
    world.extract("ORE-1", "10000")
    world.report("shipment-exported", export("ORE-1"))

    assert refusal(world, "custody-transferred", sale("ORE-1")) == (
        409,
        "batch",
        "batch-in-transit",
    )


def test_sale_dated_before_the_batch_existed_is_refused(world: World) -> None:
    world.extract("ORE-1", "10000")
    body = sale("ORE-1", occurred_at=VALID_FROM)

    assert refusal(world, "custody-transferred", body) == (422, "occurred_at", "chronology")


# --- shipment-exported --------------------------------------------------------------------


def test_export_to_a_country_the_licence_does_not_name_is_refused(world: World) -> None:
    register_actor(world, "LYONMOT", "FR")
    world.extract("ORE-1", "10000")
    body = export("ORE-1", consignee="LYONMOT", destination_country="FR")

    assert refusal(world, "shipment-exported", body) == (
        422,
        "destination_country",
        "licence-destination",
    )


def test_export_to_a_country_the_consignee_is_not_in_is_refused(world: World) -> None:
    world.extract("ORE-1", "10000")
    body = export("ORE-1", destination_country="FR")

    assert refusal(world, "shipment-exported", body) == (
        422,
        "destination_country",
        "consignee-country",
    )


def test_export_to_a_consignee_the_licence_does_not_name_is_refused(world: World) -> None:
    register_actor(world, "BAVMOT", "DE")
    world.extract("ORE-1", "10000")
    body = export("ORE-1", consignee="BAVMOT")

    assert refusal(world, "shipment-exported", body) == (422, "consignee", "licence-consignee")


def test_export_for_another_end_user_is_refused_with_a_422_problem(world: World) -> None:
    world.extract("ORE-1", "10000")
    body = export("ORE-1", end_user="Defence Systems AG")

    assert refusal(world, "shipment-exported", body) == (422, "end_user", "licence-end-user")


def test_export_under_a_customs_code_that_is_not_the_materials_is_refused(world: World) -> None:
    world.extract("ORE-1", "10000")
    body = export("ORE-1", customs_code="8505.11")

    assert refusal(world, "shipment-exported", body) == (422, "customs_code", "customs-heading")


def test_export_of_an_item_the_licence_does_not_cover_is_refused(world: World) -> None:
    world.extract("ORE-1", "10000")
    world.report("batch-transformed", beneficiation())
    body = export("CON-1", customs_code="2846.90")  # concentrate: EX-1 licenses ore and oxide

    assert refusal(world, "shipment-exported", body) == (422, "customs_code", "licence-item")


def test_export_beyond_what_remains_of_the_licence_is_refused(world: World) -> None:
    world.extract("ORE-1", "50000.5")  # EX-1 allows 50,000 kg

    assert refusal(world, "shipment-exported", export("ORE-1")) == (
        422,
        "licence",
        "licence-remaining",
    )


def test_export_under_an_expired_licence_is_refused_with_a_422_problem(world: World) -> None:
    world.register(
        "/v1/licences",
        {
            "number": "EX-2025",
            "kind": "export_licence",
            "holder": "MINECO",
            "max_kg": "50000",
            "valid_from": "2025-01-01T00:00:00Z",
            "valid_until": "2025-12-31T00:00:00Z",
            "items": [{"material": "ore", "customs_code": "2530.90"}],
            "consignee": "AUTOCO",
            "end_user": "Auto Motors GmbH",
            "destination_country": "DE",
        },
        "regulator",
    )
    world.extract("ORE-1", "10000")

    body = export("ORE-1", licence="EX-2025")

    assert refusal(world, "shipment-exported", body) == (422, "licence", "licence-validity")


def test_export_under_a_licence_held_by_another_actor_is_refused(world: World) -> None:
    world.extract("ORE-1", "10000")
    world.report("custody-transferred", sale("ORE-1", "MAGCO"))

    body = export("MINECO/ORE-1")

    assert refusal(world, "shipment-exported", body, "magnets") == (
        403,
        "licence",
        "licence-holder",
    )


def test_export_of_a_batch_already_in_transit_is_refused(world: World) -> None:
    world.extract("ORE-1", "10000")
    world.report("shipment-exported", export("ORE-1"))

    assert refusal(world, "shipment-exported", export("ORE-1")) == (
        409,
        "batch",
        "batch-in-transit",
    )


def test_export_under_an_unknown_licence_is_refused(world: World) -> None:
    world.extract("ORE-1", "10000")
    body = export("ORE-1", licence="EX-404")

    assert refusal(world, "shipment-exported", body) == (422, "licence", "exists")


# --- shipment-received --------------------------------------------------------------------


def test_receipt_of_a_batch_that_was_not_shipped_is_refused(world: World) -> None:
    world.extract("ORE-1", "10000")

    assert refusal(world, "shipment-received", receipt(), "auto") == (
        409,
        "batch",
        "not-in-transit",
    )


def test_receipt_by_anyone_but_the_consignee_is_refused(world: World) -> None:
    world.extract("ORE-1", "10000")
    world.report("shipment-exported", export("ORE-1"))
    body = receipt(facility="MAG-1")

    assert refusal(world, "shipment-received", body, "magnets") == (403, "batch", "consignee")


def test_receipt_of_more_than_was_shipped_is_refused_with_a_422_problem(world: World) -> None:
    world.extract("ORE-1", "10000")
    world.report("shipment-exported", export("ORE-1"))
    body = receipt(received_kg="10000.5")

    assert refusal(world, "shipment-received", body, "auto") == (
        422,
        "received_kg",
        "mass-available",
    )


def test_receipt_at_another_actors_facility_is_refused(world: World) -> None:
    world.extract("ORE-1", "10000")
    world.report("shipment-exported", export("ORE-1"))
    body = receipt(facility="MAG-1")

    assert refusal(world, "shipment-received", body, "auto") == (403, "facility", "facility-owner")


def test_receipt_dated_before_the_shipment_is_refused_with_a_422_problem(world: World) -> None:
    world.extract("ORE-1", "10000", occurred_at="2026-03-01T00:00:00Z")
    world.report("shipment-exported", export("ORE-1", occurred_at="2026-06-01T00:00:00Z"))
    body = receipt(occurred_at="2026-04-01T00:00:00Z")

    assert refusal(world, "shipment-received", body, "auto") == (422, "occurred_at", "chronology")


def test_receipt_of_an_unknown_batch_is_refused(world: World) -> None:
    body = receipt("MINECO/ORE-404")

    assert refusal(world, "shipment-received", body, "auto") == (422, "batch", "exists")


# --- batch-quarantined and batch-released -------------------------------------------------


def test_quarantine_of_a_batch_already_held_is_refused(world: World) -> None:
    world.extract("ORE-1", "10000")
    world.report("batch-quarantined", hold("ORE-1"))

    assert refusal(world, "batch-quarantined", hold("ORE-1")) == (409, "batch", "batch-quarantined")


def test_quarantine_by_an_operator_without_custody_is_refused(world: World) -> None:
    world.extract("ORE-1", "10000")

    body = hold("MINECO/ORE-1")

    assert refusal(world, "batch-quarantined", body, "other") == (403, "batch", "custody")


def test_quarantine_without_a_reason_is_refused(world: World) -> None:
    world.extract("ORE-1", "10000")

    assert refusal(world, "batch-quarantined", hold("ORE-1", " ")) == (422, "reason", "required")


def test_quarantine_of_a_consumed_batch_is_refused(world: World) -> None:
    world.extract("ORE-1", "10000")
    world.report("batch-transformed", beneficiation(take="10000"))

    assert refusal(world, "batch-quarantined", hold("ORE-1")) == (409, "batch", "batch-consumed")


def test_quarantine_dated_before_the_batchs_latest_step_is_refused(world: World) -> None:
    world.extract("ORE-1", "10000", occurred_at="2026-03-01T00:00:00Z")
    world.report(
        "batch-moved",
        {"batch": "ORE-1", "to_facility": "SEP-1", "occurred_at": "2026-06-01T00:00:00Z"},
    )
    body = hold("ORE-1", occurred_at="2026-05-01T00:00:00Z")

    assert refusal(world, "batch-quarantined", body) == (422, "occurred_at", "chronology")


def test_operator_naming_another_actor_on_a_quarantine_is_refused(world: World) -> None:
    world.extract("ORE-1", "10000")

    body = hold("ORE-1", actor="MAGCO")

    assert refusal(world, "batch-quarantined", body) == (403, "actor", "ownership")


def test_release_of_a_batch_not_held_is_refused(world: World) -> None:
    world.extract("ORE-1", "10000")

    assert refusal(world, "batch-released", hold("ORE-1")) == (409, "batch", "not-quarantined")


def test_operator_lifting_a_regulators_hold_is_refused(world: World) -> None:
    world.extract("ORE-1", "10000")
    world.report("batch-quarantined", hold("MINECO/ORE-1", "suspected illegal mining"), "regulator")

    assert refusal(world, "batch-released", hold("ORE-1", "we disagree")) == (403, "batch", "role")


def test_release_by_an_operator_without_custody_is_refused(world: World) -> None:
    world.extract("ORE-1", "10000")
    world.report("batch-quarantined", hold("ORE-1"))

    body = hold("MINECO/ORE-1")

    assert refusal(world, "batch-released", body, "magnets") == (403, "batch", "custody")


# --- schema-level refusals ----------------------------------------------------------------


def test_missing_field_is_refused_and_named(world: World) -> None:
    body = ore()
    del body["mass_kg"]

    assert refusal(world, "ore-extracted", body) == (422, "mass_kg", "missing")


def test_unknown_extra_field_is_refused_and_named(world: World) -> None:
    body = ore(grade="high")

    assert refusal(world, "ore-extracted", body) == (422, "grade", "extra-forbidden")


def test_mass_that_is_not_a_number_is_refused_and_named(world: World) -> None:
    assert refusal(world, "ore-extracted", ore(kg="ten tonnes")) == (
        422,
        "mass_kg",
        "decimal-parsing",
    )


def test_nested_mass_of_the_wrong_type_is_refused_and_named(world: World) -> None:
    world.extract("ORE-1", "10000")
    body = beneficiation(take={"kg": 10000})  # type: ignore[arg-type]

    assert refusal(world, "batch-transformed", body)[:2] == (422, "inputs[0].mass_kg")


def test_list_given_as_a_single_object_is_refused_and_named(world: World) -> None:
    world.extract("ORE-1", "10000")
    body = beneficiation()
    body["inputs"] = body["inputs"][0]

    assert refusal(world, "batch-transformed", body) == (422, "inputs", "list-type")


def test_composition_fraction_that_is_not_a_number_is_refused_and_named(world: World) -> None:
    body = ore(composition={"Nd": "three percent"})

    assert refusal(world, "ore-extracted", body) == (422, "composition.Nd", "decimal-parsing")


def test_time_without_a_time_zone_is_refused_and_named(world: World) -> None:
    body = ore(occurred_at="2026-03-01T08:00:00")

    assert refusal(world, "ore-extracted", body) == (422, "occurred_at", "timezone-aware")


def test_mass_given_as_a_json_float_is_accepted(world: World) -> None:
    response = world.event("ore-extracted", ore(kg=1250.5))  # type: ignore[arg-type]

    assert response.status_code == 201, response.text
    assert world.get("/v1/batches/MINECO/ORE-1").json()["initial_kg"] == "1250.5"


def test_mass_given_as_an_inexact_json_float_keeps_its_written_digits(world: World) -> None:
    response = world.event("ore-extracted", ore(kg=1250.1))  # type: ignore[arg-type]

    assert response.status_code == 201, response.text
    assert world.get("/v1/batches/MINECO/ORE-1").json()["initial_kg"] == "1250.1"


def test_mass_with_more_than_six_decimals_is_refused(world: World) -> None:
    body = ore(kg=1250.1234567)  # type: ignore[arg-type]

    assert refusal(world, "ore-extracted", body) == (422, "mass_kg", "mass-precision")


def test_mass_string_with_more_than_six_decimals_is_refused(world: World) -> None:
    assert refusal(world, "ore-extracted", ore(kg="1250.0000001")) == (
        422,
        "mass_kg",
        "mass-precision",
    )


def test_nested_mass_with_more_than_six_decimals_is_refused_and_named(world: World) -> None:
    world.extract("ORE-1", "10000")
    body = beneficiation(take="9999.9999999")

    assert refusal(world, "batch-transformed", body) == (422, "inputs[0].mass_kg", "mass-precision")


def test_problem_lists_every_schema_error(world: World) -> None:
    body = ore(kg="heavy", grade="high")

    problem = world.refused("/v1/events/ore-extracted", body).json()

    assert sorted(e["field"] for e in problem["errors"]) == ["grade", "mass_kg"]


def test_bulk_event_of_an_unknown_type_is_refused_and_named(world: World) -> None:
    body = {"events": [{"type": "OreTeleported", **ore()}]}

    status, field, _ = refusal(world, "bulk", body)

    assert (status, field) == (422, "events[0]")


def test_bulk_schema_refusal_names_the_event_and_the_field(world: World) -> None:
    body = {
        "events": [
            {"type": "OreExtracted", **ore("ORE-1")},
            {"type": "OreExtracted", **ore("ORE-2", "x")},
        ]
    }

    assert refusal(world, "bulk", body) == (422, "events[1].mass_kg", "decimal-parsing")


# --- Idempotency-Key ----------------------------------------------------------------------


def test_retry_with_the_same_idempotency_key_answers_the_first_answer(world: World) -> None:
    first = world.event("ore-extracted", ore(), **{"Idempotency-Key": "mine-2026-0001"})

    retry = world.event("ore-extracted", ore(), **{"Idempotency-Key": "mine-2026-0001"})

    assert (retry.status_code, retry.json()) == (201, first.json())
    assert retry.headers["Idempotent-Replayed"] == "true"


def test_first_answer_to_an_idempotency_key_is_not_marked_replayed(world: World) -> None:
    first = world.event("ore-extracted", ore(), **{"Idempotency-Key": "mine-2026-0001"})

    assert first.status_code == 201
    assert "Idempotent-Replayed" not in first.headers


def test_retry_with_the_same_idempotency_key_stores_nothing_new(world: World) -> None:
    world.event("ore-extracted", ore(), **{"Idempotency-Key": "mine-2026-0001"})
    before = world.recorded()

    world.event("ore-extracted", ore(), **{"Idempotency-Key": "mine-2026-0001"})

    assert world.recorded() == before
    assert world.get("/v1/licences/MQ-1").json()["draws"] == 1


def test_same_idempotency_key_with_another_body_is_a_conflict(world: World) -> None:
    world.event("ore-extracted", ore(), **{"Idempotency-Key": "mine-2026-0001"})

    other_body = ore("ORE-2")

    assert refusal(world, "ore-extracted", other_body, **{"Idempotency-Key": "mine-2026-0001"}) == (
        409,
        "Idempotency-Key",
        "idempotency-key-reuse",
    )


def test_same_idempotency_key_on_another_endpoint_is_a_conflict(world: World) -> None:
    world.extract("ORE-1", "10000")
    world.event("batch-quarantined", hold("ORE-1"), **{"Idempotency-Key": "mine-2026-0002"})

    _, _, rule = refusal(
        world, "batch-released", hold("ORE-1"), **{"Idempotency-Key": "mine-2026-0002"}
    )

    assert rule == "idempotency-key-reuse"


def test_idempotency_keys_of_different_callers_do_not_collide(world: World) -> None:
    world.event("ore-extracted", ore(), **{"Idempotency-Key": "2026-0001"})

    response = world.event(
        "ore-extracted", ore("ORE-2", actor="MINECO"), "admin", **{"Idempotency-Key": "2026-0001"}
    )

    assert response.status_code == 201, response.text
    assert response.json()["batch"] == "MINECO/ORE-2"


def test_refused_request_does_not_use_up_its_idempotency_key(world: World) -> None:
    world.event("ore-extracted", ore(kg="0"), **{"Idempotency-Key": "mine-2026-0003"})

    corrected = world.event("ore-extracted", ore(kg="10"), **{"Idempotency-Key": "mine-2026-0003"})

    assert corrected.status_code == 201, corrected.text
    assert "Idempotent-Replayed" not in corrected.headers


def test_bulk_retry_with_the_same_idempotency_key_answers_the_first_answer(world: World) -> None:
    body = {
        "events": [
            {"type": "OreExtracted", **ore("ORE-1")},
            {"type": "OreExtracted", **ore("ORE-2")},
        ]
    }
    first = world.event("bulk", body, **{"Idempotency-Key": "mine-bulk-1"})
    before = world.recorded()

    retry = world.event("bulk", body, **{"Idempotency-Key": "mine-bulk-1"})

    assert (retry.status_code, retry.json(), retry.headers["Idempotent-Replayed"]) == (
        201,
        first.json(),
        "true",
    )
    assert world.recorded() == before


def test_idempotency_key_longer_than_200_characters_is_refused(world: World) -> None:
    assert refusal(world, "ore-extracted", ore(), **{"Idempotency-Key": "k" * 201}) == (
        422,
        "Idempotency-Key",
        "string-too-long",
    )


# --- GET of something that does not exist -------------------------------------------------


@pytest.mark.parametrize("view", ["", "/upstream", "/downstream", "/provenance"])
def test_unknown_batch_in_a_get_path_is_not_found(world: World, view: str) -> None:
    response = world.get(f"/v1/batches/MINECO/ORE-404{view}")

    assert (response.status_code, response.headers["content-type"]) == (404, PROBLEM)
    assert response.json()["rule"] == "exists"


def test_unknown_batch_id_is_not_found(world: World) -> None:
    response = world.get("/v1/batches?id=00000000-0000-5000-8000-000000000000")

    assert (response.status_code, response.json()["rule"]) == (404, "exists")


@pytest.mark.parametrize(
    "path", ["/v1/actors/NOBODY", "/v1/facilities/NOWHERE", "/v1/licences/EX-404"]
)
def test_unknown_registry_entry_is_not_found(world: World, path: str) -> None:
    response = world.get(path)

    assert (response.status_code, response.headers["content-type"]) == (404, PROBLEM)


def test_batch_reference_that_is_not_a_lot_code_is_refused(world: World) -> None:
    response = world.get("/v1/batches/MINECO/not a lot")

    assert (response.status_code, response.json()["rule"]) == (422, "lot-code")
